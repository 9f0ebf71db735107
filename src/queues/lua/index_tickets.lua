-- index_tickets.lua: lists tickets stored before the ticket index and the case archive existed
-- (an upgrade), so search finds them and ended ones are archived like any other. Idempotent:
-- a ticket already listed keeps its entry.
--
-- KEYS[1] hl:{c}:tickets   KEYS[2] hl:{c}:ended
-- ARGV[1] key prefix "hl:{c}:"   ARGV[2..] ticket ids (from a SCAN of the county's hashes)
-- Returns { listed, ended } (how many were added to each)

local ENDED = {closed = true, returned = true, withdrawn = true, transferred = true}
local prefix = ARGV[1]
local now = redis_now()
local listed, ended = 0, 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HMGET', prefix .. 't:' .. id, 'status', 'created_ms')
  if v[1] then
    listed = listed + redis.call('ZADD', KEYS[1], 'NX', tonumber(v[2]) or 0, id)
    if ENDED[v[1]] then
      ended = ended + redis.call('ZADD', KEYS[2], 'NX', now, id)
    end
  end
end
return {listed, ended}
