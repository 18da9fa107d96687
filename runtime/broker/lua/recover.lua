-- recover.lua: sweep expired leases of ONE queue (workers that died, hung or were paused).
-- KEYS[1] active   KEYS[2] ready   KEYS[3] dead   KEYS[4] wake   KEYS[5] job prefix
-- ARGV[1] max_deliveries   ARGV[2] limit   ARGV[3] dead_ttl_ms   ARGV[4] cancel_ttl_ms
-- ARGV[5] wake_cap
-- Returns: {recovered, dead_lettered}.
-- Expiry is judged by Redis TIME. A job already delivered max_deliveries times is a poison job:
-- it goes to the dead set ("poison: delivered N times"); others go back to the HEAD of the queue.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxd = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local recovered, dead = 0, 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local jk = KEYS[5] .. id
  local f = redis.call('HMGET', jk, 'state', 'tok', 'hist', 'cxl', 'rel')
  if f[1] == 'running' then
    local dlv = (tonumber(f[2]) or 0) - (tonumber(f[5]) or 0)  -- deliveries = tok - rel
    local hist = f[3] or ''
    if f[4] == '1' then
      redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
      redis.call('PEXPIRE', jk, tonumber(ARGV[4]))
    elseif dlv >= maxd then
      local reason = 'poison: delivered ' .. dlv .. ' times'
      redis.call('HSET', jk, 'state', 'dead', 'err', reason, 'fin', now,
        'hist', hist .. cjson.encode({t = now, event = 'dead', reason = reason}) .. '\n')
      redis.call('PEXPIRE', jk, tonumber(ARGV[3]))
      redis.call('ZADD', KEYS[3], now, id)
      dead = dead + 1
    else
      redis.call('HSET', jk, 'state', 'queued', 'rdy', now,
        'hist', hist .. cjson.encode({t = now, event = 'recovered', deliveries = dlv}) .. '\n')
      redis.call('LPUSH', KEYS[2], id)
      recovered = recovered + 1
    end
  end
end
if recovered > 0 then
  local add = math.min(recovered, tonumber(ARGV[5]) - redis.call('LLEN', KEYS[4]))
  for _ = 1, add do redis.call('RPUSH', KEYS[4], 1) end
end
return {recovered, dead}
