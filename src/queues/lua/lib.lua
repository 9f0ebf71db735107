-- lib.lua: the helpers every script shares. The store prepends this file to each script when
-- it loads it (src/queues/scripts.rs), so none of them is copied into a script.
--
-- redis_now()              Redis TIME in ms: every gateway agrees on it, whatever its own clock
-- queue_score(band, seq)   a ready queue's score: most urgent band first, then arrival order
-- bump(tkey)               moves the ticket's record version; every script that changes a ticket
--                          or who holds it calls it, so an action computed from an older read
--                          is refused by ticket_action.lua and recomputed
-- to_outbox(prefix, partner, fields)
--                          appends an event for a partner's callbacks (事件反馈) to its durable
--                          outbox hl:{c}:outbox:<partner>, in the same step as the change

local BAND = 4294967296

local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function queue_score(band, seq)
  return tonumber(band) * BAND + tonumber(seq)
end

local function bump(tkey)
  return redis.call('HINCRBY', tkey, 'ver', 1)
end

local function to_outbox(prefix, partner, fields)
  if partner and partner ~= '' then
    redis.call('XADD', prefix .. 'outbox:' .. partner, '*', unpack(fields))
  end
end

