-- Takes claimed timers for sending: called by the worker holding them right before it POSTs them (the due
-- timers of a batch when the batch starts sending, an armed timer at its run time), one call per group.
-- A timer may be sent only while the claim that handed it to this worker still holds it: its token is
-- still the one in `claims`. It is not when the timer was cancelled (armed), handed back, settled, or
-- re-claimed by a scheduler after its lease lapsed (the batch waited in the queue, or its holder stalled,
-- longer than the lease: the new holder sends it, this one must not). Taking drops the token, so a second
-- job carrying the same claim (an enqueue sent twice) cannot send it too; it also disarms the timer and
-- renews its lease. Atomic with respect to cancel-timer-8.lua and claim-due-timers-8.lua: a timer is either
-- cancelled or sent, and sent by one holder at a time.
-- KEYS[1] leased, KEYS[2] armed, KEYS[3] claims (TimerKeys).
-- ARGV[1] now (ms), ARGV[2] lease (ms), then id1, token1, id2, token2, ...
-- Returns 1 (send) or 0 (do not) per id, in order.
local leased, armed, claims = KEYS[1], KEYS[2], KEYS[3]
local leasedUntil = tonumber(ARGV[1]) + tonumber(ARGV[2])
local take = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', claims, id) == ARGV[i + 1] then
    redis.call('HDEL', claims, id)
    redis.call('ZREM', armed, id)
    redis.call('ZADD', leased, leasedUntil, id)
    take[#take + 1] = 1
  else
    take[#take + 1] = 0
  end
end
return take
