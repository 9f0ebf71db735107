-- reserve.lua: step one of intake, binding an idempotency key to one county for the whole
-- deployment.
--
-- The key's own slot (its hash tag is the whole key), so keys spread over the cluster and this
-- script touches one slot. The first request for a key reserves it for its county; every later
-- request learns which county holds it. Only a request for that same county goes on to
-- ingest.lua (step two, in the county's slot), which compares the content and assigns the id
-- exactly once; one for another county is a conflict on region.code, so a key never makes
-- tickets in two counties. Nothing else is written here, so a gateway that stops between the
-- steps leaves only a reservation that the retry (same county) finds and completes.
--
-- KEYS[1]  reservation      hl:{idem:<space>:<source>:<external_id>}
-- ARGV[1]  county code of this request
-- ARGV[2]  content hash (kept for operators reading the key; not compared here)
-- ARGV[3]  TTL in seconds (0 = keep forever), the same as the county key's
-- Returns  {'ok'} when the key is (now or already) this county's,
--          {'elsewhere', <county>} when another county holds it.

local seen = redis.call('GET', KEYS[1])
if seen then
  local sep = string.find(seen, '|', 1, true)
  local county = sep and string.sub(seen, 1, sep - 1) or seen
  if county ~= ARGV[1] then
    return {'elsewhere', county}
  end
  return {'ok'}
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
end
return {'ok'}
