-- Schedules timers that MongoDB says need an attempt, and stages their delivery: timers just created (their
-- creator inserted them, then calls this) and the timers a reconciler pass read.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled (TimerKeys). An armed timer is leased, so
-- leased covers it.
-- ARGV[1]: forget settled entries older than this (ms), or NONE to forget none; then runAt1, id1, staged1
-- (NONE = no staging), runAt2, ...
-- The caller read (or wrote) MongoDB before it calls this, so it skips what happened since:
--  * a leased id is being delivered right now (a reconciler pass indexed a new timer before its creator did);
--  * a settled id was delivered, failed or cancelled after the read (a cancel that came between a
--    creator's insert and this call stays cancelled);
--  * ZADD GT keeps a later run time (a retry scheduled after the read), HSETNX a fresher staging.
-- Returns how many ids it (re-)added.
local due, leased, staged, settled = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if ARGV[1] ~= NONE then redis.call('ZREMRANGEBYSCORE', settled, '-inf', '(' .. ARGV[1]) end
local added = 0
for i = 2, #ARGV, 3 do
  local runAt, id, delivery = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not redis.call('ZSCORE', leased, id) and not redis.call('ZSCORE', settled, id) then
    redis.call('ZADD', due, 'GT', runAt, id)
    if delivery ~= NONE then redis.call('HSETNX', staged, id, delivery) end
    added = added + 1
  end
end
return added
