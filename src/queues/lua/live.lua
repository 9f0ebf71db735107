-- live.lua: the caller-on-the-line part of a live transfer (人工转接), one operation per call.
--
-- A live ticket is an ordinary queued ticket plus a few fields on its hash and, while the caller
-- waits, a member of the pool's waiting set hl:{c}:live:<pool> (score: when they started
-- waiting). Reservations themselves are leases taken by claim.lua in "live" mode.
--
-- KEYS[1] ticket hash   hl:{c}:t:<id>
-- KEYS[2] waiting set   hl:{c}:live:<pool>
-- KEYS[3] county events hl:{c}:events
-- ARGV[1] operation: "begin" | "estimate"
-- ARGV[2] key prefix "hl:{c}:"   ARGV[3] stream MAXLEN   ARGV[4] actor
--
-- begin:    ARGV[5] "live" (on duty: the caller waits) or "callback" (off duty: called back)
--           ARGV[6] the pool (agent kind's queue prefix), kept for the reaper
--           Registers the request once; a retry changes nothing.
--           Returns { "new" | "exists", live state, position (1-based, 0 when not waiting) }
-- estimate: ARGV[5] estimate ms   ARGV[6] position   ARGV[7] agents counted   ARGV[8] handle ms
--           Keeps the first estimate (the one the caller was told) and tells the console.
--           Returns { "ok" }
-- The hang-up (cancel_live) and the live side of accept, first contact, end of call and
-- withdrawal are actions like the others: ticket_action.lua writes them.

local tkey = KEYS[1]
local op = ARGV[1]
local prefix = ARGV[2]
local now = redis_now()
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
  -- Only open work can have a caller waiting for it: a withdrawn or closed ticket cannot.
  local status = redis.call('HGET', tkey, 'status')
  if status ~= 'queued' and status ~= 'leased' and status ~= 'accepted' and status ~= 'in_progress' then
    return {'closed', status or '', 0}
  end
  local mode = ARGV[5]
  state = 'waiting'
  if mode == 'callback' then
    state = 'callback'
  end
  redis.call('HSET', tkey, 'live', state, 'transfer', mode, 'live_since_ms', now,
    'live_operator', ARGV[4], 'live_pool', ARGV[6])
  bump(tkey)
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

return {'unknown_op'}
