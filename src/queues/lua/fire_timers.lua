-- fire_timers.lua: fire the due SLA timers of one county, each exactly once.
--
-- Any gateway replica may run this at any time: the script is atomic, removes what it fires,
-- skips timers whose ticket has since been recomputed (their version is old), and marks each
-- (clock, kind) as fired with HSETNX, so a warning or a breach is raised once even if a
-- recomputation schedules it again. Time comes from Redis TIME.
--
-- KEYS[1]  county timers ZSET  hl:{county}:timers  (member "<id>|<clock>|<kind>|<ver>", score due ms)
-- KEYS[2]  county event stream hl:{county}:events
-- ARGV[1]  key prefix of the county, "hl:{county}:"
-- ARGV[2]  most timers to fire in this call
-- ARGV[3]  approximate MAXLEN of the event stream
-- Returns  { now_ms, next_due_ms or "", more (1 if the batch was full),
--            clock, kind, lateness_ms, queue, ... }

local prefix = ARGV[1]
local now = redis_now()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {tostring(now), '', '0'}

local function event(id, fields)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
  -- A breach of a partner's ticket goes to its durable outbox in the same step.
  if fields[2] == 'sla.breached' then
    local out = {unpack(fields)}
    out[#out + 1] = 'at_ms'
    out[#out + 1] = tostring(now)
    to_outbox(prefix, redis.call('HGET', prefix .. 't:' .. id, 'callback'), out)
  end
  local h = {}
  for i = 1, #fields, 2 do
    h[fields[i]] = fields[i + 1]
  end
  h.at_ms = now
  redis.call('RPUSH', prefix .. 'h:' .. id, cjson.encode(h))
end

local function breach_actions(id, tkey, terms)
  local done = {}
  local status = redis.call('HGET', tkey, 'status')
  local queue = redis.call('HGET', tkey, 'queue') or ''
  local queued = status == 'queued' and queue ~= ''
  for _, action in ipairs(terms.on_breach or {}) do
    if action == 'raise_band' and queued then
      local score = redis.call('ZSCORE', prefix .. 'q:' .. queue, id)
      if score and tonumber(score) >= BAND then
        redis.call('ZADD', prefix .. 'q:' .. queue, tonumber(score) - BAND, id)
        redis.call('HSET', tkey, 'band', math.floor((tonumber(score) - BAND) / BAND))
        bump(tkey)
        done[#done + 1] = action
      end
    elseif action == 'move_queue' and queued and terms.breach_queue and terms.breach_queue ~= queue then
      local target = terms.breach_queue
      local score = redis.call('ZSCORE', prefix .. 'q:' .. queue, id)
      local since = redis.call('ZSCORE', prefix .. 'qt:' .. queue, id)
      if score then
        redis.call('ZREM', prefix .. 'q:' .. queue, id)
        redis.call('ZREM', prefix .. 'qt:' .. queue, id)
        redis.call('ZADD', prefix .. 'q:' .. target, score, id)
        redis.call('ZADD', prefix .. 'qt:' .. target, since or now, id)
        redis.call('SADD', prefix .. 'queues', target)
        redis.call('HSET', tkey, 'queue', target)
        bump(tkey)
        queue = target
        done[#done + 1] = action
      end
    elseif action == 'notify' then
      done[#done + 1] = action
    elseif action == 'overdue' then
      redis.call('HSET', tkey, 'overdue', '1')
      redis.call('SADD', prefix .. 'overdue', id)
      done[#done + 1] = action
    end
  end
  return done, queue
end

-- Take the whole batch off the timers at once.
if #due > 0 then
  local members = {}
  for i = 1, #due, 2 do
    members[#members + 1] = due[i]
  end
  redis.call('ZREM', KEYS[1], unpack(members))
end

for i = 1, #due, 2 do
  local member = due[i]
  local score = tonumber(due[i + 1])
  local id, clock, kind, ver = string.match(member, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
  if id then
    local tkey = prefix .. 't:' .. id
    local cur = redis.call('HMGET', tkey, 'clock_ver', 'queue')
    if cur[1] == ver
      and redis.call('HSETNX', tkey, 'fired:' .. clock .. ':' .. kind, now) == 1 then
      local queue = cur[2] or ''
      -- Supervisors' lists: warned clocks are at risk until they breach or stop.
      if kind == 'b' then
        redis.call('ZREM', prefix .. 'risk', id .. '|' .. clock)
        redis.call('ZADD', prefix .. 'late', score, id .. '|' .. clock)
      else
        local due_b = redis.call('ZSCORE', KEYS[1], id .. '|' .. clock .. '|b|' .. ver)
        redis.call('ZADD', prefix .. 'risk', due_b or score, id .. '|' .. clock)
      end
      if kind == 'b' then
        local clocks = cjson.decode(redis.call('HGET', tkey, 'clocks') or '{}')
        local terms = (clocks.clocks or {})[clock] and clocks.clocks[clock].terms or {}
        local done
        done, queue = breach_actions(id, tkey, terms)
        event(id, {'type', 'sla.breached', 'id', id, 'clock', clock, 'queue', queue,
                   'due_ms', tostring(score), 'actions', table.concat(done, ',')})
        for _, action in ipairs(done) do
          if action == 'notify' then
            event(id, {'type', 'sla.notify', 'id', id, 'clock', clock, 'queue', queue})
          end
        end
      else
        event(id, {'type', 'sla.warning', 'id', id, 'clock', clock, 'queue', queue,
                   'threshold', kind, 'due_ms', tostring(score)})
      end
      out[#out + 1] = clock
      out[#out + 1] = kind
      out[#out + 1] = tostring(now - score)
      out[#out + 1] = queue
    end
  end
end

if #due / 2 >= tonumber(ARGV[2]) then
  out[3] = '1'
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then
  out[2] = nxt[2]
end
return out
