--[[
  Included by scripts that add to a relationship's history. Entries are JSON assembled from pieces the
  caller already encoded (reason and authority lists are stored as JSON text), because cjson would turn
  an empty list into "{}" and print large numbers in exponent form.
]]

-- at: decimal ms; sequence: "" or false when none; lists: JSON array text.
local function history_entry(at, digest, sequence, event, reasons, added, removed)
  local parts = {'{"at":', at, ',"digest":', cjson.encode(digest)}
  if sequence and sequence ~= "" then
    parts[#parts + 1] = ',"sequence":'
    parts[#parts + 1] = cjson.encode(sequence)
  end
  parts[#parts + 1] = ',"event":'
  parts[#parts + 1] = cjson.encode(event)
  parts[#parts + 1] = ',"reasons":'
  parts[#parts + 1] = reasons
  parts[#parts + 1] = ',"added":'
  parts[#parts + 1] = added
  parts[#parts + 1] = ',"removed":'
  parts[#parts + 1] = removed
  parts[#parts + 1] = '}'
  return table.concat(parts)
end

local function push_history(key, entry, limit)
  redis.call("LPUSH", key, entry)
  redis.call("LTRIM", key, 0, tonumber(limit) - 1)
end
