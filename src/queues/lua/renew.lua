-- renew.lua: extend a lease held by this agent.
--
-- KEYS[1] county leases  hl:{c}:leases     KEYS[2] ticket hash  hl:{c}:t:<id>
-- ARGV[1] ticket id   ARGV[2] lease id   ARGV[3] agent id   ARGV[4] lease length ms
-- Returns { "ok", expires_ms } | { "stale" }

local cur = redis.call('HMGET', KEYS[2], 'lease_id', 'lease_agent', 'status')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] or cur[3] ~= 'leased' then
  return {'stale'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[1])
redis.call('HSET', KEYS[2], 'lease_expires_ms', expires)
return {'ok', tostring(expires)}
