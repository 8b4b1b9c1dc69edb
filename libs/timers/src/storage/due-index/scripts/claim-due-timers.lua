-- Claims up to ARGV[3] timers for delivery, in one step, so each goes to exactly one of many schedulers.
-- KEYS[1] due index (score = run time ms), KEYS[2] leases (score = lease expiry ms), KEYS[3] staged
-- deliveries (hash id -> JSON { url, attempts }), KEYS[4] settled (unused here), KEYS[5] armed (score =
-- run time ms), KEYS[6] claims (hash id -> token of the claim that holds the lease).
-- ARGV[1] now (ms), ARGV[2] horizon (ms, >= now), ARGV[3] limit, ARGV[4] lease (ms), ARGV[5] this claim's
-- token (unique per call).
-- First re-claims leases that lapsed (their holder died, or its batch waited longer than the lease, before
-- recording an outcome), then takes timers due at or before the horizon, earliest first. Every claimed id
-- moves to the leases set, under this claim's token, until its holder settles it. Whoever holds the batch
-- sends a timer only after take-claimed-timers.lua finds the token still there, so a re-claim here takes the
-- timer away from an earlier holder that has not sent it yet. One due after `now` is also armed: its
-- holder sends it at its run time (a cancel in between disarms it and drops the token).
-- Returns a flat list: id1, staged1 (or false), runAt1 (or false), id2, ... runAt is given for armed
-- timers only. A re-claimed lapsed lease comes without its staging (its holder may have recorded an
-- outcome in MongoDB before dying, so delivery reads it) and is disarmed.
local now, horizon, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local token = ARGV[5]
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
local lapsed = #ids
local runAts = {}
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[5], id) end
if #ids < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon, 'WITHSCORES', 'LIMIT', 0, limit - #ids)
  if #due > 0 then
    -- The lowest scores are ranks 0..n-1, so removing by rank removes exactly what was read.
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due / 2 - 1)
    for i = 1, #due, 2 do
      local id, runAt = due[i], tonumber(due[i + 1])
      ids[#ids + 1] = id
      if runAt > now then
        redis.call('ZADD', KEYS[5], runAt, id)
        runAts[#ids] = runAt
      end
    end
  end
end
local claimed = {}
for i, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], now + lease, id)
  redis.call('HSET', KEYS[6], id, token)
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = i > lapsed and redis.call('HGET', KEYS[3], id) or false
  claimed[#claimed + 1] = runAts[i] and tostring(runAts[i]) or false
end
return claimed
