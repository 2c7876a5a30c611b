-- Admission attempts that arrived together at one gate, decided in one
-- atomic step (Redis runs a script alone), as the gate's journal writes
-- winners that arrive together in one fsync.
-- KEYS: meta, winners' stream
-- ARGV: key prefix, epoch, gate, then (sku, user, order) per attempt: the
--   gate numbers its orders (`<gate>-<n>`), so that it can journal an attempt
--   while this runs; `seqs` keeps each gate's highest number won.
-- Returns per attempt three values: 'won', order, left | 'repeat', order, ''
--   | 'sold_out', '', '' | 'unknown', '', '' | 'reset', epoch, ''
local prefix, epoch, gate = ARGV[1], ARGV[2], ARGV[3]
local attempts = (#ARGV - 3) / 3
local kind, order, left = {}, {}, {}
local current = redis.call('HGET', KEYS[1], 'epoch')
if current ~= epoch then
  local out = {}
  for j = 1, attempts do
    out[#out + 1] = 'reset'
    out[#out + 1] = current or ''
    out[#out + 1] = ''
  end
  return out
end
local remaining = {} -- sku -> units left (false: no such item in the ledger)
local first_win = {} -- sku .. '\0' .. user -> attempt that won it in this batch
local wins = {}
for j = 1, attempts do
  local sku, user = ARGV[1 + 3 * j], ARGV[2 + 3 * j]
  local again = first_win[sku .. '\0' .. user]
  kind[j], order[j], left[j] = 'sold_out', '', ''
  if again then
    kind[j] = again -- the same customer twice in one batch: a repeat, filled in below
  else
    local known = redis.call('HGET', prefix .. 'w:' .. sku, user)
    if known then
      kind[j], order[j] = 'repeat', known
    else
      if remaining[sku] == nil then
        local total = tonumber(redis.call('HGET', KEYS[1], 'total:' .. sku))
        if total then
          remaining[sku] = total - redis.call('HLEN', prefix .. 'w:' .. sku)
        else
          remaining[sku] = false
        end
      end
      if remaining[sku] == false then
        kind[j] = 'unknown'
      elseif remaining[sku] > 0 then
        remaining[sku] = remaining[sku] - 1
        kind[j], left[j] = 'won', tostring(remaining[sku])
        wins[#wins + 1] = j
        first_win[sku .. '\0' .. user] = j
      end
    end
  end
end
if #wins > 0 then
  local by_sku = {}
  local highest = 0
  -- One stream entry for the batch: n winners as o<i>, s<i>, u<i>; the
  -- entry's id carries the time, the order id names the gate.
  local entry = {'n', tostring(#wins)}
  for i, j in ipairs(wins) do
    local sku, user = ARGV[1 + 3 * j], ARGV[2 + 3 * j]
    order[j] = ARGV[3 + 3 * j]
    local num = tonumber(string.match(order[j], '%-(%d+)$')) or 0
    if num > highest then
      highest = num
    end
    by_sku[sku] = by_sku[sku] or {}
    table.insert(by_sku[sku], user)
    table.insert(by_sku[sku], order[j])
    for _, v in ipairs({'o' .. i, order[j], 's' .. i, sku, 'u' .. i, user}) do
      entry[#entry + 1] = v
    end
  end
  for sku, fields in pairs(by_sku) do
    redis.call('HSET', prefix .. 'w:' .. sku, unpack(fields))
  end
  redis.call('XADD', KEYS[2], '*', unpack(entry))
  if highest > tonumber(redis.call('HGET', prefix .. 'seqs', gate) or '0') then
    redis.call('HSET', prefix .. 'seqs', gate, highest)
  end
end
local out = {}
for j = 1, attempts do
  if type(kind[j]) == 'number' then
    kind[j], order[j] = 'repeat', order[kind[j]]
  end
  out[#out + 1] = kind[j]
  out[#out + 1] = order[j]
  out[#out + 1] = left[j]
end
return out
