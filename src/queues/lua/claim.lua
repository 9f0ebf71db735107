-- claim.lua: give one waiting ticket to one agent under a lease, or refuse.
--
-- The gateway chooses the candidate (eligibility and order are Rust, see src/agents); this
-- script takes it atomically: ZREM from the ready queue succeeds for one caller only, so two
-- agents racing for a ticket never both get it. The lease id comes from a county counter, so
-- lease ids only grow (a fencing token).
--
-- KEYS[1] ready queue       hl:{c}:q:<queue>
-- KEYS[2] queue by age      hl:{c}:qt:<queue>
-- KEYS[3] county leases     hl:{c}:leases   (member ticket id, score lease deadline ms)
-- KEYS[4] agent hash        hl:{c}:agent:<agent id>
-- KEYS[5] ticket hash       hl:{c}:t:<id>
-- KEYS[6] lease counter     hl:{c}:lease_seq
-- KEYS[7] event stream      hl:{c}:events
-- ARGV[1] ticket id   ARGV[2] agent id   ARGV[3] lease length ms   ARGV[4] stream MAXLEN
-- ARGV[5] key prefix "hl:{c}:"
-- ARGV[6] "claim" (the agent pulled it), "offer" (pushed to the agent's console) or "live"
--         (a reservation for a caller waiting on the line)
-- Returns { "ok", lease_id, expires_ms } | { "gone" } | { "full" } | { "unavailable" } | { "busy" }
--
-- A claim moves the ticket's record version (lib.lua's bump), as does withdrawing a pushed
-- offer, so an action decided on the ticket before the claim is refused and decided again.
--
-- Offers and live reservations go only to an agent who holds no other offer and is not on a
-- live call or in its wrap-up (busy_until_ms), checked here so that two consoles racing for the
-- last free lawyer never both get them. A live reservation also needs the caller still waiting,
-- and it outranks a pushed offer of queued work: that offer is withdrawn (the ticket returns to
-- its place in line) so the caller on the line gets the agent. A caller with a reservation (or a
-- claim) leaves the waiting line hl:{c}:live:<pool>; the reaper puts them back if it lapses.

local id = ARGV[1]
local mode = ARGV[6]
local spec = redis.call('HMGET', KEYS[4], 'status', 'active', 'capacity', 'offer_ticket', 'busy_until_ms')
if spec[1] ~= 'available' then
  return {'unavailable'}
end
if tonumber(spec[2] or '0') >= tonumber(spec[3] or '0') then
  return {'full'}
end
local now = redis_now()
if mode ~= 'claim' and tonumber(spec[5] or '0') > now then
  return {'busy'}
end
local live_state = redis.call('HGET', KEYS[5], 'live')
if mode == 'live' and live_state ~= 'waiting' then
  return {'gone'}
end
local score = redis.call('ZSCORE', KEYS[1], id)
if not score then
  return {'gone'}
end
local held = spec[4] or ''
if mode ~= 'claim' and held ~= '' then
  local hkey = ARGV[5] .. 't:' .. held
  local h = redis.call('HMGET', hkey, 'status', 'lease_agent', 'lease_id', 'live_lease', 'queue',
    'q_score', 'q_since')
  if h[1] == 'leased' and h[2] == ARGV[2] then
    if mode ~= 'live' or (h[4] and h[4] == h[3]) then
      return {'busy'}
    end
    -- Withdraw the pushed offer of queued work: back to its place, the agent one ticket lighter.
    redis.call('ZREM', KEYS[3], held)
    redis.call('ZADD', ARGV[5] .. 'q:' .. h[5], h[6], held)
    redis.call('ZADD', ARGV[5] .. 'qt:' .. h[5], h[7] or now, held)
    redis.call('HSET', hkey, 'status', 'queued')
    redis.call('HDEL', hkey, 'lease_id', 'lease_agent', 'lease_expires_ms', 'lease_declined', 'live_lease')
    redis.call('HINCRBY', KEYS[4], 'active', -1)
    bump(hkey)
    redis.call('RPUSH', ARGV[5] .. 'h:' .. held, cjson.encode({type = 'lease.preempted', at_ms = now,
      agent = ARGV[2], lease_id = h[3]}))
    redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[4], '*', 'type', 'lease.preempted', 'id', held,
      'queue', h[5] or '', 'agent', ARGV[2], 'at_ms', tostring(now))
  end
  redis.call('HDEL', KEYS[4], 'offer_ticket')
end
if live_state == 'waiting' then
  redis.call('ZREM', ARGV[5] .. 'live:' .. (redis.call('HGET', KEYS[5], 'live_pool') or ''), id)
end
local since = redis.call('ZSCORE', KEYS[2], id)
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
local lease = 'L' .. redis.call('INCR', KEYS[6])
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], expires, id)
redis.call('HSET', KEYS[5], 'status', 'leased', 'lease_id', lease, 'lease_agent', ARGV[2],
  'lease_expires_ms', expires, 'q_score', score, 'q_since', since or now)
bump(KEYS[5])
redis.call('HINCRBY', KEYS[4], 'active', 1)
redis.call('HSET', KEYS[4], 'last_assigned_ms', now)
local etype = 'ticket.claimed'
local live = '0'
if mode == 'offer' or mode == 'live' then
  etype = 'ticket.offered'
  redis.call('HSET', KEYS[4], 'offer_ticket', id)
end
if mode == 'live' then
  live = '1'
  redis.call('HSET', KEYS[5], 'live_lease', lease)
end

local queue = redis.call('HGET', KEYS[5], 'queue') or ''
redis.call('RPUSH', ARGV[5] .. 'h:' .. id, cjson.encode({type = etype, at_ms = now,
  actor = ARGV[2], agent = ARGV[2], lease_id = lease, lease_expires_ms = expires, live = live == '1'}))
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[4], '*', 'type', etype, 'id', id,
  'queue', queue, 'agent', ARGV[2], 'lease_id', lease, 'lease_expires_ms', tostring(expires),
  'live', live, 'at_ms', tostring(now))
return {'ok', lease, tostring(expires)}
