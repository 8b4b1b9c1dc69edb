-- Takes a pending timer out of the schedule so that no scheduler can claim or fire it any more, atomically
-- with respect to claim-due-timers-5.lua and take-claimed-timers-3.lua: either the timer is due and being
-- delivered, or it never fires.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled, KEYS[5] armed, KEYS[6] claims (TimerKeys).
-- ARGV[1] now, ARGV[2] id.
-- Returns DELIVERING when it is due, or leased and not armed for a later time (being sent); else
-- CANCELLED (also when it was not in the index: the settled entry keeps the reconciler, and a creator
-- whose index write comes after this, from re-adding it). An armed timer (claimed ahead of its due time,
-- not fired yet) is cancelled: its claim is dropped, so its holder cannot take it when it falls due.
local due, leased, staged, settled, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, id = tonumber(ARGV[1]), ARGV[2]
if redis.call('ZSCORE', leased, id) then
  local armedFor = redis.call('ZSCORE', armed, id)
  if not armedFor or tonumber(armedFor) <= now then return DELIVERING end
  redis.call('ZREM', armed, id)
  redis.call('ZREM', leased, id)
  redis.call('HDEL', claims, id)
end
local runAt = redis.call('ZSCORE', due, id)
if runAt and tonumber(runAt) <= now then return DELIVERING end
redis.call('ZREM', due, id)
redis.call('HDEL', staged, id)
redis.call('ZADD', settled, now, id)
return CANCELLED
