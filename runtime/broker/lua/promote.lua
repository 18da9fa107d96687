-- promote.lua: move due delayed/retried jobs of ONE queue to the tail of its ready list.
-- KEYS[1] delayed   KEYS[2] ready   KEYS[3] wake   KEYS[4] job prefix
-- ARGV[1] limit (max jobs moved)   ARGV[2] wake_cap
-- Returns: number of jobs promoted. "Due" is judged by Redis TIME, never a worker's clock.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local n = 0
for i = 1, #due, 2 do
  local id = due[i]
  redis.call('ZREM', KEYS[1], id)
  local st = redis.call('HGET', KEYS[4] .. id, 'state')
  if st == 'scheduled' or st == 'failed' then
    redis.call('HSET', KEYS[4] .. id, 'state', 'queued', 'rdy', due[i + 1])
    redis.call('RPUSH', KEYS[2], id)
    n = n + 1
  end
end
if n > 0 then
  local add = math.min(n, tonumber(ARGV[2]) - redis.call('LLEN', KEYS[3]))
  for _ = 1, add do redis.call('RPUSH', KEYS[3], 1) end
end
return n
