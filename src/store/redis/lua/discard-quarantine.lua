--[[
  Drops the quarantined bundle, if it is still the one the person looked at.

  KEYS[1]  quarantine hash
  ARGV[1]  digest the person discarded
  ARGV[2]  origin: the replica writing
  ARGV[3]  trust domain, for the change event
  ARGV[4]  change event channel

  Returns  1 when discarded; 0 when nothing is quarantined or another digest is.
]]
--- @include "events"

if redis.call("HGET", KEYS[1], "digest") ~= ARGV[1] then
  return 0
end
redis.call("DEL", KEYS[1])
publish_change(ARGV[4], ARGV[3], "quarantine", false, false, ARGV[2])
return 1
