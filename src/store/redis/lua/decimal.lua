--[[
  Included by scripts that handle bundle sequences. Sequences are unsigned 64-bit integers kept as
  decimal strings: Lua numbers are doubles and would round past 2^53.
]]
local MAX_SEQUENCE = "18446744073709551615"

local function decimal_compare(a, b)
  if #a ~= #b then
    return (#a < #b) and -1 or 1
  end
  if a == b then
    return 0
  end
  return (a < b) and -1 or 1
end

local function decimal_increment(a)
  local digits = {}
  for i = 1, #a do
    digits[i] = string.byte(a, i) - 48
  end
  local i = #digits
  while i >= 1 do
    if digits[i] < 9 then
      digits[i] = digits[i] + 1
      break
    end
    digits[i] = 0
    i = i - 1
  end
  local out = (i == 0) and "1" or ""
  for j = 1, #digits do
    out = out .. digits[j]
  end
  return out
end
