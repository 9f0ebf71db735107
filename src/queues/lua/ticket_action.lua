-- ticket_action.lua: apply one action (or a recomputation) to a ticket atomically.
--
-- The gateway reads the ticket, decides the action with its rules and calendars, and sends the
-- typed change here (serialised in one place, src/queues/tickets.rs) with the record version it
-- read. If anything changed the ticket in between (an action, a claim, a lease lapsing, a live
-- request, a breach raising it), the version differs and nothing is written ("stale"): the
-- gateway reads again and decides again. So two actions never interleave, and nobody acts on a
-- ticket that another agent took meanwhile.
--
-- KEYS[1]  ticket hash         hl:{county}:t:<id>
-- KEYS[2]  county timers ZSET  hl:{county}:timers
-- KEYS[3]  county event stream hl:{county}:events
-- ARGV[1]  key prefix of the county, "hl:{county}:"
-- ARGV[2]  JSON: { expected_ver, clocks (JSON text), timers: [[clock, kind, at_ms]...],
--                  status (or ""), dequeue (bool), outcomes: [[clock, "met"|"breached"]...],
--                  close (bool), maxlen, event: { type = ..., other fields... },
--                  lease_check ("" or the lease id the caller holds), lease_agent ("" or the
--                  agent that must hold it), release_lease (bool), assign ("" or agent id),
--                  unassign (bool), agent_delta ([agent id, active delta, handled delta,
--                  handle ms] or []), requeue ({queue, score, since} or {}), set ({field = value}),
--                  open (bool: back among the tickets with running clocks),
--                  moving (bool: closed here while a move to another county finishes),
--                  ended (bool: its life here ended; listed in hl:{c}:ended for the archive),
--                  count_note (bool: one more note on the ticket, field `notes`),
--                  live ({} or { unwait = pool (the caller no longer waits in hl:{c}:live:<pool>),
--                        busy = [agent id, until ms] (on a live call or in wrap-up),
--                        aht = [pool, sample ms, weight] (a handle time for the wait estimate)}) }
-- Returns  { "ok", new_ver } | { "stale", current_ver } | { "missing" } | { "stale_lease" }

local prefix = ARGV[1]
local a = cjson.decode(ARGV[2])
local tkey = KEYS[1]
if redis.call('EXISTS', tkey) == 0 then
  return {'missing'}
end
local cur = redis.call('HGET', tkey, 'ver') or '0'
if tonumber(cur) ~= tonumber(a.expected_ver) then
  return {'stale', cur}
end
if a.lease_check ~= '' then
  local held = redis.call('HMGET', tkey, 'lease_id', 'lease_agent')
  if held[1] ~= a.lease_check or (a.lease_agent ~= '' and held[2] ~= a.lease_agent) then
    return {'stale_lease'}
  end
end

local now_ms = redis_now()
local id = redis.call('HGET', tkey, 'id')
local queue = redis.call('HGET', tkey, 'queue') or ''
local ver = tostring(tonumber(redis.call('HGET', tkey, 'clock_ver') or '0') + 1)
local record_ver = bump(tkey)

-- Replace the ticket's timers: old members carry the old version, so even one that a mover has
-- already read can no longer fire.
local old = redis.call('HGET', tkey, 'timers')
if old then
  for _, m in ipairs(cjson.decode(old)) do
    redis.call('ZREM', KEYS[2], m)
  end
end
local members = {}
for _, tm in ipairs(a.timers) do
  local member = id .. '|' .. tm[1] .. '|' .. tm[2] .. '|' .. ver
  redis.call('ZADD', KEYS[2], tm[3], member)
  members[#members + 1] = member
end
redis.call('HSET', tkey, 'clocks', a.clocks, 'clock_ver', ver, 'timers', cjson.encode(members))

if a.status ~= '' then
  redis.call('HSET', tkey, 'status', a.status)
end
if a.dequeue and queue ~= '' then
  redis.call('ZREM', prefix .. 'q:' .. queue, id)
  redis.call('ZREM', prefix .. 'qt:' .. queue, id)
end
if a.release_lease then
  local holder = redis.call('HGET', tkey, 'lease_agent')
  if holder and redis.call('HGET', prefix .. 'agent:' .. holder, 'offer_ticket') == id then
    redis.call('HDEL', prefix .. 'agent:' .. holder, 'offer_ticket')
  end
  redis.call('ZREM', prefix .. 'leases', id)
  redis.call('HDEL', tkey, 'lease_id', 'lease_agent', 'lease_expires_ms', 'lease_declined', 'live_lease')
end
if a.assign ~= '' then
  redis.call('HSET', tkey, 'assigned_agent', a.assign)
  local akey = prefix .. 'agent:' .. a.assign
  redis.call('HSET', akey, 'missed_streak', 0)
  if redis.call('HGET', akey, 'offer_ticket') == id then
    redis.call('HDEL', akey, 'offer_ticket')
  end
end
if a.unassign then
  redis.call('HDEL', tkey, 'assigned_agent')
end
if a.agent_delta[1] then
  local akey = prefix .. 'agent:' .. a.agent_delta[1]
  if redis.call('EXISTS', akey) == 1 then
    redis.call('HINCRBY', akey, 'active', a.agent_delta[2])
    redis.call('HINCRBY', akey, 'handled', a.agent_delta[3])
    if a.agent_delta[4] then
      redis.call('HINCRBY', akey, 'handle_ms', a.agent_delta[4])
    end
  end
end
for k, v in pairs(a.set) do
  redis.call('HSET', tkey, k, v)
end
if a.live and a.live.unwait then
  redis.call('ZREM', prefix .. 'live:' .. a.live.unwait, id)
end
if a.live and a.live.busy then
  local akey = prefix .. 'agent:' .. a.live.busy[1]
  if redis.call('EXISTS', akey) == 1 then
    redis.call('HSET', akey, 'busy_until_ms', a.live.busy[2])
  end
end
if a.live and a.live.aht then
  -- Exponentially weighted moving average of live handle times, per pool.
  local field = a.live.aht[1]
  local old = tonumber(redis.call('HGET', prefix .. 'aht', field) or '')
  local v = a.live.aht[2]
  if old then
    v = old + a.live.aht[3] * (v - old)
  end
  redis.call('HSET', prefix .. 'aht', field, tostring(math.floor(v)))
  redis.call('HINCRBY', prefix .. 'aht', field .. ':n', 1)
end
if a.requeue.queue then
  -- A transfer or escalation: back in line with its old arrival order and age.
  redis.call('ZADD', prefix .. 'q:' .. a.requeue.queue, a.requeue.score, id)
  redis.call('ZADD', prefix .. 'qt:' .. a.requeue.queue, a.requeue.since, id)
  redis.call('SADD', prefix .. 'queues', a.requeue.queue)
  redis.call('HSET', tkey, 'queue', a.requeue.queue)
  queue = a.requeue.queue
end

-- SLA compliance of the queue: 5-minute buckets (for the last hour) and hourly ones (for a
-- day and a week), each field "<clock>:met" or "<clock>:breached".
if queue ~= '' then
  local minute5 = math.floor(now_ms / 300000)
  local hour = math.floor(now_ms / 3600000)
  for _, o in ipairs(a.outcomes) do
    local field = o[1] .. ':' .. o[2]
    local k5 = prefix .. 'sla5:' .. queue .. ':' .. minute5
    local kh = prefix .. 'slah:' .. queue .. ':' .. hour
    redis.call('HINCRBY', k5, field, 1)
    redis.call('EXPIRE', k5, 7200)
    redis.call('HINCRBY', kh, field, 1)
    redis.call('EXPIRE', kh, 8 * 86400)
  end
end
for _, o in ipairs(a.outcomes) do
  redis.call('ZREM', prefix .. 'risk', id .. '|' .. o[1])
  redis.call('ZREM', prefix .. 'late', id .. '|' .. o[1])
end
if a.close then
  redis.call('SREM', prefix .. 'open', id)
  for _, c in ipairs({'accept', 'first_contact', 'resolve', 'follow_up'}) do
    redis.call('ZREM', prefix .. 'risk', id .. '|' .. c)
    redis.call('ZREM', prefix .. 'late', id .. '|' .. c)
  end
end
if a.open then
  redis.call('SADD', prefix .. 'open', id)
  redis.call('ZREM', prefix .. 'ended', id)
end
if a.ended then
  redis.call('ZADD', prefix .. 'ended', now_ms, id)
end
if a.moving then
  redis.call('ZADD', prefix .. 'moving', now_ms, id)
end
if a.count_note then
  redis.call('HINCRBY', tkey, 'notes', 1)
end

local e = a.event
e.at_ms = now_ms
redis.call('RPUSH', prefix .. 'h:' .. id, cjson.encode(e))
local fields = {'type', e.type, 'id', id, 'queue', queue, 'at_ms', tostring(now_ms)}
if e.actor then
  fields[#fields + 1] = 'actor'
  fields[#fields + 1] = e.actor
end
if a.status ~= '' then
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = a.status
end
if e.live then
  fields[#fields + 1] = 'live'
  fields[#fields + 1] = e.live
end
if e.agent then
  fields[#fields + 1] = 'agent'
  fields[#fields + 1] = e.agent
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.maxlen, '*', unpack(fields))
-- A status change of a partner's ticket goes to its durable outbox in the same step.
if a.status ~= '' then
  local callback = redis.call('HGET', tkey, 'callback')
  if callback then
    local out = {'type', e.type, 'id', id, 'status', a.status, 'queue', queue,
      'at_ms', tostring(now_ms)}
    for _, k in ipairs({'outcome', 'reason', 'summary', 'satisfaction'}) do
      if e[k] ~= nil then
        out[#out + 1] = k
        out[#out + 1] = tostring(e[k])
      end
    end
    if a.assign ~= '' then
      out[#out + 1] = 'agent'
      out[#out + 1] = a.assign
    end
    to_outbox(prefix, callback, out)
  end
end
return {'ok', tostring(record_ver)}
