-- Buffers a batch of field updates in the live hash, atomically, in one round trip. Producers send
-- every update made in the same event-loop turn together.
-- KEYS[1] live hash
-- ARGV[3k+1] operator: i (integer $inc), f (non-integer $inc), M ($max), m ($min), s ($set)
-- ARGV[3k+2] buffered field name (operator character + encoded document id + field path)
-- ARGV[3k+3] value (integer / decimal string for i and f; type-tagged for M and m; EJSON for s)
-- Returns {buffered field count, outcome of update 1, outcome of update 2, ...}: an outcome is 0 when
-- buffered, else an error text; a refused update changes nothing and does not stop the others.
local live = KEYS[1]
local outcomes = {0}

local function apply(op, field, value)
  if op == 'i' or op == 'f' then
    local reply = redis.pcall(op == 'i' and 'HINCRBY' or 'HINCRBYFLOAT', live, field, value)
    if type(reply) == 'table' and reply.err then return reply.err end
  elseif op == 'M' or op == 'm' then
    local current = redis.call('HGET', live, field)
    if not current then
      redis.call('HSET', live, field, value)
    else
      -- Values carry a type tag (n number, d date); comparing a date with a number has no meaning.
      if string.sub(current, 1, 1) ~= string.sub(value, 1, 1) then
        return 'BMI_TYPE_MISMATCH'
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
    return 'BMI_BAD_OPERATOR'
  end
  return 0
end

for k = 1, #ARGV, 3 do
  outcomes[#outcomes + 1] = apply(ARGV[k], ARGV[k + 1], ARGV[k + 2])
end

-- Time of the oldest update still waiting for a flush (server clock, so all producers agree).
if redis.call('HEXISTS', live, '#since') == 0 and redis.call('EXISTS', live) == 1 then
  local now = redis.call('TIME')
  redis.call('HSET', live, '#since', string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)))
end
outcomes[1] = math.max(0, redis.call('HLEN', live) - 1)
return outcomes
