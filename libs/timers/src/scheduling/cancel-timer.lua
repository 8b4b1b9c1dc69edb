-- Takes a pending timer out of the schedule so that no scheduler can claim it any more, atomically with
-- respect to claim-due-timers.lua: either the claim came first (the timer is leased: being delivered) or
-- the timer never fires.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled. ARGV[1] now, ARGV[2] id.
-- Returns 'delivering' when it is leased or due, else 'cancelled' (also when it was not in the index:
-- the settled entry keeps the reconciler from re-adding it).
local now, id = tonumber(ARGV[1]), ARGV[2]
if redis.call('ZSCORE', KEYS[2], id) then return 'delivering' end
local runAt = redis.call('ZSCORE', KEYS[1], id)
if runAt and tonumber(runAt) <= now then return 'delivering' end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[3], id)
redis.call('ZADD', KEYS[4], now, id)
return 'cancelled'
