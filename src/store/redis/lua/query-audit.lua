--[[
  One bounded step of an audit query: walks the stream newest first from a cursor, reading at most
  `budget` entries, and returns those that pass the filters, at most `wanted`. The caller calls again
  from the returned cursor until it has enough or the stream ends, so no call holds Redis for long and
  no reply is larger than one page of results. Needs Redis >= 6.2 (exclusive range ids).

  KEYS[1]  audit stream
  ARGV[1]  where to start: "+" for the newest entry, or "(" followed by an id to start below it
  ARGV[2]  wanted: matching entries to return at most
  ARGV[3]  budget: entries to read at most
  ARGV[4]  trust domain filter: "" for none, else "=" followed by the trust domain
  ARGV[5]  actor filter, the same way
  ARGV[6]  action filter, the same way
  ARGV[7]  since: "" or the lowest `at`, ms (inclusive)
  ARGV[8]  until: "" or the highest `at`, ms (inclusive)

  Returns  {cursor, entries}: cursor is the id of the last entry read, or "" when the stream ended;
           entries as XREVRANGE gives them ({id, {field, value, ...}}), newest first. An entry whose `at`
           is unreadable is returned whatever the time filters say, so the caller reports it.
]]

local wanted = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local since = ARGV[7] ~= "" and tonumber(ARGV[7]) or false
local until_at = ARGV[8] ~= "" and tonumber(ARGV[8]) or false
local filters = {}
for index, field in ipairs({"trust_domain", "actor", "action"}) do
  local filter = ARGV[3 + index]
  if filter ~= "" then
    filters[#filters + 1] = {field, string.sub(filter, 2)}
  end
end

local function matches(fields)
  local entry = {}
  for i = 1, #fields, 2 do
    entry[fields[i]] = fields[i + 1]
  end
  for _, filter in ipairs(filters) do
    if entry[filter[1]] ~= filter[2] then
      return false
    end
  end
  local at = tonumber(entry.at or "")
  if at == nil then
    return true
  end
  return (not since or at >= since) and (not until_at or at <= until_at)
end

local found = {}
local start = ARGV[1]
local scanned = 0
while true do
  local page = math.min(100, budget - scanned)
  local entries = redis.call("XREVRANGE", KEYS[1], start, "-", "COUNT", page)
  local ended = #entries < page
  for index, entry in ipairs(entries) do
    scanned = scanned + 1
    if matches(entry[2]) then
      found[#found + 1] = entry
      if #found >= wanted then
        if ended and index == #entries then
          return {"", found}
        end
        return {entry[1], found}
      end
    end
  end
  if ended then
    return {"", found}
  end
  if scanned >= budget then
    return {entries[#entries][1], found}
  end
  start = "(" .. entries[#entries][1]
end
