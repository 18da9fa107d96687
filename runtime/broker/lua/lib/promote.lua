-- lib/promote.lua: promotion of due delayed jobs, shared by reserve.lua and promote.lua (included
-- after lib/record.lua, whose helpers it uses).
-- promote_due(delayed, ready, jp, ents, now, limit): moves up to limit (<= 1000: one ZREM, HMGET
--   and HDEL each) jobs of one queue whose due ms in delayed is <= now to the tail of ready, and
--   returns how many it moved. A job with an entry (enqueue.lua) gets its record here, 'queued' with
--   'rdy' = its due ms (queue-wait metrics count from then), and loses the entry; one with a record
--   ('scheduled', or 'failed' awaiting a retry) is marked 'queued'. An id with neither (cancelled
--   meanwhile) is dropped.
local function promote_due(delayed, ready, jp, ents, now, limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  local ids = {}
  for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
  redis.call('ZREM', delayed, unpack(ids))
  local ent = redis.call('HMGET', ents, unpack(ids))
  local moved = {}
  for k, id in ipairs(ids) do
    local v, at = ent[k], due[2 * k]
    if v then
      local env = entry_env(v)
      redis.call('HSET', jp .. id, unpack(put_env(
        {'state', 'queued', 'env', env, 'enq', entry_ms(v, at), 'rdy', at}, env)))
      moved[#moved + 1] = id
    else
      local st = redis.call('HGET', jp .. id, 'state')
      if st == 'scheduled' or st == 'failed' then
        redis.call('HSET', jp .. id, 'state', 'queued', 'rdy', at)
        moved[#moved + 1] = id
      end
    end
  end
  redis.call('HDEL', ents, unpack(ids))
  if #moved > 0 then redis.call('RPUSH', ready, unpack(moved)) end
  return #moved
end
