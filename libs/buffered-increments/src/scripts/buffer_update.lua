-- Buffers one update of one document field in the live hash, atomically.
-- KEYS[1] live hash
-- ARGV[1] operator: i (integer $inc), f (non-integer $inc), M ($max), m ($min), s ($set)
-- ARGV[2] buffered field name (operator character + encoded document id + field path)
-- ARGV[3] value (integer / decimal string for i and f; type-tagged for M and m; EJSON for s)
-- Returns the number of buffered fields in the live hash, so the caller can trigger an early flush.
local live = KEYS[1]
local op = ARGV[1]
local field = ARGV[2]
local value = ARGV[3]

if op == 'i' then
  redis.call('HINCRBY', live, field, value)
elseif op == 'f' then
  redis.call('HINCRBYFLOAT', live, field, value)
elseif op == 'M' or op == 'm' then
  local current = redis.call('HGET', live, field)
  if not current then
    redis.call('HSET', live, field, value)
  else
    -- Values carry a type tag (n number, d date); comparing a date with a number has no meaning.
    if string.sub(current, 1, 1) ~= string.sub(value, 1, 1) then
      return redis.error_reply('BMI_TYPE_MISMATCH a buffered value of another type is pending for this field')
    end
    local held = tonumber(string.sub(current, 2))
    local incoming = tonumber(string.sub(value, 2))
    if (op == 'M' and incoming > held) or (op == 'm' and incoming < held) then
      redis.call('HSET', live, field, value)
    end
  end
elseif op == 's' then
  -- A $set replaces whatever was buffered for the field before it (last write wins).
  local rest = string.sub(field, 2)
  redis.call('HDEL', live, 'i' .. rest, 'f' .. rest, 'M' .. rest, 'm' .. rest)
  redis.call('HSET', live, field, value)
else
  return redis.error_reply('BMI_BAD_OPERATOR ' .. op)
end

-- Time of the oldest update still waiting for a flush (server clock, so all producers agree).
if redis.call('HEXISTS', live, '#since') == 0 then
  local now = redis.call('TIME')
  redis.call('HSET', live, '#since', string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)))
end
return redis.call('HLEN', live) - 1
