-- The polls of many streams in one call (a single Redis; a Cluster polls each stream with poll.lua).
-- KEYS: per stream, its snapshot hash, events, lease and text, as poll.lua takes them.
-- ARGV[1]: how many bytes of a text to read.
-- Returns per stream what poll.lua returns when the reply projection answers ({1, ...} or {2, ...}),
-- false for no such stream, or {0} when the poll must fold the events: the caller then polls that
-- stream alone with poll.lua (a stream an older version wrote; rare).
local text_bytes = tonumber(ARGV[1])
local out = {}
for s = 0, #KEYS / 4 - 1 do
  local answered = projected(KEYS[4 * s + 1], KEYS[4 * s + 3], KEYS[4 * s + 4], text_bytes)
  if answered == nil then answered = {0} end
  out[s + 1] = answered
end
return out
