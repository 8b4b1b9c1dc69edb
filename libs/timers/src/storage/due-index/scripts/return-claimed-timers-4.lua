-- Hands claimed timers back to the due index, each at the given run time, when their claim is not carried
-- out: the delivery queue refused the batch, or MongoDB says the timer runs later than the index said.
-- Only a timer the claim still holds (its token is still in `claims`): one cancelled meanwhile must stay
-- out of the index, and one re-claimed after its lease lapsed belongs to its new holder. Its staged
-- delivery is kept: the next claim reads it.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] armed, KEYS[4] claims (TimerKeys).
-- ARGV: runAt1, id1, token1, runAt2, id2, token2, ...
-- Returns how many it handed back.
local due, leased, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local returned = 0
for i = 1, #ARGV, 3 do
  local runAt, id = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', claims, id) == ARGV[i + 2] then
    redis.call('HDEL', claims, id)
    redis.call('ZREM', leased, id)
    redis.call('ZREM', armed, id)
    redis.call('ZADD', due, runAt, id)
    returned = returned + 1
  end
end
return returned
