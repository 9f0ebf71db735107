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
-- Offers and live reservations go only to an agent who holds no other offer and is not on a
-- live call or in its wrap-up (busy_until_ms), checked here so that two consoles racing for the
-- last free lawyer never both get them. A live reservation also needs the caller still waiting.

local id = ARGV[1]
local mode = ARGV[6]
local spec = redis.call('HMGET', KEYS[4], 'status', 'active', 'capacity', 'offer_ticket', 'busy_until_ms')
if spec[1] ~= 'available' then
  return {'unavailable'}
end
if tonumber(spec[2] or '0') >= tonumber(spec[3] or '0') then
  return {'full'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode ~= 'claim' and ((spec[4] or '') ~= '' or tonumber(spec[5] or '0') > now) then
  return {'busy'}
end
if mode == 'live' and redis.call('HGET', KEYS[5], 'live') ~= 'waiting' then
  return {'gone'}
end
local score = redis.call('ZSCORE', KEYS[1], id)
if not score then
  return {'gone'}
end
local since = redis.call('ZSCORE', KEYS[2], id)
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
local lease = 'L' .. redis.call('INCR', KEYS[6])
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], expires, id)
redis.call('HSET', KEYS[5], 'status', 'leased', 'lease_id', lease, 'lease_agent', ARGV[2],
  'lease_expires_ms', expires, 'q_score', score, 'q_since', since or now)
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
