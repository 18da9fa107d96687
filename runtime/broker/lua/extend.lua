-- extend.lua: heartbeat: push the lease deadline of owned jobs of ONE queue.
-- KEYS[1] active   KEYS[2] job prefix
-- ARGV[1] lease_ms   ARGV[2..] 2 per job: id, token
-- Returns: {codes, cancel_requested_ids}: codes one per job (0 OK, 1 STALE, 2 MISSING);
--          ids whose cancellation was requested while running (the worker should stop them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[1])
local codes, cancel = {}, {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', KEYS[2] .. id, 'state', 'tok', 'cxl')
  if not f[1] then
    codes[#codes + 1] = 2
  elseif f[1] ~= 'running' or f[2] ~= ARGV[i + 1] then
    codes[#codes + 1] = 1
  else
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
    codes[#codes + 1] = 0
    if f[3] == '1' then cancel[#cancel + 1] = id end
  end
end
return {codes, cancel}
