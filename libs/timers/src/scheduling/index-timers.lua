-- Puts timers into the due index at the given run time (new timers, a retry after a failed attempt, a
-- failed timer sent again by API), staging their delivery when one is given.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed.
-- ARGV: runAt1, id1, staged1 ('' = none), runAt2, id2, staged2, ...
-- The id leaves the leases and armed sets (its attempt is over, or it is given back) and the settled set
-- (it runs again).
for i = 1, #ARGV, 3 do
  local runAt, id, staged = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('ZADD', KEYS[1], runAt, id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[4], id)
  if staged ~= '' then redis.call('HSET', KEYS[3], id, staged) end
end
return #ARGV / 3
