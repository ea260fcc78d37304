--[[
  Writes a relationship record, if it is still at the revision the writer read, together with the
  write's audit entry: a refused write leaves no audit entry, and a stored one always has its entry.
  Tells every replica on the record event channel.

  KEYS[1]  relationship records hash (field: trust domain)
  KEYS[2]  audit stream
  ARGV[1]  trust domain
  ARGV[2]  relationship document, JSON text (kept as given)
  ARGV[3]  time of the write, ms
  ARGV[4]  expected revision, decimal: "0" when the record must not exist yet; "" to write unconditionally
  ARGV[5]  audit stream cap (approximate MAXLEN)
  ARGV[6]  origin: the replica writing
  ARGV[7]  record event channel
  ARGV[8..] the audit entry: stream fields and values in pairs

  Returns  {"ok", the stored record JSON}; {"conflict", current record JSON or nil when none};
           {"corrupt"} when the stored record is unreadable: nothing is written, since the revision the
           next one must exceed is unknown (an unconditional delete clears it).
]]
--- @include "records"
--- @include "audit"

local current = redis.call("HGET", KEYS[1], ARGV[1])
local stored = false
if current then
  stored = read_record(current)
  if not stored then
    return {"corrupt"}
  end
end
local revision = stored and stored.revision or 0
if ARGV[4] ~= "" and revision ~= tonumber(ARGV[4]) then
  return {"conflict", current}
end

local record = record_json(ARGV[2], revision + 1, stored and stored.created_at or ARGV[3], ARGV[3])
redis.call("HSET", KEYS[1], ARGV[1], record)
append_audit(KEYS[2], ARGV[5], 8)
publish_record(ARGV[7], ARGV[1], "put", revision + 1, ARGV[6])
return {"ok", record}
