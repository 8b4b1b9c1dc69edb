-- Schedules timers that MongoDB says need an attempt, and stages their delivery: timers just created (their
-- creator inserted them, then calls this) and the timers a reconciler pass read.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed (unused:
-- an armed timer is leased), KEYS[6] claims (unused).
-- ARGV[1]: forget settled entries older than this (ms), or '' to forget none; then runAt1, id1, staged1,
-- runAt2, ...
-- The caller read (or wrote) MongoDB before it calls this, so it skips what happened since:
--  * a leased id is being delivered right now (a reconciler pass indexed a new timer before its creator did);
--  * a settled id was delivered, failed or cancelled after the read (a cancel that came between a
--    creator's insert and this call stays cancelled);
--  * ZADD GT keeps a later run time (a retry scheduled after the read), HSETNX a fresher staging.
-- Returns how many ids it (re-)added.
if ARGV[1] ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[1]) end
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
