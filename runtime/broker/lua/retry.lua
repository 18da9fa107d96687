-- retry.lua: a failed attempt; the job waits in the delayed set for its next attempt.
-- KEYS[1] active   KEYS[2] delayed   KEYS[3] job key
-- ARGV[1] token   ARGV[2] delay_ms (from the pure backoff policy)   ARGV[3] error text
-- ARGV[4] job id   ARGV[5] cancel_ttl_ms
-- Returns: 0 OK, 1 STALE, 2 MISSING.
-- A job whose cancellation was requested while it ran is marked cancelled instead.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jk = KEYS[3]
local f = redis.call('HMGET', jk, 'state', 'tok', 'att', 'hist', 'cxl')
if not f[1] then return 2 end
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 1 end
redis.call('ZREM', KEYS[1], ARGV[4])
if f[5] == '1' then
  redis.call('HSET', jk, 'state', 'cancelled', 'fin', now, 'err', ARGV[3])
  redis.call('PEXPIRE', jk, tonumber(ARGV[5]))
  return 0
end
local delay = math.max(0, tonumber(ARGV[2]))
local att = (tonumber(f[3]) or 1) + 1
local entry = cjson.encode({t = now, event = 'retry', attempt = att - 1, error = ARGV[3], delay_ms = delay})
redis.call('HSET', jk, 'state', 'failed', 'att', att, 'err', ARGV[3], 'rdy', now + delay,
  'hist', (f[4] or '') .. entry .. '\n')
redis.call('ZADD', KEYS[2], now + delay, ARGV[4])
return 0
