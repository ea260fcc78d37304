--[[
  Forgets the last-known-good's sequence, so a partner that restarted its numbering is not refused as a
  rollback. The bundle JSON stays exactly as served; only the stored comparison point goes.

  KEYS[1]  bundle hash
  KEYS[2]  history list
  ARGV[1]  time, ms
  ARGV[2]  history limit (entries kept)
  ARGV[3]  origin: the replica writing
  ARGV[4]  trust domain, for the change event
  ARGV[5]  change event channel

  Returns  1 when reset (a history entry "sequence_reset" carries the forgotten sequence); 0 when no
           bundle is stored.
]]
--- @include "history"
--- @include "events"

local stored = redis.call("HMGET", KEYS[1], "digest", "sequence")
if not stored[1] then
  return 0
end
redis.call("HDEL", KEYS[1], "sequence")
push_history(KEYS[2], history_entry(ARGV[1], stored[1], stored[2], "sequence_reset", "[]", "[]", "[]"), ARGV[2])
publish_change(ARGV[5], ARGV[4], "bundle", stored[1], false, ARGV[3])
return 1
