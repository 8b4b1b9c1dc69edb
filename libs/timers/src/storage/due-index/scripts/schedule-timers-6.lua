-- Schedules timers that MongoDB says need an attempt, and stages their delivery: timers just created (their
-- creator inserted them, then calls this) and the timers a reconciler pass read.
-- KEYS[1] due, KEYS[2] leased, KEYS[3] staged, KEYS[4] settled, KEYS[5] wheel, KEYS[6] wheeled (TimerKeys).
-- An armed timer is leased, so leased covers it.
-- ARGV[1]: forget settled entries older than this (ms), or NONE to forget none; ARGV[2]: a timer whose wheel
-- bucket starts after this time (ms) goes into the wheel, or NONE to put every timer into `due`; then runAt1,
-- id1 (24 lowercase hex digits), staged1 (NONE = no staging), runAt2, ...
-- Two tiers, because most pending timers are far off and need no more than to be found again when they come
-- near (or are cancelled): a timer due within the reconciler's horizon goes into `due` (one entry per id,
-- staged delivery), where claims, arming and retries work on it; a later one is appended to the timing wheel
-- as a RECORD_BYTES record (the id's 12 bytes, then its ms offset within its bucket, 2 bytes big-endian) in
-- the string of its bucket (BUCKET_MS wide), `<wheel>:<bucket number>` (same hash tag, so same slot), and
-- the bucket is listed in `wheel` (score = its start); claim-due-timers-8.lua moves buckets into `due` as
-- they come within the horizon. A bucket string starts with a HEADER_BYTES header: how many of its records
-- are live (neither moved nor cancelled), then how many it has moved so far (4 bytes each, big-endian).
-- `wheeled` counts the live records of all buckets. A far timer's staging is dropped: the reconciler stages
-- it once it is near.
-- The caller read (or wrote) MongoDB before it calls this, so it skips what happened since:
--  * a leased id is being delivered right now (a reconciler pass indexed a new timer before its creator did);
--  * a settled id was delivered, failed or cancelled after the read (a cancel that came between a
--    creator's insert and this call stays cancelled);
--  * ZADD GT keeps a later run time (a retry scheduled after the read), HSETNX a fresher staging.
-- Returns how many ids it (re-)added.
local due, leased, staged, settled, wheel, wheeled = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if ARGV[1] ~= NONE then redis.call('ZREMRANGEBYSCORE', settled, '-inf', '(' .. ARGV[1]) end
local wheelAfter = ARGV[2] ~= NONE and tonumber(ARGV[2]) or nil
local hexToByte
-- Records by bucket, so each bucket is written once per call.
local buckets, bucketOrder, wheeledNow = {}, {}, 0
local added = 0
for i = 3, #ARGV, 3 do
  local runAt, id, delivery = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not redis.call('ZSCORE', leased, id) and not redis.call('ZSCORE', settled, id) then
    local at = math.floor(tonumber(runAt))
    local bucket = math.floor(at / BUCKET_MS)
    if wheelAfter and bucket * BUCKET_MS > wheelAfter then
      if not hexToByte then
        hexToByte = {}
        for b = 0, 255 do hexToByte[string.format('%02x', b)] = string.char(b) end
      end
      local records = buckets[bucket]
      if not records then
        records = {}
        buckets[bucket] = records
        bucketOrder[#bucketOrder + 1] = bucket
      end
      records[#records + 1] = (id:gsub('..', hexToByte)) .. struct.pack('>I2', at - bucket * BUCKET_MS)
      wheeledNow = wheeledNow + 1
    else
      redis.call('ZADD', due, 'GT', runAt, id)
      if delivery ~= NONE then redis.call('HSETNX', staged, id, delivery) end
    end
    added = added + 1
  end
end
for _, bucket in ipairs(bucketOrder) do
  local key = wheel .. ':' .. bucket
  local records = buckets[bucket]
  local header = redis.call('GETRANGE', key, 0, HEADER_BYTES - 1)
  if header == '' then
    redis.call('SET', key, struct.pack('>I4I4', #records, 0) .. table.concat(records))
    redis.call('ZADD', wheel, bucket * BUCKET_MS, bucket)
  else
    redis.call('SETRANGE', key, 0, struct.pack('>I4', struct.unpack('>I4', header) + #records))
    redis.call('APPEND', key, table.concat(records))
  end
end
if wheeledNow > 0 then redis.call('INCRBY', wheeled, wheeledNow) end
return added
