-- event_streams.lua: one caller's open /v1/events streams, counted across every gateway.
--
-- Each open stream is a member of a sorted set scored by when its lease runs out. The gateway
-- serving the stream renews the lease while the client is connected and removes the member
-- when the client goes; a gateway that dies leaves its streams to lapse at their expiry, so a
-- crash never holds a caller's slots for longer than one lease. Time comes from Redis TIME, so
-- gateways with skewed clocks agree.
--
-- KEYS[1] streams     hl:es:<caller name>   (zset: member = stream id, score = lease end, ms)
-- ARGV[1] member      the stream's id (random)
-- ARGV[2] limit       most streams at once; 0 = unlimited (only used with "open")
-- ARGV[3] lease_ms    lease length
-- ARGV[4] mode        "open": refuse when the caller holds `limit` live streams;
--                     "renew": extend (re-add) unconditionally
-- Returns { admitted (1 or 0), live streams after the call }

local now = redis_now()
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[4] == 'open' and limit > 0 and redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  local live = redis.call('ZCARD', KEYS[1])
  if live >= limit then
    return { 0, live }
  end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease + 1000)
return { 1, redis.call('ZCARD', KEYS[1]) }
