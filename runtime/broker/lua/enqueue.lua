-- enqueue.lua: create a batch of jobs in ONE queue, atomically (all admitted or none).
-- KEYS[1] ready       LIST of ready job ids
-- KEYS[2] delayed     ZSET id -> due ms
-- KEYS[3] wake        LIST of wake-up tokens for parked workers
-- KEYS[4] job prefix  "<ns>:{q}:job:"  (job key = prefix .. id; same slot)
-- KEYS[5] idem prefix "<ns>:{q}:idem:" (idempotency key = prefix .. key; same slot)
-- KEYS[6] active      ZSET id -> lease deadline (a handed-off job is leased here)
-- KEYS[7] parked      LIST inbox keys of workers parked on this queue (reserve.lua registers them)
-- KEYS[8] pending     HASH id -> struct '>I6' enqueued ms .. envelope: plain jobs before their first lease
-- ARGV[1] max_length  admission limit on ready + delayed; -1 = none
-- ARGV[2] idem_ttl_ms lifetime of an idempotency key (the delay is added per job)
-- ARGV[3] wake_cap    max tokens kept in the wake list
-- ARGV[4] jobs: ONE msgpack array (raw strings, no bin type: Redis' cmsgpack predates it),
--         4 entries per job: id, envelope, delay_ms, idempotency key ("" = none).
--         One blob instead of 4 arguments per job keeps client-side command packing out of the hot path.
-- A plain job (ready now, no idempotency key, not handed off) gets no record here: it becomes one
-- field of the pending HASH, all of a call's in one HSET, and reserve.lua writes its record at its
-- first lease. That is ~125 bytes of Redis memory per queued job instead of ~210 for a record of its
-- own (key, keyspace entry, hash header), and one Redis command per call instead of one per job.
-- Delayed, idempotent and handed-off jobs get a record at once, as before.
-- Every HSET to pending also writes PEND_ANCHOR, a field longer than hash-max-listpack-value (64), so
-- the HASH is a hashtable from its first entry on (Redis never converts back): a small listpack-encoded
-- hash is searched linearly, and with a few hundred jobs waiting every lookup, insert and delete of an
-- id scanned them all (~3,000 instructions per job in a 1,000-job enqueue). The anchor is never a job
-- id (spaces are outside the id alphabet), and nothing iterates over pending.
-- The record holds no task name: the envelope has it, and each field costs memory and a listpack
-- insert per job (readers take it from the envelope; records written before still carry 'task').
-- Returns: {-1} when the queue is full (nothing written);
--          else {number created, then 2 per job NOT created: its 1-based position in the batch, the id
--          of the job that already exists}. Created jobs are not echoed back (smaller reply).
-- An id that already has a record or a pending entry is a no-op (0), so a client retrying after a
-- lost reply cannot create a duplicate. Fields 'att' (1), 'tok' and 'rel' (0) are left to their defaults.
-- Envelopes of 65..256 bytes are split over 'env', 'env2'..'env4' (64 bytes each; see pass 2).
-- Direct handoff: a ready (not delayed) job is leased at once to a parked worker instead of going to
-- the ready list: parked entries are popped until one whose flag (entry .. ':on', value = that
-- worker's lease ms) still exists; GETDEL consumes the flag (one handoff per park). The job is
-- written 'running' with token 1 and 'sta', put in active with deadline now + lease, and
--   cmsgpack {ready key, id, envelope, lease deadline ms, enqueued ms}
-- is RPUSHed to the entry (the worker's inbox, a LIST it BLPOPs; same slot: see reserve.lua), which
-- then expires with that lease (after it the item is stale anyway). No wake token is pushed for it. A worker that dies with it there loses the lease: recover.lua re-delivers.
-- Only queues without a rate limit ever have parked entries (reserve.lua), so rate limits hold.
-- With no parked worker this costs one LPOP per call.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_length = tonumber(ARGV[1])
local idem_ttl = tonumber(ARGV[2])
local wake_cap = tonumber(ARGV[3])
local jp, ip = KEYS[4], KEYS[5]
local a = cmsgpack.unpack(ARGV[4])

-- pass 1: decide, write nothing
-- One multi-key EXISTS answers the common case (no id of the batch exists yet) for the whole batch;
-- only when it counts some does each id get its own EXISTS.
-- Pending entries: one HMGET for the batch (an id found there counts as existing, like a record).
local pend = KEYS[8]
local jks, ids = {}, {}
local nj = 0
for i = 1, #a, 4 do
  nj = nj + 1
  ids[nj] = a[i]
  jks[nj] = jp .. a[i]
end
local some = 0
local pending = {}
for s = 1, nj, 1000 do  -- bounded unpack: Lua's stack limit is ~8000 values
  local e = math.min(s + 999, nj)
  some = some + redis.call('EXISTS', unpack(jks, s, e))
  local got = redis.call('HMGET', pend, unpack(ids, s, e))
  for k = 1, #got do
    if got[k] then pending[ids[s + k - 1]] = true end
  end
end
local out, new, nn = {0}, {}, 0
local seen_id, seen_key = {}, {}
for i = 1, #a, 4 do
  local id, ikey = a[i], a[i + 3]
  local existing = nil
  if seen_id[id] or pending[id] or (some > 0 and redis.call('EXISTS', jks[(i + 3) / 4]) == 1) then
    existing = id
  elseif ikey ~= '' then
    local prior = redis.call('GET', ip .. ikey)
    if prior and (redis.call('EXISTS', jp .. prior) == 1 or redis.call('HEXISTS', pend, prior) == 1) then
      existing = prior
    elseif seen_key[ikey] then
      existing = seen_key[ikey]
    end
  end
  if existing then
    out[#out + 1] = (i + 3) / 4
    out[#out + 1] = existing
  else
    seen_id[id] = true
    if ikey ~= '' then seen_key[ikey] = id end
    nn = nn + 1
    new[nn] = i
  end
end

out[1] = nn
if max_length >= 0 and nn > 0 then
  local depth = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
  if depth + nn > max_length then
    return {-1}
  end
end

-- pass 2: write: one HSET for the call's plain jobs (pending), one per job that needs a record
-- An envelope of 65..256 bytes is stored in 64-byte pieces ('env', 'env2'..'env4'; readers join
-- them): one value over hash-max-ziplist-value (64) turns the whole record into a hashtable, which
-- costs ~2.5x the memory of the compact encoding for a small job. (reserve.lua and cancel.lua split
-- the same way when they write the record of a pending job.)
local nows = tostring(now)  -- redis.call formats numbers with sprintf per call: once is enough
local CHUNK, MAX_CHUNKS = 64, 4
local more = {'env2', 'env3', 'env4'}
local ready_ids, nr = {}, 0
local parked = true  -- false once the parked list is known empty

-- lease job id (record fields h) to a worker really parked now: false when none is left
local function hand_off(id, h, env)
  while true do  -- one entry per worker (reserve.lua LREMs before it RPUSHes): bounded
    local inbox = redis.call('LPOP', KEYS[7])
    if not inbox then
      parked = false
      return false
    end
    local lease = redis.call('GETDEL', inbox .. ':on')
    if lease then
      local deadline = now + tonumber(lease)
      h[2] = 'running'
      h[7], h[8], h[9], h[10] = 'sta', nows, 'tok', '1'
      redis.call('ZADD', KEYS[6], deadline, id)
      redis.call('RPUSH', inbox, cmsgpack.pack({KEYS[1], id, env, deadline, now}))
      redis.call('PEXPIRE', inbox, lease)  -- a dead worker's inbox goes when its lease would
      return true
    end
  end
end

local function write_record(jk, h, env)
  local n = #env
  if n > CHUNK and n <= CHUNK * MAX_CHUNKS then
    h[4] = string.sub(env, 1, CHUNK)
    for c = 2, math.ceil(n / CHUNK) do
      h[#h + 1] = more[c - 1]
      h[#h + 1] = string.sub(env, (c - 1) * CHUNK + 1, c * CHUNK)
    end
  end
  redis.call('HSET', jk, unpack(h))
end

local stamp = struct.pack('>I6', now)  -- the pending value's prefix: enqueued ms, 6 bytes
local PEND_ANCHOR = '~ pending anchor: keeps this HASH hashtable-encoded; never a job id, never read ~'
local pend_args, np = {PEND_ANCHOR, '1'}, 2
for _, i in ipairs(new) do
  local id, env, delay, ikey = a[i], a[i + 1], a[i + 2], a[i + 3]
  local h = nil
  if delay > 0 then
    -- 'rdy' (when it became ready) is left out while it equals 'enq': readers fall back to 'enq'
    h = {'state', 'scheduled', 'env', env, 'enq', nows, 'rdy', now + delay}
    redis.call('ZADD', KEYS[2], now + delay, id)
  else
    local handed = false
    if parked then
      h = {'state', 'queued', 'env', env, 'enq', nows}
      handed = hand_off(id, h, env)
    end
    if not handed then
      nr = nr + 1
      ready_ids[nr] = id
      if ikey == '' then  -- the common case: no record, a pending entry
        pend_args[np + 1] = id
        pend_args[np + 2] = stamp .. env
        np = np + 2
        h = nil
      else
        h = {'state', 'queued', 'env', env, 'enq', nows}
      end
    end
  end
  if h then
    if ikey ~= '' then
      h[#h + 1] = 'idem'
      h[#h + 1] = ikey
      redis.call('SET', ip .. ikey, id, 'PX', idem_ttl + math.max(delay, 0))
    end
    write_record(jks[(i + 3) / 4], h, env)
  end
end
if np > 2 then
  for s = 1, np, 2000 do  -- 1000 jobs per HSET: the same stack bound as below (the anchor goes first)
    redis.call('HSET', pend, unpack(pend_args, s, math.min(s + 1999, np)))
  end
end
if nr > 0 then
  -- bounded unpack: Lua's stack limit is ~8000 values
  for s = 1, nr, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(ready_ids, s, math.min(s + 999, nr)))
  end
  local have = redis.call('LLEN', KEYS[3])
  local add = math.min(nr, wake_cap - have)
  for _ = 1, add do redis.call('RPUSH', KEYS[3], 1) end
end
return out
