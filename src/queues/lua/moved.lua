-- moved.lua: the second step of a move to another county. The first step (ticket_action.lua)
-- closed the ticket here as `transferred`, kept the plan and listed it in hl:{c}:moving; the
-- plan is now registered there as `new_id`. Idempotent: a second call changes nothing.
--
-- KEYS[1] ticket hash hl:{c}:t:<id>   KEYS[2] unfinished moves hl:{c}:moving
-- KEYS[3] county events hl:{c}:events
-- ARGV[1] key prefix "hl:{c}:"   ARGV[2] the new ticket's id   ARGV[3] its queue
-- ARGV[4] stream MAXLEN
-- Returns { "ok" } | { "done" } (already finished) | { "missing" }

local tkey = KEYS[1]
local id = redis.call('HGET', tkey, 'id')
if not id then
  return {'missing'}
end
if redis.call('HGET', tkey, 'transferred_to') then
  redis.call('ZREM', KEYS[2], id)
  return {'done'}
end
local now = redis_now()
redis.call('HSET', tkey, 'transferred_to', ARGV[2])
redis.call('HDEL', tkey, 'move_plan')
redis.call('ZREM', KEYS[2], id)
bump(tkey)
redis.call('RPUSH', ARGV[1] .. 'h:' .. id, cjson.encode({type = 'ticket.moved', at_ms = now,
  to_ticket = ARGV[2], to_queue = ARGV[3]}))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', 'ticket.moved', 'id', id,
  'to_ticket', ARGV[2], 'at_ms', tostring(now))
return {'ok'}
