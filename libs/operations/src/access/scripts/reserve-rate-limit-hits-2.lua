-- Reserves up to ARGV[1] requests of a client's rate-limit window for one api process, which then admits
-- them without asking Redis again. The window is fixed: it starts with its first reserved request and
-- lasts ARGV[3] ms. A reservation that finds the window full blocks the client for ARGV[4] ms, during
-- which every reservation is refused. Reserved requests never exceed the limit, whatever the number of
-- api processes reserving.
-- KEYS[1] hits: requests reserved in the current window (expires with it)
-- KEYS[2] blocked: present while the client is blocked
-- ARGV[1] requests wanted   ARGV[2] limit per window   ARGV[3] window (ms)   ARGV[4] block (ms)
-- Returns { granted, hits in the window after it, window ms left, block ms left }; granted 0 = refused.
local wanted = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])

local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
local windowLeft = redis.call('PTTL', KEYS[1])
if windowLeft <= 0 then
  -- No window yet (-2), or a count without expiry (-1) that would otherwise never reset.
  hits = 0
  windowLeft = tonumber(ARGV[3])
end

local blockLeft = redis.call('PTTL', KEYS[2])
if blockLeft > 0 then
  return { 0, hits, windowLeft, blockLeft }
end

local granted = math.min(wanted, limit - hits)
if granted > 0 then
  hits = hits + granted
  redis.call('SET', KEYS[1], hits, 'PX', windowLeft)
  return { granted, hits, windowLeft, 0 }
end

local block = tonumber(ARGV[4])
redis.call('SET', KEYS[2], 1, 'PX', block)
return { 0, hits, windowLeft, block }
