-- release.lua: give owned jobs back to the HEAD of their queue (graceful shutdown), in order.
-- KEYS[1] active   KEYS[2] ready   KEYS[3] wake   KEYS[4] job prefix
-- ARGV[1] wake_cap   ARGV[2] cancel_ttl_ms   ARGV[3..] 2 per job: id, token
-- Returns: one code per job: 0 OK, 1 STALE, 2 MISSING.
-- A job whose cancellation was requested is marked cancelled instead of going back.
-- The released delivery does not count toward max_deliveries (the job never ran to an end).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local codes = {}
local back = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local jk = KEYS[4] .. id
  local f = redis.call('HMGET', jk, 'state', 'tok', 'cxl')
  if not f[1] then
    codes[#codes + 1] = 2
  elseif f[1] ~= 'running' or f[2] ~= ARGV[i + 1] then
    codes[#codes + 1] = 1
  elseif f[3] == '1' then
    redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
    redis.call('ZREM', KEYS[1], id)
    redis.call('PEXPIRE', jk, tonumber(ARGV[2]))
    codes[#codes + 1] = 0
  else
    redis.call('HSET', jk, 'state', 'queued', 'rdy', now)
    redis.call('HINCRBY', jk, 'rel', 1)  -- deliveries = tok - rel
    redis.call('HDEL', jk, 'cxl')
    redis.call('ZREM', KEYS[1], id)
    back[#back + 1] = id
    codes[#codes + 1] = 0
  end
end
-- LPUSH in reverse so the first released job ends up first in the queue
for i = #back, 1, -1 do redis.call('LPUSH', KEYS[2], back[i]) end
if #back > 0 and redis.call('LLEN', KEYS[3]) < tonumber(ARGV[1]) then redis.call('RPUSH', KEYS[3], 1) end
return codes
