-- cancel.lua: cancel one job, whatever it is doing.
-- KEYS[1] delayed   KEYS[2] job key   KEYS[3] entries (HASH: see enqueue.lua)
-- ARGV[1] job id   ARGV[2] ttl_ms (expiry of the cancelled record)
-- Returns: 0 OK, 2 MISSING, 3 WRONG_STATE (already finished: succeeded, dead or cancelled).
-- A job with an entry becomes a 'cancelled' record: a delayed one leaves the delayed set and its
-- record expires after ttl_ms; a ready one stays in the ready list until reserve skips it, which
-- then sets the expiry (as for a marked queued record).
-- queued record: marked only (reserve skips it later; no O(n) LREM); scheduled/failed record: removed
-- from the delayed set; running: a cancel-requested flag that extend() reports to the owning worker.
-- include: record
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jk, id = KEYS[2], ARGV[1]
local st = redis.call('HGET', jk, 'state')
if not st then
  local v = redis.call('HGET', KEYS[3], id)
  if not v then return 2 end
  redis.call('HDEL', KEYS[3], id)
  local env = entry_env(v)
  redis.call('HSET', jk, unpack(put_env({'state', 'cancelled', 'env', env, 'enq', entry_ms(v, now), 'fin', now}, env)))
  if redis.call('ZREM', KEYS[1], id) == 1 then  -- it was delayed: no reserve will skip it
    redis.call('PEXPIRE', jk, tonumber(ARGV[2]))
  end
  return 0
end
if st == 'queued' then
  redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
  return 0
elseif st == 'scheduled' or st == 'failed' then
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', jk, 'state', 'cancelled', 'fin', now)
  redis.call('PEXPIRE', jk, tonumber(ARGV[2]))
  return 0
elseif st == 'running' then
  redis.call('HSET', jk, 'cxl', '1')
  return 0
end
return 3
