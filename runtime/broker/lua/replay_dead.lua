-- replay_dead.lua: put dead-lettered jobs of ONE queue back at the tail of its ready list.
-- KEYS[1] dead   KEYS[2] ready   KEYS[3] wake   KEYS[4] job prefix
-- ARGV[1] limit (used when no ids are given: the oldest `limit` dead jobs)   ARGV[2] wake_cap
-- ARGV[3..] job ids (optional)
-- Returns: number of jobs replayed. A replayed job starts over: attempt 1, deliveries 0, no expiry.
-- Dead entries whose record is gone (expired, or garbage ids) are dropped from the dead set.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local jk = KEYS[4] .. id
    local f = redis.call('HMGET', jk, 'state', 'env', 'hist', 'tok')
    if f[1] == 'dead' and f[2] then
      -- deliveries (tok - rel) start over at 0; the token itself never repeats
      redis.call('HSET', jk, 'state', 'queued', 'att', 1, 'rel', f[4] or '0', 'rdy', now,
        'hist', (f[3] or '') .. cjson.encode({t = now, event = 'replayed'}) .. '\n')
      redis.call('HDEL', jk, 'err', 'fin', 'sta', 'res')
      redis.call('PERSIST', jk)
      redis.call('RPUSH', KEYS[2], id)
      n = n + 1
    else
      redis.call('DEL', jk)
    end
  end
end
if n > 0 and redis.call('LLEN', KEYS[3]) < tonumber(ARGV[2]) then redis.call('RPUSH', KEYS[3], 1) end
return n
