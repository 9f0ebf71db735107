-- restore.lua: brings an archived ticket back into Redis, exactly as it was archived, so an
-- action (a reopen) can be decided and written on it as on any ticket. Idempotent: a ticket
-- already in Redis is left alone (it is the same or newer). Listed as ended from now, so a
-- restore that is not followed by the action leaves Redis again after `archive.after_seconds`.
--
-- KEYS[1] ticket hash hl:{c}:t:<id>   KEYS[2] history hl:{c}:h:<id>   KEYS[3] hl:{c}:ended
-- KEYS[4] hl:{c}:tickets
-- ARGV[1] id   ARGV[2] JSON object of the hash's fields   ARGV[3] JSON list of events (JSON text)
-- Returns { "restored" } | { "present" }

if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'present'}
end
local fields = cjson.decode(ARGV[2])
local flat = {}
for k, v in pairs(fields) do
  flat[#flat + 1] = k
  flat[#flat + 1] = v
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('DEL', KEYS[2])
local events = cjson.decode(ARGV[3])
for i = 1, #events, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #events) do
    chunk[#chunk + 1] = events[j]
  end
  redis.call('RPUSH', KEYS[2], unpack(chunk))
end
redis.call('ZADD', KEYS[3], redis_now(), ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(fields.created_ms) or 0, ARGV[1])
return {'restored'}
