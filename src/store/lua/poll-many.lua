-- The polls of many streams in one call (a single Redis; a Cluster polls each stream with poll.lua).
-- KEYS: per stream, its snapshot hash, events, lease and text, as poll.lua takes them.
-- ARGV[1]: how many bytes of a text to read.
-- Returns per stream what poll.lua returns when the reply projection answers ({1, ...} or {2, ...}),
-- false for no such stream, or {0} when the poll must fold the events: the caller then polls that
-- stream alone with poll.lua (a stream an older version wrote; rare).
local text_bytes = tonumber(ARGV[1])
local out = {}
for s = 0, #KEYS / 4 - 1 do
  local snap_key, lease_key, text_key = KEYS[4 * s + 1], KEYS[4 * s + 3], KEYS[4 * s + 4]
  local h = redis.call('HMGET', snap_key, 'v', 'rm', 'r', 'st')
  local version, mode, reply, state = h[1], h[2], h[3], h[4]
  if not version then
    out[s + 1] = false
  else
    local lease = redis.call('GET', lease_key)
    if mode == 'f' then
      out[s + 1] = {1, version, state, reply, lease}
    elseif mode == 't' then
      out[s + 1] = {2, version, state, redis.call('GETRANGE', text_key, 0, text_bytes - 1), lease}
    else
      out[s + 1] = {0}
    end
  end
end
return out
