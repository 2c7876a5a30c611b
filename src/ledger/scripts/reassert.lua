-- Puts a gate's winners and fair-start entries back from its journals,
-- idempotently, and reports what does not fit.
-- KEYS: the meta key, only to route the call to the sale's slot in a cluster.
-- ARGV: key prefix, gate ('' for no marker), n, then (sku, user, order, gate,
--   time, sale) per winner (n of them), then (sku, user) per entry.
-- A winner that was missing is put on the stream again (to be forwarded; its
-- order id is its idempotency key), in an entry of one: n, o1, s1, u1, t1.
-- An entry goes back only while its item's entries are open (no draw began:
-- a gate taking a draw over must draw from the same entrants). The order
-- gate's highest order number (`seqs`) stays above every one put back. With a gate, its marker in
-- `members` says it has put everything back since the ledger was last lost.
-- Returns {missing winners put back, alarm...}: an alarm is
-- 'conflict<TAB>sku<TAB>user<TAB>ledger order<TAB>journal order' (another
-- order for the same customer and item) or 'oversold<TAB>sku<TAB>winners<TAB>stock'.
local prefix, marker, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local added = 0
local highest = {} -- gate -> highest order number put back
local out = {}
local touched = {}
for i = 4, 3 + 6 * n, 6 do
  local sku, user, order = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = prefix .. 'w:' .. sku
  touched[sku] = true
  if redis.call('HSETNX', key, user, order) == 1 then
    added = added + 1
    redis.call('XADD', prefix .. 'orders', '*', 'n', '1', 'o1', order, 's1', sku, 'u1', user,
      't1', ARGV[i + 4])
  else
    local known = redis.call('HGET', key, user)
    if known ~= order then
      out[#out + 1] = table.concat({'conflict', sku, user, known, order}, '\t')
    end
  end
  local g, num = string.match(order, '^(.*)%-(%d+)$')
  num = tonumber(num)
  if num and num > (highest[g] or 0) then
    highest[g] = num
  end
end
for i = 4 + 6 * n, #ARGV, 2 do
  local sku, user = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', prefix .. 'draw:' .. sku, 'units') == 0 then
    redis.call('SADD', prefix .. 'entries:' .. sku, user)
  end
end
for sku in pairs(touched) do
  local total = tonumber(redis.call('HGET', prefix .. 'meta', 'total:' .. sku))
  local winners = redis.call('HLEN', prefix .. 'w:' .. sku)
  if total and winners > total then
    out[#out + 1] = table.concat({'oversold', sku, tostring(winners), tostring(total)}, '\t')
  end
end
for g, num in pairs(highest) do
  if num > tonumber(redis.call('HGET', prefix .. 'seqs', g) or '0') then
    redis.call('HSET', prefix .. 'seqs', g, num)
  end
end
if marker ~= '' then
  local t = redis.call('TIME')
  redis.call('HSET', prefix .. 'members', marker, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
table.insert(out, 1, tostring(added))
return out
