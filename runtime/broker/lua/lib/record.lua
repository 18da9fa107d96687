-- lib/record.lua: helpers for the scripts that turn a job's entry (the entries HASH) into its record.
-- Not a script: scripts.py pastes it where a script says "-- include: record" (after its header).
-- An entry (the value of a job's field in its queue's entries HASH) is
--   struct '>I6' enqueued ms (6 bytes, big-endian) .. envelope
-- put_env(h, env): h holds 'env' at h[4] (as every record writer builds it); an envelope of 65..256
--   bytes goes into 64-byte pieces 'env', 'env2'..'env4' instead, because one hash value over
--   hash-max-listpack-value (64) turns the whole record into a hashtable, ~2.5x the memory of the
--   compact encoding. Readers join the pieces (reserve.lua, replies.parse_job).
-- entry_ms(v, default): the enqueued ms of entry v, as the decimal string a record stores; default
--   for a value too short to be an entry (garbage written past the client must not break a script).
-- entry_env(v): the envelope of entry v ('' for such a value: the worker dead-letters it).
local function put_env(h, env)
  local n = #env
  if n > 64 and n <= 256 then
    h[4] = string.sub(env, 1, 64)
    for c = 2, math.ceil(n / 64) do
      h[#h + 1] = 'env' .. c
      h[#h + 1] = string.sub(env, (c - 1) * 64 + 1, c * 64)
    end
  end
  return h
end

local function entry_ms(v, default)
  if #v < 6 then return default end
  return tostring(struct.unpack('>I6', v))  -- %.14g: exact for 13-digit ms (until the year 2286)
end

local function entry_env(v)
  return string.sub(v, 7)
end
