-- Fires armed timers: called by the worker holding them once they are due. Each id that is still armed
-- is disarmed and may be sent; one that is not was cancelled (or re-claimed after its lease lapsed) since
-- its claim and must not be. Atomic with respect to cancel-timer.lua, so a timer is either cancelled or
-- sent, never both.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries, KEYS[4] settled (unused), KEYS[5] armed.
-- ARGV: ids. Returns 1 (send) or 0 (do not) per id, in order.
local fire = {}
for i = 1, #ARGV do
  fire[i] = redis.call('ZREM', KEYS[5], ARGV[i])
end
return fire
