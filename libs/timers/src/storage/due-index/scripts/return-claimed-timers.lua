-- Hands claimed timers back to the due index, each at the given run time, when their claim is not carried
-- out: the delivery queue refused the batch, or MongoDB says the timer runs later than the index said.
-- Only a timer the claim still holds (its token is still in `claims`): one cancelled meanwhile must stay
-- out of the index, and one re-claimed after its lease lapsed belongs to its new holder.
-- KEYS[1] due index, KEYS[2] leases, KEYS[3] staged deliveries (kept: the next claim reads them),
-- KEYS[4] settled (unused), KEYS[5] armed, KEYS[6] claims.
-- ARGV: runAt1, id1, token1, runAt2, id2, token2, ...
-- Returns how many it handed back.
local returned = 0
for i = 1, #ARGV, 3 do
  local runAt, id = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[6], id) == ARGV[i + 2] then
    redis.call('HDEL', KEYS[6], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('ZADD', KEYS[1], runAt, id)
    returned = returned + 1
  end
end
return returned
