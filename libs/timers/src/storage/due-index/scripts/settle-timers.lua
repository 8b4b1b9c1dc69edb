-- Removes finished timers (delivered, failed, cancelled, unknown) from the schedule once MongoDB has their
-- outcome, and remembers them as settled so a reconciler pass or a creator that read them before cannot
-- re-add them.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed,
-- KEYS[6] claims.
-- ARGV[1] now (ms), ids...
for i = 2, #ARGV do
  local id = ARGV[i]
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZADD', KEYS[4], ARGV[1], id)
end
return #ARGV - 1
