-- Re-adds timers that MongoDB says still need an attempt, and stages their delivery.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed (unused:
-- an armed timer is leased).
-- ARGV[1]: forget settled entries older than this (ms); then runAt1, id1, staged1, runAt2, ...
-- The reconciler read MongoDB before it calls this, so it skips what changed since:
--  * a leased id is being delivered right now;
--  * a settled id was delivered, failed or cancelled after the read;
--  * ZADD GT keeps a later run time (a retry scheduled after the read), HSETNX a fresher staging.
-- Returns how many ids it (re-)added.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[1])
local added = 0
for i = 2, #ARGV, 3 do
  local runAt, id, staged = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not redis.call('ZSCORE', KEYS[2], id) and not redis.call('ZSCORE', KEYS[4], id) then
    redis.call('ZADD', KEYS[1], 'GT', runAt, id)
    if staged ~= '' then redis.call('HSETNX', KEYS[3], id, staged) end
    added = added + 1
  end
end
return added
