--[[
  Forgets a relationship's bundle, quarantine, status and lease. The history stays for the audit trail;
  the fence stays and moves on, so a fetch still running under the old lease is refused when it commits
  and cannot write the relationship back.

  KEYS[1]  bundle hash
  KEYS[2]  status hash
  KEYS[3]  quarantine hash
  KEYS[4]  lease string
  KEYS[5]  fence counter
  ARGV[1]  origin: the replica writing
  ARGV[2]  trust domain, for the change event
  ARGV[3]  change event channel

  Returns  how many of the four keys existed. The "removed" event goes out even when none did: every
           replica must drop what it may still hold in memory.
]]
--- @include "events"

local removed = redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call("INCR", KEYS[5])
publish_change(ARGV[3], ARGV[2], "removed", false, false, ARGV[1])
return removed
