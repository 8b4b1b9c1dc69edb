-- Claims up to ARGV[3] timers for delivery, in one step, so each goes to exactly one of many schedulers.
-- KEYS[1] due (score = run time ms), KEYS[2] leased (score = lease expiry ms), KEYS[3] staged (hash id ->
-- JSON { url, attempts }), KEYS[4] armed (score = run time ms), KEYS[5] claims (hash id -> token of the
-- claim that holds the lease) (TimerKeys).
-- ARGV[1] now (ms), ARGV[2] horizon (ms, >= now), ARGV[3] limit, ARGV[4] lease (ms), ARGV[5] this claim's
-- token (unique per call).
-- First re-claims leases that lapsed (their holder died, or its batch waited longer than the lease, before
-- recording an outcome), then takes timers due at or before the horizon, earliest first. Every claimed id
-- moves to the leases set, under this claim's token, until its holder settles it. Whoever holds the batch
-- sends a timer only after take-claimed-timers-3.lua finds the token still there, so a re-claim here takes
-- the timer away from an earlier holder that has not sent it yet. One due after `now` is also armed: its
-- holder sends it at its run time (a cancel in between disarms it and drops the token).
-- Returns a flat list: id1, staged1 (or false), runAt1 (or false), dueAt1 (or false), id2, ... runAt is
-- given for armed timers only; dueAt (the score it had in `due`) for every timer taken from `due`. A re-claimed lapsed lease comes without its staging (its holder may have recorded an
-- outcome in MongoDB before dying, so delivery reads it) and is disarmed.
local due, leased, staged, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, horizon, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local token = ARGV[5]
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
