-- Acknowledges a batch that is fully applied to MongoDB and releases the flush lock if we hold it.
-- KEYS[1] lock   KEYS[2] draining hash   KEYS[3] draining batch id   KEYS[4] draining batch format
-- ARGV[1] lock token   ARGV[2] batch id   ARGV[3] '1' to release the lock
-- UNLINK frees a large hash in the background, so acknowledging never blocks Redis.
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
end
if ARGV[3] == '1' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
