-- Take (or renew) a stream's lease when it is free, expired, or this holder's.
-- KEYS: the lease. ARGV: the holder's token, the TTL (ms), now (ms, the caller's clock), the lease JSON.
-- Returns 1 when the holder has it now, else 0. The deadline check beside the key's own TTL keeps the
-- Redis and memory adapters alike when a test injects a clock.
local lease_key = KEYS[1]
local token, ttl_ms, now, value = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local current = redis.call('GET', lease_key)
if current then
  local ok, held = pcall(cjson.decode, current)
  if ok and type(held) == 'table' and tonumber(held['until'] or 0) > now and held['token'] ~= token then
    return 0
  end
end
redis.call('SET', lease_key, value, 'PX', ttl_ms)
return 1
