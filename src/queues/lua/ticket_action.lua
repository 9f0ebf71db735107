-- ticket_action.lua: apply one agent action (or a recomputation) to a ticket atomically.
--
-- The gateway reads the ticket, computes the new clocks and timers with its calendars, and sends
-- them here with the clock version it read. If anything changed the ticket in between, the
-- version differs and nothing is written ("stale"): the gateway reads again and retries. So two
-- actions racing on one ticket never interleave, and timers always match the stored clocks.
--
-- KEYS[1]  ticket hash         hl:{county}:t:<id>
-- KEYS[2]  county timers ZSET  hl:{county}:timers
-- KEYS[3]  county event stream hl:{county}:events
-- ARGV[1]  key prefix of the county, "hl:{county}:"
-- ARGV[2]  JSON: { expected_ver, clocks (JSON text), timers: [[clock, kind, at_ms]...],
--                  status (or ""), dequeue (bool), outcomes: [[clock, "met"|"breached"]...],
--                  close (bool), maxlen, event: { type = ..., other fields... } }
-- Returns  { "ok", new_ver } | { "stale", current_ver } | { "missing" }

local prefix = ARGV[1]
local a = cjson.decode(ARGV[2])
local tkey = KEYS[1]
local cur = redis.call('HGET', tkey, 'clock_ver')
if not cur then
  return {'missing'}
end
if cur ~= a.expected_ver then
  return {'stale', cur}
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('HGET', tkey, 'id')
local queue = redis.call('HGET', tkey, 'queue') or ''
local ver = tostring(tonumber(cur) + 1)

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
if a.close then
  redis.call('SREM', prefix .. 'open', id)
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
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.maxlen, '*', unpack(fields))
return {'ok', ver}
