--[[
  Takes a relationship's polling lease when nobody holds it, and gives it the next fencing token.

  KEYS[1]  lease string (the holder's token)
  KEYS[2]  fence counter
  ARGV[1]  token, random per acquisition
  ARGV[2]  TTL in ms

  Returns  the new fence (integer) when taken; nil when another holder has the lease.
]]

if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return redis.call("INCR", KEYS[2])
end
return false
