-- Takes the flush lock and hands the caller the one batch to apply next, in one round trip.
-- KEYS[1] lock   KEYS[2] live hash   KEYS[3] draining hash   KEYS[4] draining batch id   KEYS[5] batch sequence
-- ARGV[1] lock token   ARGV[2] lock lease (ms)   ARGV[3] inline limit (fields returned with the claim)
-- Returns {'busy', pttl} | {'empty'} | {'recovered' | 'taken', batchId, fieldCount, inlineFieldsAndValues}
--
-- At most one batch is ever draining: a new batch is cut from the live hash only once the previous
-- one was applied and acknowledged. So batches reach MongoDB strictly in id order, which is what lets
-- a per-document "last applied batch" marker make re-applying a batch a no-op.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {'busy', redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])

local state = 'recovered'
local batchId = redis.call('GET', KEYS[4])
if not batchId or redis.call('EXISTS', KEYS[3]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[4])
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
  redis.call('RENAME', KEYS[2], KEYS[3])
  redis.call('SET', KEYS[4], batchId)
  state = 'taken'
end

local count = redis.call('HLEN', KEYS[3])
if count <= tonumber(ARGV[3]) then
  return {state, batchId, count, redis.call('HGETALL', KEYS[3])}
end
return {state, batchId, count, {}}
