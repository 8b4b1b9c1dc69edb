-- Takes a pending timer out of the schedule so that no scheduler can claim or fire it any more, atomically
-- with respect to claim-due-timers-8.lua (which also moves wheel buckets into `due`) and
-- take-claimed-timers-3.lua: either the timer is due and being delivered, or it never fires.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled, KEYS[5] armed, KEYS[6] claims, KEYS[7] wheel,
-- KEYS[8] wheeled (TimerKeys).
-- ARGV[1] now, ARGV[2] id (24 lowercase hex digits), ARGV[3] its run time as MongoDB has it (ms), or NONE.
-- Returns DELIVERING when it is due, or leased and not armed for a later time (being sent); else
-- CANCELLED (also when it was not in the index: the settled entry keeps the reconciler, and a creator
-- whose index write comes after this, from re-adding it). An armed timer (claimed ahead of its due time,
-- not fired yet) is cancelled: its claim is dropped, so its holder cannot take it when it falls due.
-- A far timer may still be a record in its wheel bucket (see schedule-timers-6.lua), found from its run
-- time: the record is overwritten with a tombstone (offset TOMBSTONE) in place, so the bucket's move into
-- `due` skips it however long after this that comes (the settled mark is forgotten after two reconciler
-- periods; the tombstone is not). Only records the bucket has not moved yet count; one already moved is
-- in `due`, and leaves it here.
local due, leased, staged, settled, armed, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local wheel, wheeled = KEYS[7], KEYS[8]
local now, id = tonumber(ARGV[1]), ARGV[2]

-- The wheel is only read here, so a DELIVERING answer changes nothing.
local bucket, key, live, promoted
local found = {}
if ARGV[3] ~= NONE then
  bucket = math.floor(tonumber(ARGV[3]) / BUCKET_MS)
  key = wheel .. ':' .. bucket
  local records = redis.call('GET', key)
  if records then
    local hexToByte = {}
    for b = 0, 255 do hexToByte[string.format('%02x', b)] = string.char(b) end
    local idBytes = id:gsub('..', hexToByte)
    live, promoted = struct.unpack('>I4I4', records)
    -- The id's bytes may also occur across two records: only a match at a record's start is the id.
    local at = string.find(records, idBytes, HEADER_BYTES + promoted * RECORD_BYTES + 1, true)
    while at do
      if (at - 1 - HEADER_BYTES) % RECORD_BYTES == 0 then
        local high, low = string.byte(records, at + 12, at + 13)
        local offset = high * 256 + low
        if offset ~= TOMBSTONE then
          if bucket * BUCKET_MS + offset <= now then return DELIVERING end
          found[#found + 1] = at - 1
        end
      end
      at = string.find(records, idBytes, at + 1, true)
    end
  end
end

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
if #found > 0 then
  live = live - #found
  if live <= 0 then
    redis.call('DEL', key)
    redis.call('ZREM', wheel, bucket)
  else
    local tombstone = struct.pack('>I2', TOMBSTONE)
    for _, at in ipairs(found) do redis.call('SETRANGE', key, at + 12, tombstone) end
    redis.call('SETRANGE', key, 0, struct.pack('>I4', live))
  end
  redis.call('DECRBY', wheeled, #found)
end
redis.call('ZADD', settled, now, id)
return CANCELLED
