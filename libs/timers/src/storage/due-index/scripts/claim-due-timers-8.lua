-- Claims up to ARGV[3] timers for delivery, in one step, so each goes to exactly one of many schedulers.
-- KEYS[1] due (score = run time ms), KEYS[2] leased (score = lease expiry ms), KEYS[3] staged (hash id ->
-- JSON { url, attempts }), KEYS[4] settled, KEYS[5] armed (score = run time ms), KEYS[6] claims (hash id ->
-- token of the claim that holds the lease), KEYS[7] wheel, KEYS[8] wheeled (TimerKeys).
-- ARGV[1] now (ms), ARGV[2] horizon (ms, >= now), ARGV[3] limit, ARGV[4] lease (ms), ARGV[5] this claim's
-- token (unique per call), ARGV[6] promote wheel buckets starting at or before this time (ms).
-- First moves far timers whose time came near from the timing wheel into `due` (see schedule-timers-6.lua
-- for the wheel's layout): bucket by bucket, earliest first, at most PROMOTE_LIMIT records per call so one
-- crowded bucket cannot hold Redis up (the bucket's header remembers how far it got; the next call goes on
-- from there, well before its timers fall due, as buckets come within the reconciler's horizon). A record is
-- added with ZADD GT (a later run time already in `due` wins) unless cancelled (a tombstone, offset
-- TOMBSTONE), settled or leased; a bucket whose records are all moved is deleted. In the same step as the
-- claims, so a cancel (cancel-timer-8.lua) finds a timer either still in the wheel or already in `due`.
-- Then re-claims leases that lapsed (their holder died, or its batch waited longer than the lease, before
-- recording an outcome), then takes timers due at or before the horizon, earliest first. Every claimed id
-- moves to the leases set, under this claim's token, until its holder settles it. Whoever holds the batch
-- sends a timer only after take-claimed-timers-3.lua finds the token still there, so a re-claim here takes
-- the timer away from an earlier holder that has not sent it yet. One due after `now` is also armed: its
-- holder sends it at its run time (a cancel in between disarms it and drops the token).
-- Returns a flat list: id1, staged1 (or false), runAt1 (or false), dueAt1 (or false), id2, ... runAt is
-- given for armed timers only; dueAt (the score it had in `due`) for every timer taken from `due`. A
-- re-claimed lapsed lease comes without its staging (its holder may have recorded an outcome in MongoDB
-- before dying, so delivery reads it) and is disarmed.
local due, leased, staged, settled, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local wheel, wheeled = KEYS[7], KEYS[8]
local now, horizon, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local token, promoteUntil = ARGV[5], ARGV[6]

local budget, moved = PROMOTE_LIMIT, 0
local byteToHex
while budget > 0 do
  local buckets = redis.call('ZRANGEBYSCORE', wheel, '-inf', promoteUntil, 'WITHSCORES', 'LIMIT', 0, 16)
  if #buckets == 0 then break end
  for b = 1, #buckets, 2 do
    if budget <= 0 then break end
    local bucket, start = buckets[b], tonumber(buckets[b + 1])
    local key = wheel .. ':' .. bucket
    local header = redis.call('GETRANGE', key, 0, HEADER_BYTES - 1)
    local live, promoted, total = 0, 0, 0
    if header ~= '' then
      live, promoted = struct.unpack('>I4I4', header)
      total = (redis.call('STRLEN', key) - HEADER_BYTES) / RECORD_BYTES
    end
    local take = math.min(total - promoted, budget)
    if take > 0 then
      local from = HEADER_BYTES + promoted * RECORD_BYTES
      local records = redis.call('GETRANGE', key, from, from + take * RECORD_BYTES - 1)
      for r = 1, #records, RECORD_BYTES do
        local high, low = string.byte(records, r + 12, r + 13)
        local offset = high * 256 + low
        if offset ~= TOMBSTONE then
          live = live - 1
          moved = moved + 1
          if not byteToHex then
            byteToHex = {}
            for i = 0, 255 do byteToHex[string.char(i)] = string.format('%02x', i) end
          end
          local id = string.sub(records, r, r + 11):gsub('.', byteToHex)
          if not redis.call('ZSCORE', leased, id) and not redis.call('ZSCORE', settled, id) then
            redis.call('ZADD', due, 'GT', start + offset, id)
          end
        end
      end
      promoted = promoted + take
    end
    budget = budget - math.max(take, 1)
    if promoted >= total or live <= 0 then
      redis.call('DEL', key)
      redis.call('ZREM', wheel, bucket)
    else
      redis.call('SETRANGE', key, 0, struct.pack('>I4I4', live, promoted))
    end
  end
end
if moved > 0 then redis.call('DECRBY', wheeled, moved) end

local ids = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, limit)
local lapsed = #ids
local runAts = {}
local dueAts = {}
for _, id in ipairs(ids) do redis.call('ZREM', armed, id) end
if #ids < limit then
  local dueNow = redis.call('ZRANGEBYSCORE', due, '-inf', horizon, 'WITHSCORES', 'LIMIT', 0, limit - #ids)
  if #dueNow > 0 then
    -- The lowest scores are ranks 0..n-1, so removing by rank removes exactly what was read.
    redis.call('ZREMRANGEBYRANK', due, 0, #dueNow / 2 - 1)
    for i = 1, #dueNow, 2 do
      local id, runAt = dueNow[i], tonumber(dueNow[i + 1])
      ids[#ids + 1] = id
      dueAts[#ids] = runAt
      if runAt > now then
        redis.call('ZADD', armed, runAt, id)
        runAts[#ids] = runAt
      end
    end
  end
end
local claimed = {}
for i, id in ipairs(ids) do
  redis.call('ZADD', leased, now + lease, id)
  redis.call('HSET', claims, id, token)
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = i > lapsed and redis.call('HGET', staged, id) or false
  claimed[#claimed + 1] = runAts[i] and tostring(runAts[i]) or false
  claimed[#claimed + 1] = dueAts[i] and tostring(dueAts[i]) or false
end
return claimed
