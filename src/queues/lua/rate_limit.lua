-- rate_limit.lua: one request against a caller's token bucket, shared by every gateway.
--
-- The bucket holds at most `burst` tokens and refills at `rate` tokens per second; a request
-- takes one token or is refused with the time until the next token. Time comes from Redis TIME,
-- so gateways with skewed clocks share one bucket correctly. The key expires once the bucket
-- would be full again, so idle callers cost nothing.
--
-- KEYS[1] bucket      hl:rl:<caller name>   (hash: tokens = float, ts = microseconds)
-- ARGV[1] rate        tokens refilled per second (> 0)
-- ARGV[2] burst       bucket size (>= 1)
-- Returns { allowed (1 or 0), retry_after_ms (0 when allowed), tokens left (floor) }

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
-- (a clock that stepped back leaves the bucket as it was)

local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * 1000 / rate)
end

-- %.0f and %.6f: tostring would print microsecond timestamps in 14-digit scientific notation.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return { allowed, retry_ms, math.floor(tokens) }
