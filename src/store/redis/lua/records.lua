--[[
  Included by the scripts that write relationship records. A record is JSON text assembled from pieces,
  because cjson prints large numbers in exponent form; times stay the decimal text they were written as.
]]

-- The stored record's revision and createdAt (decimal text), or false when the value is not a record
-- these scripts could have written (edited by hand, another program sharing the prefix).
local function read_record(raw)
  local ok, value = pcall(cjson.decode, raw)
  if not ok or type(value) ~= "table" or type(value.document) ~= "string" then
    return false
  end
  local revision, created_at = value.revision, value.createdAt
  if type(revision) ~= "number" or revision < 1 or revision ~= math.floor(revision) then
    return false
  end
  if type(created_at) ~= "number" or created_at < 0 or created_at ~= math.floor(created_at) then
    return false
  end
  return {revision = revision, created_at = string.format("%d", created_at)}
end

-- revision: a Lua number; times: decimal ms text.
local function record_json(document, revision, created_at, updated_at)
  return table.concat({
    '{"document":', cjson.encode(document),
    ',"revision":', string.format("%d", revision),
    ',"createdAt":', created_at,
    ',"updatedAt":', updated_at,
    '}'
  })
end

-- revision: false for "deleted". Published from inside the write, so it goes out exactly when the write
-- happened, never for a refused one.
local function publish_record(channel, trust_domain, kind, revision, origin)
  local event = {trustDomain = trust_domain, kind = kind, origin = origin}
  if revision then
    event.revision = revision
  end
  redis.call("PUBLISH", channel, cjson.encode(event))
end
