-- Loads a sale's stock in one step: refused when the ledger holds winners of
-- these items and `force` is not '1'; else every total and a new epoch are
-- written together, so no winner can be taken between the look and the write.
-- ARGV: key prefix, force ('1' or '0'), epoch, then (sku, total) pairs.
-- Returns the winners found, negated when it refused.
local prefix, force, epoch = ARGV[1], ARGV[2], ARGV[3]
local winners = 0
for i = 4, #ARGV, 2 do
  winners = winners + redis.call('HLEN', prefix .. 'w:' .. ARGV[i])
end
if winners > 0 and force ~= '1' then
  return -winners
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', prefix .. 'meta', 'total:' .. ARGV[i], ARGV[i + 1])
end
redis.call('HSET', prefix .. 'meta', 'epoch', epoch)
return winners
