--[[
  Records the sequence a local bundle file sets itself, unless it goes backwards or stays the same
  for other content (the spec: the sequence changes whenever the content does).

  KEYS[1]  local bundle state hash (fields: digest, sequence)
  ARGV[1]  content digest: hex SHA-256 of the canonical bundle without its sequence
  ARGV[2]  the file's sequence, decimal, 0..2^64-1

  Returns  {1, digest, sequence} when recorded (or already recorded);
           {0, stored digest, stored sequence} when refused, leaving the hash as it was.
]]
--- @include "decimal"

local stored = redis.call("HMGET", KEYS[1], "digest", "sequence")
if stored[2] then
  local order = decimal_compare(ARGV[2], stored[2])
  if order < 0 or (order == 0 and stored[1] ~= ARGV[1]) then
    return {0, stored[1], stored[2]}
  end
end
redis.call("HSET", KEYS[1], "digest", ARGV[1], "sequence", ARGV[2])
return {1, ARGV[1], ARGV[2]}
