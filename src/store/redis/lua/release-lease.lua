--[[
  Gives a lease back, only if this token still holds it (after a lapse it may be someone else's).
  The fence counter is left alone: it must only ever grow.

  KEYS[1]  lease string (the holder's token)
  ARGV[1]  the holder's token

  Returns  1 when released; 0 when the token no longer held it.
]]

if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
