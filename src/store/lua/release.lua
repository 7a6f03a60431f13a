-- Drop a stream's lease if this holder has it: never another's.
-- KEYS: the lease. ARGV: the holder's token. Returns 1 when dropped, else 0.
local lease_key = KEYS[1]
local token = ARGV[1]

local current = redis.call('GET', lease_key)
if not current then return 0 end
local ok, held = pcall(cjson.decode, current)
if ok and type(held) == 'table' and held['token'] == token then
  redis.call('DEL', lease_key)
  return 1
end
return 0
