-- ingest.lua: register one ticket atomically and exactly once.
--
-- Everything a new ticket writes happens here, in one script, so a crash or a lost connection
-- leaves either the whole ticket or nothing. A retry of the same (source, external_id) finds the
-- idempotency key and gets the same ticket back; different content under that key is a conflict.
--
-- KEYS[1]  idempotency key      hl:{county}:idem:<space>:<source>:<external_id> (the county's
--          copy of the key reserved deployment-wide by reserve.lua; it holds the id)
-- KEYS[2]  county sequence      hl:{county}:seq
-- KEYS[3]  county queue set     hl:{county}:queues
-- KEYS[4]  county event stream  hl:{county}:events
-- KEYS[5]  optional: the key the pre-space scheme wrote, hl:{county}:idem:<source>:<external_id>;
--          honoured (same content: that ticket; other: conflict) when ARGV[27] owns it
-- ARGV[1]  content hash (hex SHA-256 of the canonical ticket)
-- ARGV[2]  key prefix of the county, "hl:{county}:"
-- ARGV[3]  county code
-- ARGV[4]  queue name, or "" when the ticket goes back to the sender
-- ARGV[5]  priority band (0 = most urgent)
-- ARGV[6]  status: "queued" or "returned"
-- ARGV[7]  ticket JSON
-- ARGV[8]  classification JSON
-- ARGV[9]  service        ARGV[10] warning level     ARGV[11] category   ARGV[12] source
-- ARGV[13] SLA clocks JSON (deadlines are computed by the gateway, which knows the calendars)
-- ARGV[14] SLA timers JSON: [[clock, kind, at_ms], ...]; stored as "<id>|<clock>|<kind>|<ver>"
-- ARGV[15] idempotency TTL in seconds (0 = keep forever)
-- ARGV[16] approximate MAXLEN of the event stream
-- ARGV[17] actor (token name)   ARGV[18] routing rule that chose the queue
-- ARGV[19] region path county/town/village/grid (agents' eligibility)
-- ARGV[20] caller key (a hash of the phone number, "" when none): links repeat requests
-- ARGV[21] how long a caller's earlier tickets are linked, in seconds
-- ARGV[22] enqueue time to keep (ms; "0" = now): a ticket moved from another county keeps its age
-- ARGV[23] the id it was moved from, or ""
-- ARGV[24] the partner to call back with this ticket's events (事件反馈), or "" / absent:
--          its events go to the durable outbox hl:{county}:outbox:<partner> (see outbox.lua)
-- ARGV[25] the sender (token name) whose ticket it is: a partner acts only on its own tickets
-- ARGV[26] "1" when the sender asked for a live transfer (the caller is on the line), else ""
-- ARGV[27] who may use the old key KEYS[5]: "*" (the consoles' and the gateway's own spaces), or
--          the partner's name, which must be the old ticket's sender (another partner's old key
--          is not this sender's: its id belongs to its own space)
-- ARGV[28] JSON list of the caller's earlier tickets about the same category that are in the
--          case archive (no longer here): linked too, one way (their side is the archive's)
-- Returns  { outcome, id, status, queue, classification JSON, created_ms, clocks JSON,
--            "1" if registered with a live request }
--          outcome is "created", "existing" or "conflict" (conflict carries only the id), or
--          "archived" with the id: the same ticket, no longer in Redis (read it from the archive).

local FIELDS = {'status', 'queue', 'classification', 'created_ms', 'clocks', 'live_asked'}

local function stored(outcome, id, prefix)
  if redis.call('EXISTS', prefix .. 't:' .. id) == 0 then
    -- Ended and moved to the case archive: the gateway reads it there.
    return {'archived', id}
  end
  local v = redis.call('HMGET', prefix .. 't:' .. id, unpack(FIELDS))
  return {outcome, id, v[1] or '', v[2] or '', v[3] or '{}', v[4] or '0', v[5] or '{}', v[6] or ''}
end

local prefix = ARGV[2]
local seen = redis.call('GET', KEYS[1])
if not seen and KEYS[5] then
  local old = redis.call('GET', KEYS[5])
  if old then
    local owner = ARGV[27] or ''
    local sep = string.find(old, '|', 1, true)
    local old_id = sep and string.sub(old, 1, sep - 1) or old
    if owner == '*' or redis.call('HGET', prefix .. 't:' .. old_id, 'sender') == owner then
      seen = old
    end
  end
end
if seen then
  local sep = string.find(seen, '|', 1, true)
  local id = string.sub(seen, 1, sep - 1)
  if string.sub(seen, sep + 1) ~= ARGV[1] then
    return {'conflict', id}
  end
  return stored('existing', id, prefix)
end

local now_ms = redis_now()
local seq = redis.call('INCR', KEYS[2])
local id = ARGV[3] .. '-' .. string.format('%08d', seq)
local queue = ARGV[4]
local members = {}
for _, tm in ipairs(cjson.decode(ARGV[14])) do
  local member = id .. '|' .. tm[1] .. '|' .. tm[2] .. '|1'
  redis.call('ZADD', prefix .. 'timers', tm[3], member)
  members[#members + 1] = member
end

local ttl = tonumber(ARGV[15])
if ttl > 0 then
  redis.call('SET', KEYS[1], id .. '|' .. ARGV[1], 'EX', ttl)
else
  redis.call('SET', KEYS[1], id .. '|' .. ARGV[1])
end

redis.call('HSET', prefix .. 't:' .. id,
  'id', id, 'ticket', ARGV[7], 'classification', ARGV[8], 'hash', ARGV[1],
  'status', ARGV[6], 'queue', queue, 'band', ARGV[5], 'seq', seq,
  'service', ARGV[9], 'level', ARGV[10], 'category', ARGV[11], 'source', ARGV[12],
  'created_ms', now_ms, 'region_path', ARGV[19], 'clocks', ARGV[13], 'clock_ver', '1', 'ver', '1',
  'timers', cjson.encode(members), 'sender', ARGV[25] or '')
if (ARGV[26] or '') == '1' then
  redis.call('HSET', prefix .. 't:' .. id, 'live_asked', '1')
end
if #members > 0 then
  redis.call('SADD', prefix .. 'open', id)
end
-- Every ticket in Redis, by registration time (search reads Redis' part from here).
redis.call('ZADD', prefix .. 'tickets', now_ms, id)
if ARGV[6] == 'returned' then
  -- Its life here ends at once: listed for the case archive.
  redis.call('ZADD', prefix .. 'ended', now_ms, id)
end

-- 重复诉求并单: the same caller about the same category within the window is linked both ways,
-- so the agent sees the earlier requests.
if ARGV[20] ~= '' then
  local ck = prefix .. 'caller:' .. ARGV[20]
  local window = tonumber(ARGV[21]) * 1000
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', now_ms - window)
  local linked = {}
  for _, rid in ipairs(redis.call('ZRANGE', ck, -50, -1)) do
    local rkey = prefix .. 't:' .. rid
    if redis.call('HGET', rkey, 'category') == ARGV[11] then
      linked[#linked + 1] = rid
      local theirs = cjson.decode(redis.call('HGET', rkey, 'linked') or '[]')
      theirs[#theirs + 1] = id
      redis.call('HSET', rkey, 'linked', cjson.encode(theirs))
      redis.call('RPUSH', prefix .. 'h:' .. rid, cjson.encode({type = 'ticket.linked', at_ms = now_ms, with = id}))
    end
  end
  for _, rid in ipairs(cjson.decode(ARGV[28] or '[]')) do
    local seen_here = false
    for _, l in ipairs(linked) do
      if l == rid then
        seen_here = true
      end
    end
    if not seen_here then
      linked[#linked + 1] = rid
    end
  end
  redis.call('ZADD', ck, now_ms, id)
  redis.call('PEXPIRE', ck, window)
  if #linked > 0 then
    redis.call('HSET', prefix .. 't:' .. id, 'linked', cjson.encode(linked))
  end
end

if queue ~= '' then
  -- Most urgent band first, then arrival order: band * 2^32 + seq.
  redis.call('ZADD', prefix .. 'q:' .. queue, queue_score(ARGV[5], seq), id)
  local since = tonumber(ARGV[22])
  if since == nil or since <= 0 then
    since = now_ms
  end
  redis.call('ZADD', prefix .. 'qt:' .. queue, since, id)
  redis.call('SADD', KEYS[3], queue)
end

local created = {
  type = 'ticket.created', at_ms = now_ms, actor = ARGV[17], status = ARGV[6],
  queue = queue, rule = ARGV[18], service = ARGV[9], level = ARGV[10], category = ARGV[11]}
if ARGV[23] ~= '' then
  created.transferred_from = ARGV[23]
  redis.call('HSET', prefix .. 't:' .. id, 'transferred_from', ARGV[23])
end
local event = cjson.encode(created)

-- The day's counts for supervisors (China Standard Time, UTC+8 all year).
local local_s = math.floor(now_ms / 1000) + 8 * 3600
local day = prefix .. 'day:' .. math.floor(local_s / 86400)
redis.call('HINCRBY', day, 'total', 1)
redis.call('HINCRBY', day, 'category:' .. ARGV[11], 1)
redis.call('HINCRBY', day, 'source:' .. ARGV[12], 1)
redis.call('HINCRBY', day, 'hour:' .. math.floor((local_s % 86400) / 3600), 1)
redis.call('EXPIRE', day, 8 * 86400)
redis.call('RPUSH', prefix .. 'h:' .. id, event)
local callback = ARGV[24] or ''
if callback ~= '' then
  -- Written with the ticket, so an acknowledged ticket's callback can never be lost. Never
  -- trimmed: entries leave only when delivered or dead-lettered.
  redis.call('HSET', prefix .. 't:' .. id, 'callback', callback)
  to_outbox(prefix, callback, {'type', 'ticket.created', 'id', id, 'status', ARGV[6], 'queue', queue,
    'at_ms', tostring(now_ms)})
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[16], '*',
  'type', 'ticket.created', 'id', id, 'status', ARGV[6], 'queue', queue,
  'service', ARGV[9], 'level', ARGV[10], 'category', ARGV[11], 'source', ARGV[12],
  'at_ms', now_ms)

return {'created', id, ARGV[6], queue, ARGV[8], tostring(now_ms), ARGV[13], ARGV[26] or ''}
