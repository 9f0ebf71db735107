-- archived.lua: removes tickets from Redis once the case archive holds them. Archiving is two
-- steps in two stores: the archive commits the case files first, then this script removes the
-- tickets, each only if it is still exactly the version the archive holds, still listed as
-- ended and not in the middle of a move. A gateway stopping between the steps leaves a ticket in
-- both stores; the next pass finds it listed, writes the same version again (which changes
-- nothing) and removes it. A ticket reopened meanwhile has a newer version and stays.
--
-- KEYS[1] hl:{c}:ended (ended tickets by when they ended)   KEYS[2] hl:{c}:moving
-- KEYS[3] hl:{c}:timers   KEYS[4] hl:{c}:open   KEYS[5] hl:{c}:overdue
-- KEYS[6] hl:{c}:tickets (every ticket in Redis)
-- ARGV[1] key prefix "hl:{c}:"   ARGV[2..] pairs: id, the version the archive holds
-- Returns { removed, kept (changed since read, or moving), gone (no longer in Redis) }

local prefix = ARGV[1]
local removed, kept, gone = 0, 0, 0
for i = 2, #ARGV, 2 do
  local id, ver = ARGV[i], ARGV[i + 1]
  local tkey = prefix .. 't:' .. id
  local cur = redis.call('HGET', tkey, 'ver')
  if not cur then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[6], id)
    gone = gone + 1
  elseif cur == ver and redis.call('ZSCORE', KEYS[1], id)
      and not redis.call('ZSCORE', KEYS[2], id) then
    local timers = redis.call('HGET', tkey, 'timers')
    if timers then
      for _, m in ipairs(cjson.decode(timers)) do
        redis.call('ZREM', KEYS[3], m)
      end
    end
    redis.call('SREM', KEYS[4], id)
    redis.call('SREM', KEYS[5], id)
    redis.call('DEL', tkey, prefix .. 'h:' .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[6], id)
    removed = removed + 1
  else
    kept = kept + 1
  end
end
return {removed, kept, gone}
