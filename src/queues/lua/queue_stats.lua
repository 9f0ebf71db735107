-- queue_stats.lua: depth, depth by priority band and by warning level, oldest wait, SLA outcomes
-- and leases of every queue of one county.
--
-- One round trip per county, read in one atomic step, so the numbers of a queue agree with each
-- other and every gateway process reports the same thing.
--
-- KEYS[1]  county queue set  hl:{county}:queues
-- ARGV[1]  key prefix of the county, "hl:{county}:"
-- ARGV[2]  number of bands (= warning levels)
-- ARGV[3..] the warning levels' names, highest first
-- Returns  { now_ms, name, depth, oldest_enqueued_ms (0 if empty), band0, band1, ...,
--            level0, level1, ..., met_1h, breached_1h, met_24h, breached_24h, met_7d,
--            breached_7d, breached_running, leased, name, ... }
-- A band is where a ticket waits (a breach raises it one band); a level is the ticket's own
-- warning level (the hash's `level`), counted by reading each waiting ticket: O(depth), read
-- once per scrape or dashboard refresh. SLA outcomes come from ticket_action.lua's buckets:
-- 5-minute ones for the last hour, hourly ones for 24 hours and 7 days (every clock counted);
-- breached_running counts the clocks in hl:{c}:late (breached, still running), which count as
-- breached in every window until they stop and land in a bucket.

local prefix = ARGV[1]
local bands = tonumber(ARGV[2])
local level_index = {}
for i = 3, #ARGV do
  level_index[ARGV[i]] = i - 2
end
local now = redis_now()
local out = {tostring(now)}

local function outcomes(key_base, newest, count)
  local met, breached = 0, 0
  for b = newest - count + 1, newest do
    local h = redis.call('HGETALL', key_base .. b)
    for i = 1, #h, 2 do
      if string.sub(h[i], -4) == ':met' then
        met = met + tonumber(h[i + 1])
      else
        breached = breached + tonumber(h[i + 1])
      end
    end
  end
  return met, breached
end

-- Tickets under a lease (claimed or offered, not yet accepted), by the queue they came from.
local leased = {}
for _, id in ipairs(redis.call('ZRANGE', prefix .. 'leases', 0, -1)) do
  local q = redis.call('HGET', prefix .. 't:' .. id, 'queue')
  if q then
    leased[q] = (leased[q] or 0) + 1
  end
end

-- Clocks breached and still running, by the queue of their ticket.
local late = {}
for _, member in ipairs(redis.call('ZRANGE', prefix .. 'late', 0, -1)) do
  local id = string.match(member, '^([^|]+)|')
  local q = id and redis.call('HGET', prefix .. 't:' .. id, 'queue')
  if q then
    late[q] = (late[q] or 0) + 1
  end
end

local names = redis.call('SMEMBERS', KEYS[1])
table.sort(names)
for _, name in ipairs(names) do
  local q = prefix .. 'q:' .. name
  out[#out + 1] = name
  out[#out + 1] = tostring(redis.call('ZCARD', q))
  local oldest = redis.call('ZRANGE', prefix .. 'qt:' .. name, 0, 0, 'WITHSCORES')
  out[#out + 1] = oldest[2] or '0'
  for b = 0, bands - 1 do
    local lo = queue_score(b, 0)
    out[#out + 1] = tostring(redis.call('ZCOUNT', q, lo, '(' .. tostring(queue_score(b + 1, 0))))
  end
  local by_level = {}
  for l = 1, bands do
    by_level[l] = 0
  end
  for _, id in ipairs(redis.call('ZRANGE', q, 0, -1)) do
    local l = level_index[redis.call('HGET', prefix .. 't:' .. id, 'level') or '']
    if l then
      by_level[l] = by_level[l] + 1
    end
  end
  for l = 1, bands do
    out[#out + 1] = tostring(by_level[l])
  end
  local windows = {
    {prefix .. 'sla5:' .. name .. ':', math.floor(now / 300000), 12},
    {prefix .. 'slah:' .. name .. ':', math.floor(now / 3600000), 24},
    {prefix .. 'slah:' .. name .. ':', math.floor(now / 3600000), 168},
  }
  for _, w in ipairs(windows) do
    local met, breached = outcomes(w[1], w[2], w[3])
    out[#out + 1] = tostring(met)
    out[#out + 1] = tostring(breached)
  end
  out[#out + 1] = tostring(late[name] or 0)
  out[#out + 1] = tostring(leased[name] or 0)
end
return out
