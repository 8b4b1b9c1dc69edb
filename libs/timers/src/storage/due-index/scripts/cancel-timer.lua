-- Takes a pending timer out of the schedule so that no scheduler can claim or fire it any more, atomically
-- with respect to claim-due-timers.lua and take-claimed-timers.lua: either the timer is due and being
-- delivered, or it never fires.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled, KEYS[5] armed,
-- KEYS[6] claims.
-- ARGV[1] now, ARGV[2] id.
-- Returns 'delivering' when it is due, or leased and not armed for a later time (being sent); else
-- 'cancelled' (also when it was not in the index: the settled entry keeps the reconciler, and a creator
-- whose index write comes after this, from re-adding it). An armed timer (claimed ahead of its due time,
-- not fired yet) is cancelled: its claim is dropped, so its holder cannot take it when it falls due.
local now, id = tonumber(ARGV[1]), ARGV[2]
if redis.call('ZSCORE', KEYS[2], id) then
  local armedFor = redis.call('ZSCORE', KEYS[5], id)
  if not armedFor or tonumber(armedFor) <= now then return 'delivering' end
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
end
local runAt = redis.call('ZSCORE', KEYS[1], id)
if runAt and tonumber(runAt) <= now then return 'delivering' end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[3], id)
redis.call('ZADD', KEYS[4], now, id)
return 'cancelled'
