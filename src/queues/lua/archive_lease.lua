-- archive_lease.lua: one archiving gateway per county at a time. Correctness does not depend
-- on it (archiving is idempotent); it keeps gateways from doing the same work twice.
--
-- KEYS[1] hl:{c}:archive_lease
-- ARGV[1] "take" | "release"   ARGV[2] the gateway's token   ARGV[3] lease length, ms
-- Returns 1 when the caller holds (take) or held (release) the lease, else 0

local holder = redis.call('GET', KEYS[1])
if ARGV[1] == 'release' then
  if holder == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if holder and holder ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
return 1
