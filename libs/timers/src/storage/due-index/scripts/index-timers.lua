-- Puts timers back into the due index at the given run time for another attempt (a retry after a failed
-- attempt, recorded by the worker holding it; a failed timer sent again by API), staging their delivery
-- when one is given. New timers go through schedule-timers.lua instead, which leaves alone what a cancel
-- or a claim did first.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed,
-- KEYS[6] claims.
-- ARGV: runAt1, id1, staged1 ('' = none), runAt2, id2, staged2, ...
-- The id leaves the leases, claims and armed sets (its attempt is over) and the settled set (it runs again).
for i = 1, #ARGV, 3 do
  local runAt, id, staged = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('ZADD', KEYS[1], runAt, id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[4], id)
  if staged ~= '' then redis.call('HSET', KEYS[3], id, staged) end
end
return #ARGV / 3
