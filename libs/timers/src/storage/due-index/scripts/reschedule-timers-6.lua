-- Puts timers back into the due index at the given run time for another attempt (a retry after a failed
-- attempt, recorded by the worker holding it; a failed timer sent again by API), staging their delivery
-- when one is given. New timers go through schedule-timers-6.lua instead, which leaves alone what a cancel
-- or a claim did first.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled, KEYS[5] armed, KEYS[6] claims (TimerKeys).
-- ARGV: runAt1, id1, staged1 (NONE = no staging), runAt2, id2, staged2, ...
-- The id leaves the leases, claims and armed sets (its attempt is over) and the settled set (it runs again).
local due, leased, staged, settled, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
for i = 1, #ARGV, 3 do
  local runAt, id, delivery = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('ZADD', due, runAt, id)
  redis.call('ZREM', leased, id)
  redis.call('HDEL', claims, id)
  redis.call('ZREM', armed, id)
  redis.call('ZREM', settled, id)
  if delivery ~= NONE then redis.call('HSET', staged, id, delivery) end
end
return #ARGV / 3
