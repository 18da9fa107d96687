-- promote.lua: move due delayed/retried jobs of ONE queue to the tail of its ready list.
-- KEYS[1] delayed   KEYS[2] ready   KEYS[3] wake   KEYS[4] job prefix   KEYS[5] entries (HASH)
-- ARGV[1] limit (max jobs moved, capped at 1000)   ARGV[2] wake_cap
-- Returns: number of jobs promoted. "Due" is judged by Redis TIME, never a worker's clock.
-- How each job is moved: lib/promote.lua (reserve.lua promotes the same way before it leases).
-- include: record
-- include: promote
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = promote_due(KEYS[1], KEYS[2], KEYS[4], KEYS[5], now, math.min(tonumber(ARGV[1]), 1000))
if n > 0 then
  local add = math.min(n, tonumber(ARGV[2]) - redis.call('LLEN', KEYS[3]))
  for _ = 1, add do redis.call('RPUSH', KEYS[3], 1) end
end
return n
