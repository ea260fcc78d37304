--[[
  Extends a lease, only for the holder that still has it: a holder whose lease lapsed and was taken by
  another must not extend the new holder's lease.

  KEYS[1]  lease string (the holder's token)
  ARGV[1]  the holder's token
  ARGV[2]  new TTL in ms, from now

  Returns  1 when extended; 0 when the lease lapsed or belongs to another token.
]]

if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
