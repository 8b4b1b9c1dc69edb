-- Claims up to ARGV[2] timers due at or before ARGV[1] (ms) from the due index KEYS[1] and removes them,
-- in one step, so each due timer goes to exactly one of many concurrent schedulers.
-- The lowest scores are ranks 0..n-1, so removing by rank removes exactly what was read.
-- Returns a flat list: id1, score1, id2, score2, ...
local claimed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
if #claimed > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, (#claimed / 2) - 1)
end
return claimed
