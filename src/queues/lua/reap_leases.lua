-- reap_leases.lua: return tickets whose lease expired to their old place in line.
--
-- The ticket goes back with its old score (band and arrival) and its old enqueue time, so it
-- is not sent to the back of the queue. After `max` expiries it goes to the supervisors' queue
-- instead, keeping its place and age there. Any replica's mover may run this.
--
-- KEYS[1] county leases  hl:{c}:leases   KEYS[2] county events  hl:{c}:events
-- ARGV[1] key prefix "hl:{c}:"   ARGV[2] most to reap   ARGV[3] max expiries
-- ARGV[4] supervisors' queue name   ARGV[5] stream MAXLEN
-- ARGV[6] missed offers or leases in a row after which the agent is set away
-- Returns { next_deadline_ms or "", reaped count }

local prefix = ARGV[1]
local now = redis_now()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local tkey = prefix .. 't:' .. id
  local f = redis.call('HMGET', tkey, 'queue', 'q_score', 'q_since', 'lease_agent', 'lease_id', 'status',
    'lease_declined')
  -- A declined lease is reported as such, so the operator's console can say "declined".
  local etype = 'lease.expired'
  if f[7] == '1' then
    etype = 'lease.declined'
  end
  if f[6] == 'leased' then
    local queue = f[1] or ''
    local expiries = redis.call('HINCRBY', tkey, 'lease_expiries', 1)
    local target = queue
    if expiries >= tonumber(ARGV[3]) then
      target = ARGV[4]
      redis.call('HSET', tkey, 'queue', target)
      redis.call('SADD', prefix .. 'queues', target)
    end
    -- A live caller whose reservation lapsed waits in line again, in their original place.
    local live = redis.call('HMGET', tkey, 'live', 'live_pool', 'live_since_ms')
    if live[1] == 'waiting' and live[2] then
      redis.call('ZADD', prefix .. 'live:' .. live[2], live[3] or now, id)
    end
    redis.call('ZADD', prefix .. 'q:' .. target, f[2], id)
    redis.call('ZADD', prefix .. 'qt:' .. target, f[3] or now, id)
    redis.call('HSET', tkey, 'status', 'queued')
    bump(tkey)
    redis.call('HDEL', tkey, 'lease_id', 'lease_agent', 'lease_expires_ms', 'lease_declined', 'live_lease')
    if f[4] then
      local akey = prefix .. 'agent:' .. f[4]
      if redis.call('EXISTS', akey) == 1 then
        redis.call('HINCRBY', akey, 'active', -1)
        redis.call('HINCRBY', akey, 'missed', 1)
        if redis.call('HGET', akey, 'offer_ticket') == id then
          redis.call('HDEL', akey, 'offer_ticket')
        end
        local streak = redis.call('HINCRBY', akey, 'missed_streak', 1)
        if streak >= tonumber(ARGV[6]) and redis.call('HGET', akey, 'status') == 'available' then
          redis.call('HSET', akey, 'status', 'away')
          redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'agent.away', 'agent', f[4],
            'missed_in_a_row', tostring(streak), 'at_ms', tostring(now))
        end
      end
    end
    redis.call('RPUSH', prefix .. 'h:' .. id, cjson.encode({type = etype, at_ms = now,
      agent = f[4], lease_id = f[5], expiries = expiries, queue = target}))
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', etype, 'id', id,
      'queue', target, 'agent', f[4] or '', 'at_ms', tostring(now))
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {nxt[2] or '', tostring(#due)}
