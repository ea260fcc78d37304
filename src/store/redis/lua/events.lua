--[[
  Included by scripts that change what replicas serve. The event is published from inside the write,
  so it goes out exactly when the write happened, never for a refused one.
]]

-- digest and sequence: "" or false when the event has none.
local function publish_change(channel, trust_domain, kind, digest, sequence, origin)
  local event = {trustDomain = trust_domain, kind = kind, origin = origin}
  if digest and digest ~= "" then
    event.digest = digest
  end
  if sequence and sequence ~= "" then
    event.sequence = sequence
  end
  redis.call("PUBLISH", channel, cjson.encode(event))
end
