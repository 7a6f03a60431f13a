-- Shared by poll.lua and poll-many.lua (prepended): a poll answered by the stream's reply projection.

-- Returns false for no such stream; {1, version, state, the fixed reply, lease} or {2, version, state,
-- the text's first `text_bytes` bytes, lease} when the projection answers; else nil, then the
-- version, the reply mode, the reply, the state and the lease read, for the caller to go on with.
local function projected(snap_key, lease_key, text_key, text_bytes)
  local h = redis.call('HMGET', snap_key, 'v', 'rm', 'r', 'st')
  local version, mode, reply, state = h[1], h[2], h[3], h[4]
  if not version then return false end
  local lease = redis.call('GET', lease_key)
  if mode == 'f' then return {1, version, state, reply, lease} end
  if mode == 't' then
    return {2, version, state, redis.call('GETRANGE', text_key, 0, text_bytes - 1), lease}
  end
  return nil, version, mode, reply, state, lease
end
