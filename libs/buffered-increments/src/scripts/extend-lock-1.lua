-- Extends the flush lock while a long flush is still working. Returns 0 if the lock was lost.
-- KEYS[1] lock   ARGV[1] lock token   ARGV[2] lease (ms)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
