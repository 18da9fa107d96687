-- purge.lua: delete up to `limit` jobs of ONE queue from one of its containers, with their records.
-- KEYS[1] container (ready LIST, or delayed/dead ZSET)   KEYS[2] job prefix
-- KEYS[3] entries (HASH): a ready or delayed id may have its entry there instead of a record
--         (see enqueue.lua); dead ids have records
-- ARGV[1] limit   ARGV[2] kind: 'list' or 'zset'
-- Returns: number of entries removed (the caller loops until 0, so each call stays O(limit)).
-- Running jobs are not touched: their workers still own them.
local limit = tonumber(ARGV[1])
local ids
if ARGV[2] == 'list' then
  ids = redis.call('LPOP', KEYS[1], limit)
  if not ids then return 0 end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, limit - 1)
  if #ids == 0 then return 0 end
  for s = 1, #ids, 1000 do
    redis.call('ZREM', KEYS[1], unpack(ids, s, math.min(s + 999, #ids)))
  end
end
for s = 1, #ids, 1000 do
  redis.call('HDEL', KEYS[3], unpack(ids, s, math.min(s + 999, #ids)))
end
for _, id in ipairs(ids) do
  local jk = KEYS[2] .. id
  local st = redis.call('HGET', jk, 'state')
  if st ~= 'running' then redis.call('DEL', jk) end
end
return #ids
