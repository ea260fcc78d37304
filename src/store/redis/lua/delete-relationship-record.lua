--[[
  Deletes a relationship record and its saved preflight, if the record is still at the revision the
  writer read, together with the deletion's audit entry. Tells every replica on the record event channel,
  also when there was no record: a replica may still hold one in memory.

  KEYS[1]  relationship records hash (field: trust domain)
  KEYS[2]  preflights hash (field: trust domain)
  KEYS[3]  audit stream
  ARGV[1]  trust domain
  ARGV[2]  expected revision, decimal: "0" when the record must not exist; "" to delete unconditionally
           (an unreadable record is then deleted too: that is how one is cleared)
  ARGV[3]  audit stream cap (approximate MAXLEN)
  ARGV[4]  origin: the replica writing
  ARGV[5]  record event channel
  ARGV[6..] the audit entry: stream fields and values in pairs

  Returns  {"ok"}; {"conflict", current record JSON or nil when none}; {"corrupt"} when a revision is
           expected and the stored record is unreadable (nothing is written).
]]
--- @include "records"
--- @include "audit"

local current = redis.call("HGET", KEYS[1], ARGV[1])
if ARGV[2] ~= "" then
  local revision = 0
  if current then
    local stored = read_record(current)
    if not stored then
      return {"corrupt"}
    end
    revision = stored.revision
  end
  if revision ~= tonumber(ARGV[2]) then
    return {"conflict", current}
  end
end

redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
append_audit(KEYS[3], ARGV[3], 6)
publish_record(ARGV[5], ARGV[1], "deleted", false, ARGV[4])
return {"ok"}
