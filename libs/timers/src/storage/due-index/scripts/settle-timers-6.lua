-- Removes finished timers (delivered, failed, cancelled, unknown) from the schedule once MongoDB has their
-- outcome, and remembers them as settled so a reconciler pass or a creator that read them before cannot
-- re-add them.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled, KEYS[5] armed, KEYS[6] claims (TimerKeys).
-- ARGV[1] now (ms), ids...
local due, leased, staged, settled, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
for i = 2, #ARGV do
  local id = ARGV[i]
  redis.call('ZREM', due, id)
  redis.call('ZREM', leased, id)
  redis.call('HDEL', claims, id)
  redis.call('ZREM', armed, id)
  redis.call('HDEL', staged, id)
  redis.call('ZADD', settled, ARGV[1], id)
end
return #ARGV - 1
