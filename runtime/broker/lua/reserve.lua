-- reserve.lua: lease up to N jobs from several queues, highest priority first.
-- KEYS: 9 per queue, repeated in priority order (all queues of one call share a cluster slot):
--   KEYS[9i+1] ready   KEYS[9i+2] active   KEYS[9i+3] delayed   KEYS[9i+4] dead
--   KEYS[9i+5] rate    KEYS[9i+6] job prefix   KEYS[9i+7] parked
--   KEYS[9i+8] the calling worker's inbox (the same in every group; its flag is inbox .. ':on');
--              unused when ARGV[7] is 0 (callers pass the parked key again)
--   KEYS[9i+9] entries (HASH id -> entry of a job that has no record yet: see enqueue.lua)
-- ARGV[1] n              max jobs to lease in total (capped at 1000)
-- ARGV[2] lease_ms       lease length; deadline = Redis TIME + lease_ms
-- ARGV[3] promote_limit  max due delayed jobs promoted per queue first
-- ARGV[4] cancel_ttl_ms  expiry given to a lazily-cancelled record when it is skipped
-- ARGV[5] dead_ttl_ms    expiry of records dead-lettered here (ids with no record)
-- ARGV[6] anchor         the active ZSET's +inf anchor member (longer than 64 bytes, not a valid job id)
-- ARGV[7] park_ttl_ms    0: a plain reserve; else the caller is a worker that parks when this call
--                        leases nothing (see Parking below)
-- ARGV[8..] 2 per queue: rate (jobs/s, 0 = unlimited), burst (bucket size)
-- Returns: {dead_lettered, next_due_ms (-1 none), rate_wait_ms (-1 none), server_now_ms,
--           lease deadline ms (the same for every job of the call),
--           then 7 per leased job: queue index (0-based), id, token, envelope, attempt, deliveries,
--           ready ms}; attempt and ready ms may come as integer strings
-- KEYS[8i+2] (active) always holds ARGV[6], an anchor member scored +inf that no recovery sweep ever
-- reaches: it keeps the ZSET in skiplist encoding (a small listpack/ziplist ZSET parses every score
-- as text on each insert, ~3x the cost per leased job).
-- A popped id with an entry is a job's first lease: its entry is deleted and its record written
-- here ('running', token 1), the same record a queued one would have after its lease. Promotion
-- does the same for a due delayed job with an entry (record 'queued', 'rdy' = its due ms).
-- Otherwise only ids whose record is 'queued' are leased; a 'cancelled' record is skipped (lazy cancel), any
-- other state (a stray duplicate id) is dropped, and an id with neither an entry nor a record
-- is dead-lettered with reason "no job record", so garbage in the list never blocks the jobs behind it.
-- Parking (ARGV[7] > 0), the worker side of enqueue.lua's direct handoff: the call first deletes the
-- flag (no handoff while the worker is busy) and takes what its inbox holds: jobs enqueue.lua leased
-- to it while it was parked but that its BLPOP did not take. Each one still owned (state 'running',
-- token 1) is re-leased to this call's deadline and returned first, so a handed job is never
-- stranded. When the call leases nothing at all, the worker is registered as parked: its inbox key
-- goes to the tail of the parked list of each queue WITHOUT a rate limit (LREM first: one entry per
-- worker), and the flag is set to lease_ms with PX park_ttl_ms (it lapses if the worker dies parked).
-- A parked worker found all its queues empty (or rate limited), so a handoff cannot jump a job of
-- higher priority that was waiting.
-- include: record
-- include: promote
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = math.min(tonumber(ARGV[1]), 1000)  -- bounded: one ZADD, O(batch)
local lease = tonumber(ARGV[2])
local plimit = math.min(tonumber(ARGV[3]), 1000)  -- bounded: see lib/promote.lua
local cancel_ttl = tonumber(ARGV[4])
local dead_ttl = tonumber(ARGV[5])
local park_ttl = tonumber(ARGV[7])
local nq = #KEYS / 9
local deadline = now + lease
-- numbers handed to redis.call are formatted with sprintf each time: format the constant ones once
local nows, dls = tostring(now), tostring(deadline)
local anchor = ARGV[6]
local last_stamp, last_enq = nil, nil  -- the entry stamp last decoded, and its decimal ms
local out = {0, -1, -1, now, deadline}
local n = 5  -- #out, kept by hand (the # operator searches)
local dead_count, leased = 0, 0

-- token bucket (refilled by elapsed server time): tokens available now
local function bucket(rkey, rate, burst)
  local st = redis.call('HMGET', rkey, 'tk', 'ts')
  local tokens, ts = tonumber(st[1]), tonumber(st[2])
  if not tokens then tokens, ts = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  return tokens
end

local inbox = KEYS[8]
local flag = inbox .. ':on'
if park_ttl > 0 then
  redis.call('DEL', flag)
  local items = redis.call('LPOP', inbox, 100)  -- one per park: a handful at most
  for _, item in ipairs(items or {}) do
    local it = cmsgpack.unpack(item)  -- {ready key, id, envelope, deadline, enqueued ms}
    for q = 0, nq - 1 do
      if KEYS[9 * q + 1] == it[1] then
        local jk = KEYS[9 * q + 6] .. it[2]
        local f = redis.call('HMGET', jk, 'state', 'tok')
        if f[1] == 'running' and f[2] == '1' then  -- else recovered meanwhile: no longer ours
          redis.call('ZADD', KEYS[9 * q + 2], deadline, it[2])
          out[n + 1], out[n + 2], out[n + 3], out[n + 4] = q, it[2], 1, it[3]
          out[n + 5], out[n + 6], out[n + 7] = 1, 1, it[5]
          n = n + 7
          leased = leased + 1
        end
        break
      end
    end
  end
end

for q = 0, nq - 1 do
  if leased >= want then break end
  local ready, active, delayed, dead = KEYS[9 * q + 1], KEYS[9 * q + 2], KEYS[9 * q + 3], KEYS[9 * q + 4]
  local rkey, jp, ents = KEYS[9 * q + 5], KEYS[9 * q + 6], KEYS[9 * q + 9]
  local rate, burst = tonumber(ARGV[8 + 2 * q]), tonumber(ARGV[9 + 2 * q])
  promote_due(delayed, ready, jp, ents, now, plimit)
  local take = want - leased
  local tokens = nil
  if rate > 0 then
    tokens = bucket(rkey, rate, burst)
    take = math.min(take, math.floor(tokens))
    if take < 1 and redis.call('LLEN', ready) > 0 then
      local wait = math.ceil((1 - tokens) * 1000 / rate)
      if out[3] < 0 or wait < out[3] then out[3] = wait end
    end
  end
  local got = 0
  local zadd = {'inf', anchor}
  local budget = 4 * take + 100  -- bounds the pops spent skipping cancelled or garbage ids
  while got < take and budget > 0 do
    local ids = redis.call('LPOP', ready, math.min(take - got, budget))
    if not ids then break end
    budget = budget - #ids
    local pv = redis.call('HMGET', ents, unpack(ids))  -- <= 1000 ids: within Lua's unpack limit
    local taken, nt = {}, 0
    for k = 1, #ids do  -- a numeric loop: ipairs calls a C function per step
      local id = ids[k]
      local jk = jp .. id
      local v = pv[k]
      if v then  -- first lease of a job with an entry: its record is born here
        local stamp = string.sub(v, 1, 6)
        if stamp ~= last_stamp then  -- a batch's jobs share their stamp: format it once (sprintf)
          last_stamp, last_enq = stamp, entry_ms(v, nows)
        end
        local env = entry_env(v)
        if #env <= 64 then  -- one piece (most jobs): no argument table to build and unpack
          redis.call('HSET', jk, 'state', 'running', 'env', env, 'enq', last_enq, 'sta', nows, 'tok', '1')
        else
          redis.call('HSET', jk, unpack(put_env(
            {'state', 'running', 'env', env, 'enq', last_enq, 'sta', nows, 'tok', '1'}, env)))
        end
        nt = nt + 1
        taken[nt] = id
        zadd[#zadd + 1] = dls
        zadd[#zadd + 1] = id
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = q, id, 1, env
        out[n + 5], out[n + 6], out[n + 7] = 1, 1, last_enq
        n = n + 7
        got = got + 1
      else
        -- one read, one write per job; 'tok'/'rel' absent = 0, 'att' absent = 1 (enqueue skips them);
        -- deliveries = tok - rel ('rel': deliveries given back by release, or discounted by replay), so
        -- a delivery writes 'tok' alone;
        -- 'env2'..'env4' hold the rest of a 65..256-byte envelope (see enqueue.lua). A field that is
        -- absent costs a scan of the whole record, so 'env3'/'env4' are asked for only when 'env2' is full.
        local f = redis.call('HMGET', jk, 'state', 'env', 'att', 'rdy', 'tok', 'rel', 'env2', 'enq')
        local st = f[1]
        if st == 'queued' then
          local env = f[2] or ''  -- a record with no envelope still yields a reply the worker can dead-letter
          local e2 = f[7]
          if e2 then
            if #e2 == 64 then
              local g = redis.call('HMGET', jk, 'env3', 'env4')
              e2 = e2 .. (g[1] or '') .. (g[2] or '')
            end
            env = env .. e2
          end
          -- tonumber/tostring go through strtod/sprintf: skipped for the absent fields of a first delivery
          local tok, toks = 1, '1'
          if f[5] then
            tok = tonumber(f[5]) + 1
            toks = tostring(tok)
          end
          local dlv = tok
          if f[6] then dlv = tok - tonumber(f[6]) end
          redis.call('HSET', jk, 'state', 'running', 'sta', nows, 'tok', toks)
          zadd[#zadd + 1] = dls
          zadd[#zadd + 1] = id
          out[n + 1] = q
          out[n + 2] = id
          out[n + 3] = tok
          out[n + 4] = env
          out[n + 5] = f[3] or 1  -- attempt: a string when set (the client reads it as an int)
          out[n + 6] = dlv
          out[n + 7] = f[4] or f[8] or nows  -- ready ms as stored ('rdy', else 'enq': see enqueue.lua)
          n = n + 7
          got = got + 1
        elseif st == 'cancelled' then
          redis.call('PEXPIRE', jk, cancel_ttl)
        elseif not st then
          redis.call('HSET', jk, 'state', 'dead', 'err', 'no job record', 'fin', now, 'att', 0,
            'hist', cjson.encode({t = now, event = 'dead', reason = 'no job record'}) .. '\n')
          redis.call('PEXPIRE', jk, dead_ttl)
          redis.call('ZADD', dead, now, id)
          dead_count = dead_count + 1
        end
      end
    end
    if nt > 0 then redis.call('HDEL', ents, unpack(taken)) end
  end
  if got > 0 then  -- one ZADD for the batch (<= 1001 pairs: within Lua's unpack limit), anchor included
    redis.call('ZADD', active, unpack(zadd))
  end
  if tokens then
    redis.call('HSET', rkey, 'tk', tokens - got, 'ts', now)
    redis.call('PEXPIRE', rkey, math.ceil(burst * 1000 / rate) + 1000)
  end
  leased = leased + got
end
out[1] = dead_count

if leased == 0 and park_ttl > 0 then
  for q = 0, nq - 1 do
    if tonumber(ARGV[8 + 2 * q]) == 0 then
      local parked = KEYS[9 * q + 7]
      redis.call('LREM', parked, 0, inbox)
      redis.call('RPUSH', parked, inbox)
    end
  end
  redis.call('SET', flag, lease, 'PX', park_ttl)
end

if leased == 0 then
  for q = 0, nq - 1 do
    local first = redis.call('ZRANGE', KEYS[9 * q + 3], 0, 0, 'WITHSCORES')
    if first[2] then
      local d = math.max(0, tonumber(first[2]) - now)
      if out[2] < 0 or d < out[2] then out[2] = d end
    end
  end
end
return out
