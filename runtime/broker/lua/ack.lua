-- ack.lua: record success of a batch of jobs of ONE queue, fenced by their tokens.
-- KEYS[1] active      ZSET id -> lease deadline
-- KEYS[2] job prefix  "<ns>:{q}:job:"
-- ARGV[1] result_ttl_ms  the record expires this long after success
-- ARGV[2] ONE msgpack array (raw strings, no bin type), 3 entries per job: id, token (a decimal
--         string: compared as stored, no number conversion), result bytes
-- Returns: one code per job: 0 OK, 1 STALE (token does not own the job), 2 MISSING (no record).
-- A result equal to msgpack nil (0xc0) is not stored (the reader supplies it for a succeeded job).
-- Repeating an identical ack (same id and token, e.g. after a dropped reply) returns 0 and records
-- nothing twice.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows, ttl = tostring(now), ARGV[1]  -- strings: redis.call would sprintf numbers per job
local a = cmsgpack.unpack(ARGV[2])
local NIL = '\192'  -- msgpack nil, the encoding of a None result
local out, zrem = {}, {}
for i = 1, #a, 3 do
  local id, tok = a[i], a[i + 1]
  local jk = KEYS[2] .. id
  local f = redis.call('HMGET', jk, 'state', 'tok', 'cxl')
  if not f[1] then
    out[#out + 1] = 2
  elseif f[2] ~= tok then
    out[#out + 1] = 1
  elseif f[1] == 'succeeded' then
    out[#out + 1] = 0
  elseif f[1] ~= 'running' then
    out[#out + 1] = 1
  else
    local res = a[i + 2]
    if res == NIL then  -- a None result (most tasks) is not stored: job() reads an absent 'res' as nil
      redis.call('HSET', jk, 'state', 'succeeded', 'fin', nows)
    else
      redis.call('HSET', jk, 'state', 'succeeded', 'fin', nows, 'res', res)
    end
    if f[3] then redis.call('HDEL', jk, 'cxl') end
    redis.call('PEXPIRE', jk, ttl)
    zrem[#zrem + 1] = id
    out[#out + 1] = 0
  end
end
for i = 1, #zrem, 200 do
  redis.call('ZREM', KEYS[1], unpack(zrem, i, math.min(i + 199, #zrem)))
end
return out
