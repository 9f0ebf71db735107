-- renew.lua: extend a lease held by this agent.
--
-- KEYS[1] county leases  hl:{c}:leases     KEYS[2] ticket hash  hl:{c}:t:<id>
-- ARGV[1] ticket id   ARGV[2] lease id   ARGV[3] agent id   ARGV[4] lease length ms
-- Returns { "ok", expires_ms } | { "stale" }
-- A lease length of 0 is a decline: the lease ends now, and the reaper reports it as declined.

local cur = redis.call('HMGET', KEYS[2], 'lease_id', 'lease_agent', 'status')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] or cur[3] ~= 'leased' then
  return {'stale'}
end
local now = redis_now()
local expires = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[1])
redis.call('HSET', KEYS[2], 'lease_expires_ms', expires)
if tonumber(ARGV[4]) == 0 then
  redis.call('HSET', KEYS[2], 'lease_declined', '1')
end
return {'ok', tostring(expires)}
