-- Load a stream: its snapshot, the entries after it and the snapshot's answer, in one round trip.
-- KEYS: the snapshot hash, the events, the lease, the text. ARGV: '1' to return the lease too.
-- Returns nil for a missing stream, else {version, snapshot, its version, entries, lease, answer}.
local snap_key, lease_key = KEYS[1], KEYS[3]
local with_lease = ARGV[1] == '1'

local h = redis.call('HMGET', snap_key, 'v', 's', 'sv', 'sid', 'sl')
local version, snapshot, snapshot_version, snapshot_entry, answer_length = h[1], h[2], h[3], h[4], h[5]
if not version then return false end
local lease = false
if with_lease then lease = redis.call('GET', lease_key) end
return {
  version, snapshot, snapshot_version,
  entries_after(version, snapshot_version, snapshot_entry),
  lease, answer_at(snapshot, answer_length),
}
