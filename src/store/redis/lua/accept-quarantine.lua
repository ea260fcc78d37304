--[[
  Promotes the quarantined bundle to last-known-good, if it is still the one the person looked at.
  The quarantine was held against the bundle served now (any accepted bundle clears it), so its
  recorded diff is still the diff the promotion makes.

  KEYS[1]  bundle hash
  KEYS[2]  status hash
  KEYS[3]  quarantine hash
  KEYS[4]  history list
  ARGV[1]  digest the person accepted
  ARGV[2]  time, ms
  ARGV[3]  history limit (entries kept)
  ARGV[4]  origin: the replica writing
  ARGV[5]  trust domain, for the change event
  ARGV[6]  change event channel

  Returns  1 when promoted; 0 when nothing is quarantined or another digest is.
]]
--- @include "history"
--- @include "events"

local held = redis.call("HGETALL", KEYS[3])
if #held == 0 then
  return 0
end
local quarantine = {}
for i = 1, #held, 2 do
  quarantine[held[i]] = held[i + 1]
end
if quarantine.digest ~= ARGV[1] then
  return 0
end

local at = ARGV[2]
local fields = {"json", quarantine.json, "digest", quarantine.digest, "accepted_at", at}
if quarantine.sequence then
  fields[#fields + 1] = "sequence"
  fields[#fields + 1] = quarantine.sequence
end
if quarantine.refresh_hint then
  fields[#fields + 1] = "refresh_hint"
  fields[#fields + 1] = quarantine.refresh_hint
end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("DEL", KEYS[3])
push_history(
  KEYS[4],
  history_entry(
    at,
    quarantine.digest,
    quarantine.sequence,
    "quarantine_accepted",
    quarantine.reasons or "[]",
    quarantine.added or "[]",
    quarantine.removed or "[]"
  ),
  ARGV[3]
)
redis.call("HSET", KEYS[2], "last_change_at", at, "written_by", ARGV[4])
publish_change(ARGV[6], ARGV[5], "bundle", quarantine.digest, quarantine.sequence, ARGV[4])
return 1
