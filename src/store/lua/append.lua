-- Append events to a stream, atomically, with what they change of its projections.
-- KEYS: the events (a Redis Stream), the snapshot hash, the answer's text, the lease.
-- ARGV: the expected version, the TTL (s), how many events, the snapshot JSON ('' for none), its
-- state, the reply projection ('' drop, '=' keep, 't' from the text, else the fixed reply JSON), the
-- text change ('' none, 'a' append, 's' set), its text, the lease JSON ('' for none), its TTL (ms),
-- '1' when the snapshot leaves its answer to the text; then a (type, event JSON) pair per event.
-- Returns {1, version}, or {0, actual version} having written nothing.
local events_key, snap_key, text_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expected, ttl, count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local snapshot, state, reply = ARGV[4], ARGV[5], ARGV[6]
local text_change, text = ARGV[7], ARGV[8]
local lease, lease_ttl_ms, answer_apart = ARGV[9], ARGV[10], ARGV[11]
local first_event = 12

-- The version lives in the snapshot hash, so the check and the appends are one step.
local version = tonumber(redis.call('HGET', snap_key, 'v') or '0')
if version ~= expected then return {0, version} end
if count == 0 then return {1, version} end

local last_id
for i = 0, count - 1 do
  local at = first_event + 2 * i
  last_id = redis.call('XADD', events_key, '*', 't', ARGV[at], 'e', ARGV[at + 1])
end
version = version + count

if text_change == 'a' then
  redis.call('APPEND', text_key, text)
elseif text_change == 's' then
  redis.call('SET', text_key, text)
end

if snapshot ~= '' then
  redis.call('HSET', snap_key, 'v', version, 's', snapshot, 'sv', version, 'sid', last_id, 'st', state)
  -- A snapshot that leaves its answer out records how long the text was: a reader takes it from there.
  if answer_apart == '1' then
    redis.call('HSET', snap_key, 'sl', redis.call('STRLEN', text_key))
  else
    redis.call('HDEL', snap_key, 'sl')
  end
else
  redis.call('HSET', snap_key, 'v', version)
  -- The text no longer starts with the stored snapshot's answer: readers fold from the start.
  if text_change == 's' then redis.call('HDEL', snap_key, 's', 'sv', 'sid', 'sl') end
end

if reply == 't' then
  redis.call('HSET', snap_key, 'rm', 't')
  redis.call('HDEL', snap_key, 'r')
elseif reply == '' then
  redis.call('HDEL', snap_key, 'rm', 'r')
elseif reply ~= '=' then
  redis.call('HSET', snap_key, 'rm', 'f', 'r', reply)
end

if lease ~= '' then redis.call('SET', lease_key, lease, 'PX', lease_ttl_ms) end

redis.call('EXPIRE', events_key, ttl)
redis.call('EXPIRE', snap_key, ttl)
redis.call('EXPIRE', text_key, ttl)
return {1, version}
