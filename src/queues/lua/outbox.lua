-- outbox.lua: the delivery bookkeeping of one partner's callback outbox in one county.
--
-- Entries are written by ingest.lua, ticket_action.lua and fire_timers.lua in the same script as
-- the state change, to hl:{c}:outbox:<partner> (a stream that is never trimmed). One gateway
-- replica at a time delivers a (county, partner) outbox, strictly in stream order, so a partner
-- hears of each ticket's events in order; it holds hl:{c}:outbox:<partner>:lock, and every write
-- here first checks that it still does (fencing), so a replica that lost the lock changes nothing.
--
-- KEYS[1] outbox stream  hl:{c}:outbox:<partner>
-- KEYS[2] state hash     hl:{c}:outbox:<partner>:state  (cursor, attempts, next_at_ms, last_error)
-- KEYS[3] dead letters   hl:{c}:outbox:<partner>:dead   (list of JSON, newest first)
-- KEYS[4] lock           hl:{c}:outbox:<partner>:lock
-- ARGV[1] operation: "lock" | "done" | "retry" | "dead" | "replay"
-- ARGV[2] holder id (this replica)
-- lock:   ARGV[3] lock ms. Takes or extends the lock. Returns {"ok"} | {"held"}
-- done:   ARGV[3] entry id. Delivered (or not subscribed): the cursor moves past it and it is
--         deleted. Returns {"ok"} | {"lost"}
-- retry:  ARGV[3] entry id, ARGV[4] next attempt at (ms), ARGV[5] error text.
--         Returns {"ok", attempts} | {"lost"}
-- dead:   ARGV[3] entry id, ARGV[4] JSON of the entry with its attempts and last error.
--         Given up: kept in the dead-letter list, the cursor moves on. Returns {"ok"} | {"lost"}
-- replay: Dead letters go back to the outbox as new entries (oldest first).
--         Returns {"ok", count}. Needs no lock: the delivering replica simply reads them next.

local op = ARGV[1]

if op == 'replay' then
  local dead = redis.call('LRANGE', KEYS[3], 0, -1)
  for i = #dead, 1, -1 do
    local e = cjson.decode(dead[i])
    local fields = {}
    for k, v in pairs(e.fields or {}) do
      fields[#fields + 1] = k
      fields[#fields + 1] = tostring(v)
    end
    fields[#fields + 1] = 'replay_of'
    fields[#fields + 1] = e.entry or ''
    redis.call('XADD', KEYS[1], '*', unpack(fields))
  end
  redis.call('DEL', KEYS[3])
  return {'ok', tostring(#dead)}
end

if op == 'lock' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[2] then
    return {'held'}
  end
  redis.call('SET', KEYS[4], ARGV[2], 'PX', tonumber(ARGV[3]))
  return {'ok'}
end

if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return {'lost'}
end

if op == 'done' or op == 'dead' then
  if op == 'dead' then
    redis.call('LPUSH', KEYS[3], ARGV[4])
  end
  redis.call('HSET', KEYS[2], 'cursor', ARGV[3], 'attempts', 0, 'next_at_ms', 0)
  redis.call('HDEL', KEYS[2], 'last_error')
  redis.call('XDEL', KEYS[1], ARGV[3])
  return {'ok'}
end

if op == 'retry' then
  local attempts = redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  redis.call('HSET', KEYS[2], 'next_at_ms', ARGV[4], 'last_error', ARGV[5])
  return {'ok', tostring(attempts)}
end

return {'unknown_op'}
