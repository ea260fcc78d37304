--[[
  Gives this trust domain's bundle content its sequence number, the same one on every replica:
  unchanged content keeps its number, new content gets the next one.

  KEYS[1]  local bundle state hash (fields: digest, sequence)
  ARGV[1]  content digest: hex SHA-256 of the canonical bundle without its sequence

  Returns  {digest, sequence} as stored after the call.
  Errors   ERR_SEQUENCE_EXHAUSTED when the next number would pass 2^64-1.
]]
--- @include "decimal"

local stored = redis.call("HMGET", KEYS[1], "digest", "sequence")
if stored[1] == ARGV[1] and stored[2] then
  return {stored[1], stored[2]}
end
local next_sequence = "1"
if stored[2] then
  if stored[2] == MAX_SEQUENCE then
    return redis.error_reply("ERR_SEQUENCE_EXHAUSTED")
  end
  next_sequence = decimal_increment(stored[2])
end
redis.call("HSET", KEYS[1], "digest", ARGV[1], "sequence", next_sequence)
return {ARGV[1], next_sequence}
