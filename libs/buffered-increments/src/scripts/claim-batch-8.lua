-- Takes the flush lock and hands the caller the one batch to apply next, in one round trip.
-- KEYS[1] lock   KEYS[2] live hash   KEYS[3] draining hash   KEYS[4] draining batch id   KEYS[5] batch sequence
-- KEYS[6] scope (this buffer's name inside each document's markers)   KEYS[7] draining batch format
-- KEYS[8] cut cursor: where the last cut of a backlog stopped its HSCAN of the live hash
-- ARGV[1] lock token   ARGV[2] lock lease (ms)   ARGV[3] inline limit (fields returned with the claim)
-- ARGV[4] most fields one batch takes   ARGV[5] a new random scope, used if this buffer has none yet
-- Returns {'busy', pttl} | {'empty'} |
--   {'recovered' | 'taken', batchId, fieldCount, inlineFieldsAndValues, scope, format, fieldsLeftLive}
--
-- At most one batch is ever draining: a new batch is cut from the live hash only once the previous
-- one was applied and acknowledged. So batches reach MongoDB strictly in id order, which is what lets
-- a per-document "last applied batch of this buffer" marker make re-applying a batch a no-op.
-- Format 2 batches carry markers scoped to this buffer; a format 1 batch was cut by a version that
-- kept one marker per document (see the README's migration note).
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {'busy', redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[6], ARGV[5], 'NX')
local scope = redis.call('GET', KEYS[6])

-- Fields of the live and draining hashes that are bookkeeping, not updates.
local function isBookkeeping(field)
  return string.sub(field, 1, 1) == '#'
end

local function updatesIn(hash)
  local count = redis.call('HLEN', hash)
  for _, field in ipairs({SINCE_FIELD, SET_ORDER_FIELD}) do count = count - redis.call('HEXISTS', hash, field) end
  return count
end

local state = 'recovered'
local batchId = redis.call('GET', KEYS[4])
if not batchId or redis.call('EXISTS', KEYS[3]) == 0 then
  local waiting = updatesIn(KEYS[2])
  if waiting <= 0 then
    -- Only bookkeeping is left (the last fields went in an earlier batch): nothing waits.
    redis.call('DEL', KEYS[2], KEYS[4], KEYS[7])
    return {'empty'}
  end
  -- Ids grow with the server clock as well as the sequence, so they keep growing even if Redis
  -- lost the sequence key; MongoDB markers written before stay below every new id.
  local now = redis.call('TIME')
  local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
  local last = tonumber(redis.call('GET', KEYS[5]) or '0')
  local id = last + 1
  if nowMs > id then id = nowMs end
  batchId = string.format('%d', id)
  redis.call('SET', KEYS[5], batchId)
  local limit = tonumber(ARGV[4])
  if waiting <= limit then
    redis.call('RENAME', KEYS[2], KEYS[3])
  else
    -- A backlog is cut into batches of about `limit` fields, so a flusher's memory is bounded
    -- whatever waits. HSCAN keeps its cursor within this call; fields it moved are gone from live.
    -- All operators of one path move together (a `$set` and a later `$inc` of a field must share a
    -- batch to keep their order); see the README for what a cut backlog does not keep.
    -- Each cut resumes the scan where the previous one stopped: restarting at 0 would walk again
    -- every bucket earlier cuts emptied, which makes draining a large backlog quadratic.
    local moved = 0
    local cursor = redis.call('GET', KEYS[8]) or '0'
    -- A scan resumed mid-way goes on past the end of its pass into a new one, so a cut is never short.
    local passesLeft = cursor == '0' and 1 or 2
    local OPERATORS = {'s', 'i', 'f', 'M', 'm'}
    repeat
      local step = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 1000)
      cursor = step[1]
      local flat = step[2]
      -- One HMGET per path, one HSET and one HDEL per step: few calls keep a cut short.
      local copied = {}
      local deleted = {}
      local seen = {}
      for i = 1, #flat, 2 do
        local path = string.sub(flat[i], 2)
        if moved < limit and not isBookkeeping(flat[i]) and not seen[path] then
          seen[path] = true
          local fields = {}
          for k, operator in ipairs(OPERATORS) do fields[k] = operator .. path end
          local values = redis.call('HMGET', KEYS[2], unpack(fields))
          for k = 1, #fields do
            if values[k] then
              copied[#copied + 1] = fields[k]
              copied[#copied + 1] = values[k]
              deleted[#deleted + 1] = fields[k]
              moved = moved + 1
            end
          end
        end
      end
      if #deleted > 0 then
        redis.call('HSET', KEYS[3], unpack(copied))
        redis.call('HDEL', KEYS[2], unpack(deleted))
      end
      if cursor == '0' then passesLeft = passesLeft - 1 end
    until passesLeft == 0 or moved >= limit
    redis.call('SET', KEYS[8], cursor)
    local since = redis.call('HGET', KEYS[2], SINCE_FIELD)
    if since then redis.call('HSET', KEYS[3], SINCE_FIELD, since) end
  end
  redis.call('SET', KEYS[4], batchId)
  redis.call('SET', KEYS[7], '2')
  state = 'taken'
end

local format = redis.call('GET', KEYS[7]) or '1'
local count = redis.call('HLEN', KEYS[3])
local left = math.max(0, updatesIn(KEYS[2]))
if count <= tonumber(ARGV[3]) then
  return {state, batchId, count, redis.call('HGETALL', KEYS[3]), scope, format, left}
end
return {state, batchId, count, {}, scope, format, left}
