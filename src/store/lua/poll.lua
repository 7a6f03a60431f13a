-- What a poll reads, from the reply projection when there is one, in one round trip.
-- KEYS: the snapshot hash, the events, the lease, the text. ARGV: how many bytes of the text to read.
-- Returns {1, version, state, the fixed reply, lease}, {2, version, state, the text's first bytes,
-- lease}, or, without a projection, {0, ...what load.lua returns}. (A reply `r` without `rm` was
-- written by an older version, which kept it current with the snapshot's version.)
local snap_key, lease_key, text_key = KEYS[1], KEYS[3], KEYS[4]
local text_bytes = tonumber(ARGV[1])

-- The snapshot's own fields are read only when the poll must fold (a stream without a projection):
-- a streaming answer's poll copies no snapshot.
local h = redis.call('HMGET', snap_key, 'v', 'rm', 'r', 'st')
local version, mode, reply, state = h[1], h[2], h[3], h[4]
if not version then return false end
local lease = redis.call('GET', lease_key)
if mode == 'f' then return {1, version, state, reply, lease} end
if mode == 't' then
  return {2, version, state, redis.call('GETRANGE', text_key, 0, text_bytes - 1), lease}
end
local s = redis.call('HMGET', snap_key, 's', 'sv', 'sid', 'sl')
local snapshot, snapshot_version, snapshot_entry, answer_length = s[1], s[2], s[3], s[4]
if not mode and reply and version == snapshot_version then return {1, version, state, reply, lease} end
return {
  0, version, snapshot, snapshot_version,
  entries_after(version, snapshot_version, snapshot_entry),
  lease, answer_at(snapshot, answer_length),
}
