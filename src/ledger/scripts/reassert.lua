-- Puts winners back from a gate's journal, idempotently per customer and item.
-- ARGV: key prefix, then (sku, user, order, gate, time, sale) per winner.
-- A winner that was missing is put on the stream again (to be forwarded; its
-- order id is its idempotency key), in an entry of one: n, o1, s1, u1, t1.
-- The order counter stays above every order number seen. Returns how many
-- were missing.
local prefix = ARGV[1]
local added = 0
local highest = 0
for i = 2, #ARGV, 6 do
  local sku, user, order = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', prefix .. 'w:' .. sku, user, order) == 1 then
    added = added + 1
    redis.call('XADD', prefix .. 'orders', '*', 'n', '1', 'o1', order, 's1', sku, 'u1', user,
      't1', ARGV[i + 4])
  end
  local n = tonumber(string.match(order, '%-(%d+)$'))
  if n and n > highest then
    highest = n
  end
end
local seq = tonumber(redis.call('GET', prefix .. 'seq') or '0')
if highest > seq then
  redis.call('SET', prefix .. 'seq', highest)
end
return added
