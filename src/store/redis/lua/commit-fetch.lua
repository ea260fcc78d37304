--[[
  Writes what one fetch led to, and the relationship's status, in one step, under the fencing rule:
  a fence older than the newest one given out (or written with) means a newer lease holder exists, and
  nothing is written. An accepted or quarantined outcome was decided against a last-known-good; if the
  stored bundle is no longer that one, nothing is written either.

  KEYS[1]  bundle hash
  KEYS[2]  status hash
  KEYS[3]  quarantine hash
  KEYS[4]  history list
  KEYS[5]  fence counter
  ARGV[1]  fence of the lease the fetch ran under (decimal)
  ARGV[2]  outcome: "accepted", "quarantined" or "status_only"
  ARGV[3]  digest of the last-known-good the decision was made against ("" when there was none)
  ARGV[4]  bundle JSON (accepted, quarantined)
  ARGV[5]  bundle digest
  ARGV[6]  bundle sequence, decimal ("" when none)
  ARGV[7]  refresh hint in seconds ("" when none)
  ARGV[8]  accepted: the history entry, JSON; quarantined: the reason codes, JSON array
  ARGV[9]  quarantined: authorities added, JSON array ("" when not given)
  ARGV[10] quarantined: authorities removed, JSON array ("" when not given)
  ARGV[11] history limit (entries kept)
  ARGV[12] attempt time, ms
  ARGV[13] "1" when the fetch counts as a success, else "0"
  ARGV[14] result
  ARGV[15] error code ("" when none)
  ARGV[16] next refresh time, ms
  ARGV[17] ETag ("" keeps the stored one)
  ARGV[18] origin: the replica writing
  ARGV[19] trust domain, for the change event
  ARGV[20] change event channel

  Returns  {"ok"}; {"stale_fence"}; or {"digest_conflict", current digest ("" when none)}.
]]
--- @include "history"
--- @include "events"

local kind = ARGV[2]
local at = ARGV[12]

local newest = tonumber(redis.call("GET", KEYS[5]) or "0")
local fence = tonumber(ARGV[1])
if fence < newest then
  return {"stale_fence"}
end
if kind ~= "status_only" then
  local current = redis.call("HGET", KEYS[1], "digest") or ""
  if current ~= ARGV[3] then
    return {"digest_conflict", current}
  end
end
-- A fence newer than any given out (the counter was lost with an emptied Redis) becomes the floor,
-- so the next lease is newer than this write.
if fence > newest then
  redis.call("SET", KEYS[5], ARGV[1])
end

local function content_fields(first_seen_field, first_seen)
  local fields = {"json", ARGV[4], "digest", ARGV[5], first_seen_field, first_seen}
  if ARGV[6] ~= "" then
    fields[#fields + 1] = "sequence"
    fields[#fields + 1] = ARGV[6]
  end
  if ARGV[7] ~= "" then
    fields[#fields + 1] = "refresh_hint"
    fields[#fields + 1] = ARGV[7]
  end
  return fields
end

if kind == "accepted" then
  local stored = redis.call("HMGET", KEYS[1], "digest", "accepted_at")
  local accepted_at = at
  if stored[1] == ARGV[5] and stored[2] then
    accepted_at = stored[2]
  end
  redis.call("DEL", KEYS[1])
  redis.call("HSET", KEYS[1], unpack(content_fields("accepted_at", accepted_at)))
  redis.call("DEL", KEYS[3])
  push_history(KEYS[4], ARGV[8], ARGV[11])
elseif kind == "quarantined" then
  local held = redis.call("HMGET", KEYS[3], "digest", "quarantined_at")
  local quarantined_at = at
  if held[1] == ARGV[5] and held[2] then
    quarantined_at = held[2]
  end
  local fields = content_fields("quarantined_at", quarantined_at)
  fields[#fields + 1] = "reasons"
  fields[#fields + 1] = ARGV[8]
  if ARGV[9] ~= "" then
    fields[#fields + 1] = "added"
    fields[#fields + 1] = ARGV[9]
  end
  if ARGV[10] ~= "" then
    fields[#fields + 1] = "removed"
    fields[#fields + 1] = ARGV[10]
  end
  redis.call("DEL", KEYS[3])
  redis.call("HSET", KEYS[3], unpack(fields))
end

local status = {"last_attempt_at", at, "last_result", ARGV[14], "next_refresh_at", ARGV[16], "written_by", ARGV[18]}
if ARGV[13] == "1" then
  status[#status + 1] = "last_success_at"
  status[#status + 1] = at
  status[#status + 1] = "consecutive_failures"
  status[#status + 1] = "0"
else
  redis.call("HINCRBY", KEYS[2], "consecutive_failures", 1)
end
if ARGV[15] ~= "" then
  status[#status + 1] = "last_error_code"
  status[#status + 1] = ARGV[15]
  status[#status + 1] = "last_error_at"
  status[#status + 1] = at
end
if ARGV[17] ~= "" then
  status[#status + 1] = "etag"
  status[#status + 1] = ARGV[17]
end
if kind == "accepted" then
  status[#status + 1] = "last_change_at"
  status[#status + 1] = at
end
redis.call("HSET", KEYS[2], unpack(status))

if kind == "accepted" then
  publish_change(ARGV[20], ARGV[19], "bundle", ARGV[5], ARGV[6], ARGV[18])
elseif kind == "quarantined" then
  publish_change(ARGV[20], ARGV[19], "quarantine", ARGV[5], ARGV[6], ARGV[18])
end
return {"ok"}
