-- queue_stats.lua: depth, depth by warning band and oldest wait of every queue of one county.
--
-- One round trip per county, read in one atomic step, so the numbers of a queue agree with each
-- other and every gateway process reports the same thing.
--
-- KEYS[1]  county queue set  hl:{county}:queues
-- ARGV[1]  key prefix of the county, "hl:{county}:"
-- ARGV[2]  number of bands (warning levels)
-- Returns  { now_ms, name, depth, oldest_enqueued_ms (0 if empty), band0, band1, ..., name, ... }

local prefix = ARGV[1]
local bands = tonumber(ARGV[2])
local t = redis.call('TIME')
local out = {tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))}
local names = redis.call('SMEMBERS', KEYS[1])
table.sort(names)
for _, name in ipairs(names) do
  local q = prefix .. 'q:' .. name
  out[#out + 1] = name
  out[#out + 1] = tostring(redis.call('ZCARD', q))
  local oldest = redis.call('ZRANGE', prefix .. 'qt:' .. name, 0, 0, 'WITHSCORES')
  out[#out + 1] = oldest[2] or '0'
  for b = 0, bands - 1 do
    local lo = b * 4294967296
    out[#out + 1] = tostring(redis.call('ZCOUNT', q, lo, '(' .. tostring(lo + 4294967296)))
  end
end
return out
