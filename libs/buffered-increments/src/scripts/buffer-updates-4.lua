-- Buffers a batch of field updates in the live hash, atomically, in one round trip, at most once per call.
-- Producers send the updates gathered in one event-loop turn (or linger window) in one call, or a few growing ones.
-- KEYS[1] live hash   KEYS[2] caller hash (refusals of the instance's recent calls, for re-sent calls)
-- KEYS[3] dead letters (read only when replaying them)
-- KEYS[4] caller ring: the numbers of the instance's last 1,024 calls that ran, one fixed-width slot each
-- ARGV[1] call number: grows with every call of one producer instance ('0' = no replay protection)
-- ARGV[2] most buffered fields the live hash may hold; an update that would add a field past it is refused
-- ARGV[3] 'updates' | 'runs' | 'increments' | 'atomic' | 'atomic-runs' | 'replay': atomic buffers every
--   update of the call or none (a refusal undoes the others, which answer BMI_NOT_APPLIED); increments
--   is runs whose every field is an integer $inc; replay moves up to ARGV[4] dead letters back
-- ARGV[4] (every mode but replay) one MessagePack array of strings (one argument for the client to send,
--   unpacked in C here): (updates, atomic) buffered field name, value, field, value, ...; (runs,
--   increments, atomic-runs) the updates grouped by value: value, number of fields, those fields, value,
--   number of fields, ... (a counter producer's deltas are mostly equal, so a call carries one string per
--   update).
--   A buffered field's first character is its operator:
--   i (integer $inc), f (non-integer $inc), M ($max), m ($min), s ($set); then the encoded document id
--   and the field path. Values: integer / decimal string for i and f; type-tagged for M and m; EJSON for s.
-- Returns {live hash length} when every update was buffered, else {live hash length, outcome of update 1,
-- outcome of update 2, ...}: an outcome is 0 when buffered, else an error text; a refused update changes
-- nothing and does not stop the others.
-- A call that already ran (its reply was lost and the client sent it again) changes nothing and answers
-- {length, 'replayed', <refusals of the first run as JSON or ''>}. Calls of one instance mostly run in
-- the order they were made, but not always (a call that met NOSCRIPT after a Redis restart is sent
-- again after later ones), so "ran" is looked up in the ring: a slot holding this call ran it; a slot
-- holding a later call (1,024 or more calls later) is taken as run; a slot holding an earlier call (or
-- nothing) means this call never ran, however many calls ran since.
local live = KEYS[1]
local caller = KEYS[2]
local ring = KEYS[4]
local call = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local mode = ARGV[3]
local CALLER_TTL_MS = 600000
local RING_SLOTS = 1024
local SLOT_WIDTH = 15
local slot = (call % RING_SLOTS) * SLOT_WIDTH

if call > 0 then
  local held = tonumber(redis.call('GETRANGE', ring, slot, slot + SLOT_WIDTH - 1))
  if held and held >= call then
    return {redis.call('HLEN', live), 'replayed', redis.call('HGET', caller, 'r' .. ARGV[1]) or ''}
  end
end

-- Orders the $set calls of one batch: a parent path and a child path set in one interval are folded
-- at flush time as the same calls in sequence would have left them.
local function nextSetOrder()
  return redis.call('HINCRBY', live, SET_ORDER_FIELD, 1)
end

-- Whether the hash holds so few fields that no update of this call can reach the limit (each adds at
-- most one field): then none is checked against it.
local roomy = false

local function apply(field, value)
  local op = string.sub(field, 1, 1)
  if not roomy and redis.call('HLEN', live) >= limit and redis.call('HEXISTS', live, field) == 0
      and redis.call('HLEN', live) - redis.call('HEXISTS', live, SINCE_FIELD) - redis.call('HEXISTS', live, SET_ORDER_FIELD) >= limit then
    return 'BMI_BUFFER_FULL'
  end
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
    -- A value that went through a dead letter keeps its EJSON; its old order number is replaced.
    local ejson = string.match(value, '^%d+|(.*)$') or value
    redis.call('HSET', live, field, nextSetOrder() .. '|' .. ejson)
  else
    return 'BMI_BAD_OPERATOR'
  end
  return 0
end

-- The call's updates, read in place from the unpacked argument (no copy per update).
local args = mode ~= 'replay' and cmsgpack.unpack(ARGV[4]) or {}
local size = #args
local grouped = mode == 'runs' or mode == 'increments' or mode == 'atomic-runs'
local count = size / 2
if grouped then
  count = 0
  local k = 1
  while k <= size do
    local fieldsOfValue = tonumber(args[k + 1])
    count = count + fieldsOfValue
    k = k + 2 + fieldsOfValue
  end
end
local atomic = mode == 'atomic' or mode == 'atomic-runs'

-- An atomic call lists its updates, to check them first and put fields back on a refusal.
local fields = {}
local values = {}
if atomic then
  local k = 1
  while k <= size do
    if grouped then
      local value = args[k]
      local last = k + 1 + tonumber(args[k + 1])
      for j = k + 2, last do
        fields[#fields + 1] = args[j]
        values[#values + 1] = value
      end
      k = last + 1
    else
      fields[#fields + 1] = args[k]
      values[#values + 1] = args[k + 1]
      k = k + 2
    end
  end
end

-- Whether every update of the call is an integer $inc that cannot be refused: the hash has room for
-- each, and however the deltas add up no sum can leave the signed 64-bit range (a bound from the number
-- of digits of each delta and of each buffered sum, with margin: 10^digits counts the sign as a digit).
local function integersCannotFail()
  if not roomy or #fields > 4000 then return false end
  local bound = 0
  for i = 1, #fields do
    if string.byte(fields[i], 1) ~= 105 then return false end -- 'i'
    bound = bound + 10 ^ #values[i]
  end
  for _, held in ipairs(redis.call('HMGET', live, unpack(fields))) do
    if held then bound = bound + 10 ^ #held end
  end
  return bound < 9e18
end

local outcomes = {0}
local refused = false
if mode ~= 'replay' then roomy = redis.call('HLEN', live) + count < limit end
if mode == 'replay' then
  for _ = 1, tonumber(ARGV[4]) do
    local text = redis.call('LPOP', KEYS[3])
    if not text then break end
    local letter = cjson.decode(text)
    local kept = {}
    for field, value in pairs(letter.fields) do
      local outcome = apply(field, value)
      if outcome ~= 0 then kept[field] = value end
    end
    -- What cannot be buffered again (buffer full, type clash) stays a dead letter.
    if next(kept) ~= nil then
      letter.fields = kept
      redis.call('RPUSH', KEYS[3], cjson.encode(letter))
      outcomes[#outcomes + 1] = 1
    else
      outcomes[#outcomes + 1] = 0
    end
  end
  refused = true -- replay answers one outcome per letter
elseif atomic and integersCannotFail() then
  -- Nothing can be refused, so nothing needs saving to be put back.
  for i = 1, #fields do redis.call('HINCRBY', live, fields[i], values[i]) end
elseif atomic then
  -- Every field an update may change is remembered first, so a refusal puts each back exactly.
  local saved = {}
  for i = 1, #fields do
    local field = fields[i]
    local touched = {field}
    if string.sub(field, 1, 1) == 's' then
      local rest = string.sub(field, 2)
      touched = {field, 'i' .. rest, 'f' .. rest, 'M' .. rest, 'm' .. rest}
    end
    for _, name in ipairs(touched) do saved[#saved + 1] = {name, redis.call('HGET', live, name)} end
    local outcome = apply(field, values[i])
    if outcome ~= 0 then
      for j = #saved, 1, -1 do
        if saved[j][2] then redis.call('HSET', live, saved[j][1], saved[j][2]) else redis.call('HDEL', live, saved[j][1]) end
      end
      refused = true
      outcomes = {0}
      for j = 1, #fields do outcomes[#outcomes + 1] = (j == i) and outcome or 'BMI_NOT_APPLIED' end
      break
    end
    outcomes[#outcomes + 1] = 0
  end
elseif mode == 'increments' and roomy then
  -- The common call: each update is one HINCRBY, and the loop does nothing else unless one is refused
  -- (an overflow or a non-integer value). Outcomes are only listed once one update is refused.
  local redisPcall = redis.pcall
  local i = 0
  local k = 1
  while k <= size do
    local value = args[k]
    local last = k + 1 + tonumber(args[k + 1])
    for j = k + 2, last do
      i = i + 1
      local reply = redisPcall('HINCRBY', live, args[j], value)
      if type(reply) == 'table' then
        if not refused then
          refused = true
          for _ = 1, i - 1 do outcomes[#outcomes + 1] = 0 end
        end
        outcomes[#outcomes + 1] = reply.err
      elseif refused then
        outcomes[#outcomes + 1] = 0
      end
    end
    k = last + 1
  end
else
  -- 'updates', 'runs' (and 'increments' near the limit): outcomes are only listed once one update is
  -- refused.
  local i = 0
  local function bufferUpdate(field, value)
    i = i + 1
    local outcome
    if roomy and string.byte(field, 1) == 105 then -- 'i': an integer $inc is one HINCRBY
      outcome = redis.pcall('HINCRBY', live, field, value)
      outcome = type(outcome) == 'table' and outcome.err or 0
    else
      outcome = apply(field, value)
    end
    if outcome ~= 0 and not refused then
      refused = true
      for _ = 1, i - 1 do outcomes[#outcomes + 1] = 0 end
    end
    if refused then outcomes[#outcomes + 1] = outcome end
  end
  local k = 1
  while k <= size do
    if grouped then
      local value = args[k]
      local last = k + 1 + tonumber(args[k + 1])
      for j = k + 2, last do bufferUpdate(args[j], value) end
      k = last + 1
    else
      bufferUpdate(args[k], args[k + 1])
      k = k + 2
    end
  end
end

-- Time of the oldest update still waiting for a flush (server clock, so all producers agree).
if redis.call('HEXISTS', live, SINCE_FIELD) == 0 and redis.call('EXISTS', live) == 1 then
  local now = redis.call('TIME')
  redis.call('HSET', live, SINCE_FIELD, string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)))
end

if call > 0 then
  redis.call('SETRANGE', ring, slot, string.format('%015.0f', call))
  redis.call('PEXPIRE', ring, CALLER_TTL_MS)
  if refused and mode ~= 'replay' then
    -- Refusals are kept so a replayed call answers as the first run did; the hash stays small.
    if redis.call('HLEN', caller) > 256 then redis.call('DEL', caller) end
    local answer = {}
    for i = 2, #outcomes do answer[i - 1] = outcomes[i] end
    redis.call('HSET', caller, 'r' .. ARGV[1], cjson.encode(answer))
    redis.call('PEXPIRE', caller, CALLER_TTL_MS)
  end
end

if not refused then return {redis.call('HLEN', live)} end
outcomes[1] = redis.call('HLEN', live)
return outcomes
