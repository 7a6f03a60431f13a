-- What a poll reads, from the reply projection when there is one, in one round trip.
-- KEYS: the snapshot hash, the events, the lease, the text. ARGV: how many bytes of the text to read.
-- Returns {1, version, state, the fixed reply, lease}, {2, version, state, the text's first bytes,
-- lease}, or, without a projection, {0, ...what load.lua returns}. (A reply `r` without `rm` was
-- written by an older version, which kept it current with the snapshot's version.)
local snap_key = KEYS[1]
-- The snapshot's own fields are read only when the poll must fold (a stream without a projection):
-- a streaming answer's poll copies no snapshot.
local answered, version, mode, reply, state, lease = projected(snap_key, KEYS[3], KEYS[4], tonumber(ARGV[1]))
if answered ~= nil then return answered end
local s = redis.call('HMGET', snap_key, 's', 'sv', 'sid', 'sl')
local snapshot, snapshot_version, snapshot_entry, answer_length = s[1], s[2], s[3], s[4]
if not mode and reply and version == snapshot_version then return {1, version, state, reply, lease} end
return {
  0, version, snapshot, snapshot_version,
  entries_after(version, snapshot_version, snapshot_entry),
  lease, answer_at(snapshot, answer_length),
}
