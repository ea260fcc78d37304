--[[
  Included by the scripts that write an audit entry with their change. The entry's stream fields and
  values come last in ARGV, already encoded by the caller; the stream gives the id.
]]

-- Appends ARGV[first..] as one entry; the stream is trimmed to about max_len entries (whole nodes only,
-- which is what keeps trimming cheap).
local function append_audit(key, max_len, first)
  return redis.call("XADD", key, "MAXLEN", "~", max_len, "*", unpack(ARGV, first))
end
