-- Claims up to ARGV[2] timers for delivery, in one step, so each goes to exactly one of many schedulers.
-- KEYS[1] due index (score = run time ms), KEYS[2] leases (score = lease expiry ms), KEYS[3] staged
-- deliveries (hash id -> JSON { url, attempts }). ARGV[1] now (ms), ARGV[2] limit, ARGV[3] lease (ms).
-- First re-claims leases that lapsed (their holder died before recording an outcome), then takes due
-- timers, earliest first. Every claimed id moves to the leases set until its holder settles it.
-- Returns a flat list: id1, staged1 (or false), id2, staged2, ... A re-claimed lapsed lease comes without
-- its staging: its holder may have recorded an outcome in MongoDB before dying, so delivery reads it.
local now, limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
local lapsed = #ids
if #ids < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #ids)
  if #due > 0 then
    -- The lowest scores are ranks 0..n-1, so removing by rank removes exactly what was read.
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due - 1)
    for _, id in ipairs(due) do ids[#ids + 1] = id end
  end
end
local claimed = {}
for i, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], now + lease, id)
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = i > lapsed and redis.call('HGET', KEYS[3], id) or false
end
return claimed
