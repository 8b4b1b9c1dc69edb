-- What one shard's schedule holds right now, read in one step (a claim moving timers from the wheel into
-- `due` between two reads would count them twice or not at all). Read only.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] armed, KEYS[4] wheel, KEYS[5] wheeled (TimerKeys). ARGV[1] now (ms).
-- Returns {scheduled, overdue, run time of the most overdue (ms) or -1 when none is, claimed, armed}.
-- Overdue timers wait in `due`, and in the wheel when no claim ran for a while (every worker down): claims
-- move wheel buckets into `due` as they come near. A wheel bucket wholly past `now` counts from its header
-- (see schedule-timers-6.lua for the wheel's layout); only the first bucket holding a live record and a
-- bucket straddling `now` are scanned.
local due, leased, armed, wheel, wheeled = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = tonumber(ARGV[1])
local overdue, earliest = redis.call('ZCOUNT', due, '-inf', now), -1
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
if overdue > 0 then earliest = tonumber(first[2]) end
local buckets = redis.call('ZRANGEBYSCORE', wheel, '-inf', now, 'WITHSCORES')
local wheelEarliest = -1
for b = 1, #buckets, 2 do
  local start = tonumber(buckets[b + 1])
  local key = wheel .. ':' .. buckets[b]
  local header = redis.call('GETRANGE', key, 0, HEADER_BYTES - 1)
  if header ~= '' then
    local live, promoted = struct.unpack('>I4I4', header)
    if live > 0 then
      -- A bucket's records all come before the next bucket's start: past the first one scanned, only a bucket
      -- straddling `now` needs its records read.
      if wheelEarliest >= 0 and start + BUCKET_MS <= now then
        overdue = overdue + live
      else
        local records = redis.call('GETRANGE', key, HEADER_BYTES + promoted * RECORD_BYTES, -1)
        for r = 1, #records, RECORD_BYTES do
          local high, low = string.byte(records, r + 12, r + 13)
          local offset = high * 256 + low
          if offset ~= TOMBSTONE and start + offset <= now then
            overdue = overdue + 1
            if wheelEarliest < 0 or start + offset < wheelEarliest then wheelEarliest = start + offset end
          end
        end
      end
    end
  end
end
if wheelEarliest >= 0 and (earliest < 0 or wheelEarliest < earliest) then earliest = wheelEarliest end
local scheduled = redis.call('ZCARD', due) + (tonumber(redis.call('GET', wheeled)) or 0)
return {scheduled, overdue, earliest, redis.call('ZCARD', leased), redis.call('ZCARD', armed)}
