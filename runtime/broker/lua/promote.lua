-- promote.lua: move due delayed/retried jobs of ONE queue to the tail of its ready list.
-- KEYS[1] delayed   KEYS[2] ready   KEYS[3] wake   KEYS[4] job prefix   KEYS[5] entries (HASH)
-- ARGV[1] limit (max jobs moved, capped at 1000)   ARGV[2] wake_cap
-- Returns: number of jobs promoted. "Due" is judged by Redis TIME, never a worker's clock.
-- A due job with an entry (enqueue.lua) gets its record here, 'queued' with 'rdy' = due ms,
-- and loses the entry; one with a record ('scheduled', or 'failed' awaiting a retry) is marked
-- 'queued'. An id with neither (cancelled meanwhile) is dropped. reserve.lua promotes the same way.
-- include: record
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = math.min(tonumber(ARGV[1]), 1000)  -- bounded: one ZREM/HMGET/HDEL per call
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
if #due == 0 then return 0 end
local jp, ents = KEYS[4], KEYS[5]
local ids = {}
for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
redis.call('ZREM', KEYS[1], unpack(ids))
local ent = redis.call('HMGET', ents, unpack(ids))
local moved = {}
for k, id in ipairs(ids) do
  local v = ent[k]
  if v then
    local env = entry_env(v)
    redis.call('HSET', jp .. id, unpack(put_env(
      {'state', 'queued', 'env', env, 'enq', entry_ms(v, due[2 * k]), 'rdy', due[2 * k]}, env)))
    moved[#moved + 1] = id
  else
    local st = redis.call('HGET', jp .. id, 'state')
    if st == 'scheduled' or st == 'failed' then
      redis.call('HSET', jp .. id, 'state', 'queued', 'rdy', due[2 * k])
      moved[#moved + 1] = id
    end
  end
end
redis.call('HDEL', ents, unpack(ids))
local n = #moved
if n > 0 then
  redis.call('RPUSH', KEYS[2], unpack(moved))
  local add = math.min(n, tonumber(ARGV[2]) - redis.call('LLEN', KEYS[3]))
  for _ = 1, add do redis.call('RPUSH', KEYS[3], 1) end
end
return n
