-- fail.lua: end a job for good: dead-letter it with a reason, or mark it cancelled.
-- KEYS[1] active   KEYS[2] dead   KEYS[3] job key   KEYS[4] job prefix (to drop trimmed records)
-- ARGV[1] token   ARGV[2] reason   ARGV[3] ttl_ms (record expiry)   ARGV[4] dead max_length
-- ARGV[5] job id  ARGV[6] final state: 'dead' or 'cancelled'
-- Returns: 0 OK, 1 STALE, 2 MISSING.
-- The dead set is trimmed to max_length, oldest first, at most 100 per call (O(batch)), and entries
-- older than ttl_ms (whose records have expired with the same ttl) are dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jk, id = KEYS[3], ARGV[5]
local f = redis.call('HMGET', jk, 'state', 'tok', 'hist')
if not f[1] then return 2 end
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 1 end
local final = ARGV[6]
local entry = cjson.encode({t = now, event = final, reason = ARGV[2]})
redis.call('HSET', jk, 'state', final, 'err', ARGV[2], 'fin', now, 'hist', (f[3] or '') .. entry .. '\n')
redis.call('HDEL', jk, 'cxl')
redis.call('ZREM', KEYS[1], id)
redis.call('PEXPIRE', jk, tonumber(ARGV[3]))
if final == 'dead' then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
  local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
  if excess > 0 then
    local old = redis.call('ZPOPMIN', KEYS[2], math.min(excess, 100))
    for i = 1, #old, 2 do redis.call('DEL', KEYS[4] .. old[i]) end
  end
end
return 0
