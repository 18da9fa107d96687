-- enqueue.lua: create a batch of jobs in ONE queue, atomically (all admitted or none).
-- KEYS[1] ready       LIST of ready job ids
-- KEYS[2] delayed     ZSET id -> due ms
-- KEYS[3] wake        LIST of wake-up tokens for parked workers
-- KEYS[4] job prefix  "<ns>:{q}:job:"  (job key = prefix .. id; same slot)
-- KEYS[5] idem prefix "<ns>:{q}:idem:" (idempotency key = prefix .. key; same slot)
-- KEYS[6] active      ZSET id -> lease deadline (a handed-off job is leased here)
-- KEYS[7] parked      LIST inbox keys of workers parked on this queue (reserve.lua registers them)
-- KEYS[8] entries     HASH id -> entry of a plain job, until its record is written
-- ARGV[1] max_length  admission limit on ready + delayed; -1 = none
-- ARGV[2] idem_ttl_ms lifetime of an idempotency key (the delay is added per job)
-- ARGV[3] wake_cap    max tokens kept in the wake list
-- ARGV[4] fresh       '1': every id of the batch was drawn by the client for this send, which is
--                     its first, so no job can have it yet and the existence check is skipped;
--                     '0' on any resend (a retry after a lost reply must find the job) and for
--                     ids the caller chose
-- ARGV[5] jobs: ONE msgpack array (raw strings, no bin type: Redis' cmsgpack predates it),
--         4 entries per job: id, envelope, delay_ms, idempotency key ("" = none).
--         One blob instead of 4 arguments per job keeps client-side command packing out of the hot path.
-- Returns: {-1} when the queue is full (nothing written);
--          else {number created, then 2 per job NOT created: its 1-based position in the batch, the id
--          of the job that already exists}. Created jobs are not echoed back (smaller reply).
--
-- Entries instead of records. A plain job (no idempotency key, not handed off) gets no record here:
-- it becomes one field of the entries HASH, whose value is struct '>I6' enqueued ms .. envelope
-- (lib/record.lua); a delayed one is in the delayed ZSET as well. All of a call's entries go in one
-- HSET. reserve.lua writes a ready job's record at its first lease; promotion (reserve.lua,
-- promote.lua) writes a delayed job's record when it is due, cancel.lua when it is cancelled. A queued job costs
-- ~125 bytes of Redis memory instead of ~210 for a record of its own (keyspace entry, key, object
-- and hash headers), enqueue one Redis command per call instead of one per job, and a backlog of
-- a million jobs adds two keys, not a million, to the keyspace. Jobs with an idempotency key (the
-- record names it) and handed-off jobs (leased at once) get a record here.
-- Each HSET also writes ANCHOR, a field longer than hash-max-listpack-value (64), so the hash is a
-- hashtable from its first entry on (Redis never converts back): a small listpack-encoded hash is
-- searched linearly, and with a few hundred jobs waiting every lookup, insert and delete of an id
-- scanned them all (~3,000 instructions per job in a 1,000-job enqueue). The anchor is never a job
-- id (spaces are outside the id alphabet), and nothing iterates over the hash.
-- An id that already has a record or an entry is a no-op (0), so a client retrying after a lost
-- reply cannot create a duplicate (the check is skipped for a fresh batch: see ARGV[4]). Record fields 'att' (1), 'tok' and 'rel' (0) are left to their
-- defaults; the record holds no task name (the envelope has it; records written before carry 'task').
-- Direct handoff: a ready (not delayed) job is leased at once to a parked worker instead of going to
-- the ready list: parked entries are popped until one whose flag (entry .. ':on', value = that
-- worker's lease ms) still exists; GETDEL consumes the flag (one handoff per park). The job is
-- written 'running' with token 1 and 'sta', put in active with deadline now + lease, and
--   cmsgpack {ready key, id, envelope, lease deadline ms, enqueued ms}
-- is RPUSHed to the entry (the worker's inbox, a LIST it BLPOPs; same slot: see reserve.lua), which
-- then expires with that lease (after it the item is stale anyway). No wake token is pushed for it.
-- A worker that dies with it there loses the lease: recover.lua re-delivers.
-- Only queues without a rate limit ever have parked entries (reserve.lua), so rate limits hold.
-- With no parked worker this costs one LPOP per call.
-- include: record
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_length = tonumber(ARGV[1])
local fresh = ARGV[4] == '1'
local jp, ip = KEYS[4], KEYS[5]
local ents = KEYS[8]
local a = cmsgpack.unpack(ARGV[5])
local ANCHOR = '~ entries anchor: keeps this HASH hashtable-encoded; never a job id, never read ~'

-- One job without an idempotency key and, if it is ready, no worker parked (Client.enqueue's common
-- case): the general path's decisions below without its per-batch tables and loops, which cost
-- more than the job itself (a single call ran ~120,000 server instructions, ~80,000 here).
if #a == 4 and a[4] == '' then
  local id, env, delay = a[1], a[2], a[3]
  if delay > 0 or redis.call('LLEN', KEYS[7]) == 0 then
    if not fresh and (redis.call('EXISTS', jp .. id) == 1 or redis.call('HEXISTS', ents, id) == 1) then
      return {0, 1, id}
    end
    if max_length >= 0 and redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= max_length then
      return {-1}
    end
    redis.call('HSET', ents, ANCHOR, '1', id, struct.pack('>I6', now) .. env)
    if delay > 0 then
      redis.call('ZADD', KEYS[2], now + delay, id)
    else
      redis.call('RPUSH', KEYS[1], id)
      if redis.call('LLEN', KEYS[3]) < tonumber(ARGV[3]) then redis.call('RPUSH', KEYS[3], 1) end
    end
    return {1}
  end
end
local idem_ttl = tonumber(ARGV[2])
local wake_cap = tonumber(ARGV[3])

-- pass 1: decide, write nothing
-- One multi-key EXISTS (records) and one HMGET (entries) answer "does any id of the batch exist";
-- only when EXISTS counts some does each id get its own EXISTS. A fresh batch skips all of it, and
-- builds no key per job: its ids are new, and distinct (drawn at random, 96 bits each).
local some = 0
local taken, seen_id = {}, {}
if not fresh then
  local jks, ids = {}, {}
  local nj = 0
  for i = 1, #a, 4 do
    nj = nj + 1
    ids[nj] = a[i]
    jks[nj] = jp .. a[i]
  end
  for s = 1, nj, 1000 do  -- bounded unpack: Lua's stack limit is ~8000 values
    local e = math.min(s + 999, nj)
    some = some + redis.call('EXISTS', unpack(jks, s, e))
    local got = redis.call('HMGET', ents, unpack(ids, s, e))
    for k = 1, #got do
      if got[k] then taken[ids[s + k - 1]] = true end
    end
  end
end
local out, new, nn = {0}, {}, 0
local seen_key = {}
for i = 1, #a, 4 do
  local id, ikey = a[i], a[i + 3]
  local existing = nil
  if not fresh and (seen_id[id] or taken[id] or (some > 0 and redis.call('EXISTS', jp .. id) == 1)) then
    existing = id
  elseif ikey ~= '' then
    local prior = redis.call('GET', ip .. ikey)
    if prior and redis.call('EXISTS', jp .. prior) == 1 then  -- idempotent jobs always have records
      existing = prior
    elseif seen_key[ikey] then
      existing = seen_key[ikey]
    end
  end
  if existing then
    out[#out + 1] = (i + 3) / 4
    out[#out + 1] = existing
  else
    if not fresh then seen_id[id] = true end
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

-- pass 2: write: one HSET for the call's entries, one per job that needs a record
local nows = tostring(now)  -- redis.call formats numbers with sprintf per call: once is enough
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

local stamp = struct.pack('>I6', now)  -- every entry of the call starts with it
local ent_args, ne = {}, 0  -- field, value pairs; each HSET adds the anchor
local due, nd = {}, 0  -- ZADD arguments (score, id) of the delayed jobs
for k = 1, nn do
  local i = new[k]
  local id, env, delay, ikey = a[i], a[i + 1], a[i + 2], a[i + 3]
  local h = nil  -- the record, for a job that gets one here
  if delay <= 0 and parked then
    h = {'state', 'queued', 'env', env, 'enq', nows}
    if not hand_off(id, h, env) then h = nil end
  end
  if not h then  -- not handed off: ready list or delayed set, and an entry unless it is idempotent
    if delay > 0 then
      due[nd + 1], due[nd + 2] = now + delay, id
      nd = nd + 2
    else
      nr = nr + 1
      ready_ids[nr] = id
    end
    if ikey == '' then  -- the common case: an entry, no record
      ent_args[ne + 1], ent_args[ne + 2] = id, stamp .. env
      ne = ne + 2
    elseif delay > 0 then
      -- 'rdy' (when it became ready) is left out while it equals 'enq': readers fall back to 'enq'
      h = {'state', 'scheduled', 'env', env, 'enq', nows, 'rdy', now + delay}
    else
      h = {'state', 'queued', 'env', env, 'enq', nows}
    end
  end
  if h then
    if ikey ~= '' then
      h[#h + 1] = 'idem'
      h[#h + 1] = ikey
      redis.call('SET', ip .. ikey, id, 'PX', idem_ttl + math.max(delay, 0))
    end
    redis.call('HSET', jp .. id, unpack(put_env(h, env)))
  end
end
-- bounded unpack (Lua's stack limit is ~8000 values): 1000 jobs per command; steps of 2000 keep
-- pairs whole
for s = 1, ne, 2000 do redis.call('HSET', ents, ANCHOR, '1', unpack(ent_args, s, math.min(s + 1999, ne))) end
for s = 1, nd, 2000 do redis.call('ZADD', KEYS[2], unpack(due, s, math.min(s + 1999, nd))) end
if nr > 0 then
  for s = 1, nr, 1000 do redis.call('RPUSH', KEYS[1], unpack(ready_ids, s, math.min(s + 999, nr))) end
  local have = redis.call('LLEN', KEYS[3])
  local add = math.min(nr, wake_cap - have)
  for _ = 1, add do redis.call('RPUSH', KEYS[3], 1) end
end
return out
