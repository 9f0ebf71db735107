-- live.lua: the caller-on-the-line part of a live transfer (人工转接), one operation per call.
--
-- A live ticket is an ordinary queued ticket plus a few fields on its hash and, while the caller
-- waits, a member of the pool's waiting set hl:{c}:live:<pool> (score: when they started
-- waiting). Reservations themselves are leases taken by claim.lua in "live" mode.
--
-- KEYS[1] ticket hash   hl:{c}:t:<id>
-- KEYS[2] waiting set   hl:{c}:live:<pool>
-- KEYS[3] county events hl:{c}:events
-- ARGV[1] operation: "begin" | "estimate" | "cancel"
-- ARGV[2] key prefix "hl:{c}:"   ARGV[3] stream MAXLEN   ARGV[4] actor
--
-- begin:    ARGV[5] "live" (on duty: the caller waits) or "callback" (off duty: called back)
--           ARGV[6] the pool (agent kind's queue prefix), kept for the reaper
--           Registers the request once; a retry changes nothing.
--           Returns { "new" | "exists", live state, position (1-based, 0 when not waiting) }
-- estimate: ARGV[5] estimate ms   ARGV[6] position   ARGV[7] agents counted   ARGV[8] handle ms
--           Keeps the first estimate (the one the caller was told) and tells the console.
--           Returns { "ok" }
-- cancel:   ARGV[5] reason   ARGV[6] wrap-up ms
--           The caller hung up. A reservation not yet accepted is released and the ticket goes
--           back to its place in line as ordinary work; an agent already on the call starts its
--           wrap-up. Returns { "ok", previous live state, agent or "" } | { "not_live", state }

local tkey = KEYS[1]
local op = ARGV[1]
local prefix = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('HGET', tkey, 'id')
if not id then
  return {'missing'}
end
local queue = redis.call('HGET', tkey, 'queue') or ''

local function event(etype, ...)
  local fields = {'type', etype, 'id', id, 'queue', queue, 'actor', ARGV[4], 'at_ms', tostring(now), ...}
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
  local e = {type = etype, at_ms = now, actor = ARGV[4]}
  local extra = {...}
  for i = 1, #extra, 2 do
    e[extra[i]] = extra[i + 1]
  end
  redis.call('RPUSH', prefix .. 'h:' .. id, cjson.encode(e))
end

local function position()
  local rank = redis.call('ZRANK', KEYS[2], id)
  if rank then
    return rank + 1
  end
  return 0
end

if op == 'begin' then
  local state = redis.call('HGET', tkey, 'live')
  if state then
    return {'exists', state, position()}
  end
  local mode = ARGV[5]
  state = 'waiting'
  if mode == 'callback' then
    state = 'callback'
  end
  redis.call('HSET', tkey, 'live', state, 'transfer', mode, 'live_since_ms', now,
    'live_operator', ARGV[4], 'live_pool', ARGV[6])
  if state == 'waiting' then
    redis.call('ZADD', KEYS[2], now, id)
  end
  event('live.requested', 'transfer', mode)
  return {'new', state, position()}
end

if op == 'estimate' then
  if redis.call('HSETNX', tkey, 'live_estimate_ms', ARGV[5]) == 1 then
    event('live.waiting', 'estimate_ms', ARGV[5], 'position', ARGV[6], 'agents', ARGV[7],
      'handle_ms', ARGV[8])
  end
  return {'ok'}
end

if op == 'cancel' then
  local state = redis.call('HGET', tkey, 'live') or ''
  if state ~= 'waiting' and state ~= 'accepted' and state ~= 'connected' then
    return {'not_live', state}
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('HSET', tkey, 'live', 'cancelled', 'live_ended_ms', now)
  local agent = ''
  local f = redis.call('HMGET', tkey, 'status', 'lease_agent', 'live_lease', 'lease_id', 'q_score',
    'q_since', 'assigned_agent')
  if state == 'waiting' and f[1] == 'leased' and f[3] and f[3] == f[4] then
    -- Reserved but not accepted: release the agent, and the ticket keeps its place in line.
    agent = f[2] or ''
    redis.call('ZREM', prefix .. 'leases', id)
    redis.call('ZADD', prefix .. 'q:' .. queue, f[5], id)
    redis.call('ZADD', prefix .. 'qt:' .. queue, f[6] or now, id)
    redis.call('HSET', tkey, 'status', 'queued')
    redis.call('HDEL', tkey, 'lease_id', 'lease_agent', 'lease_expires_ms', 'lease_declined', 'live_lease')
    local akey = prefix .. 'agent:' .. agent
    if redis.call('EXISTS', akey) == 1 then
      redis.call('HINCRBY', akey, 'active', -1)
      if redis.call('HGET', akey, 'offer_ticket') == id then
        redis.call('HDEL', akey, 'offer_ticket')
      end
    end
  elseif state ~= 'waiting' and f[7] then
    -- The agent was on the call: wrap-up starts now.
    agent = f[7]
    local akey = prefix .. 'agent:' .. agent
    if redis.call('EXISTS', akey) == 1 then
      redis.call('HSET', akey, 'busy_until_ms', now + tonumber(ARGV[6]))
    end
  end
  event('live.cancelled', 'reason', ARGV[5], 'agent', agent, 'previous', state)
  return {'ok', state, agent}
end

return {'unknown_op'}
