-- cancel.lua: cancel one job, whatever it is doing.
-- KEYS[1] delayed   KEYS[2] job key   KEYS[3] pending (HASH: see enqueue.lua)
-- ARGV[1] job id   ARGV[2] ttl_ms (expiry of the cancelled record)
-- Returns: 0 OK, 2 MISSING, 3 WRONG_STATE (already finished: succeeded, dead or cancelled).
-- pending (queued, never leased): its entry becomes a 'cancelled' record (reserve skips its id);
-- queued: marked only (reserve skips it later; no O(n) LREM); scheduled/failed: removed from the
-- delayed set; running: a cancel-requested flag that extend() reports to the owning worker.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jk = KEYS[2]
local st = redis.call('HGET', jk, 'state')
if not st then
  local v = redis.call('HGET', KEYS[3], ARGV[1])
  if not v then return 2 end
  redis.call('HDEL', KEYS[3], ARGV[1])
  local env = string.sub(v, 7)
  local h = {'state', 'cancelled', 'env', env, 'enq', struct.unpack('>I6', v), 'fin', now}
  if #env > 64 and #env <= 256 then  -- the pieces enqueue.lua would have written
    h[4] = string.sub(env, 1, 64)
    for c = 2, math.ceil(#env / 64) do
      h[#h + 1] = 'env' .. c
      h[#h + 1] = string.sub(env, (c - 1) * 64 + 1, c * 64)
    end
  end
  redis.call('HSET', jk, unpack(h))
  return 0
end
if st == 'queued' then
  redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
  return 0
elseif st == 'scheduled' or st == 'failed' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
  redis.call('PEXPIRE', jk, tonumber(ARGV[2]))
  return 0
elseif st == 'running' then
  redis.call('HSET', jk, 'cxl', '1')
  return 0
end
return 3
