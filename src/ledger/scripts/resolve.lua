-- A gate that stopped between journaling attempts and the ledger's answer
-- asks, at its next start, which of them won; and the highest order number
-- the ledger has of it (its journal may be younger than the ledger).
-- KEYS: the meta key (routes the call to the sale's slot in a cluster)
-- ARGV: key prefix, gate, then (sku, user, order) per attempt
-- Returns: the epoch ('' when none), the gate's highest order number, then
--   per attempt '1' (the ledger has this order for this customer) or '0'.
local prefix, gate = ARGV[1], ARGV[2]
local out = {
  redis.call('HGET', KEYS[1], 'epoch') or '',
  redis.call('HGET', prefix .. 'seqs', gate) or '0',
}
for i = 3, #ARGV, 3 do
  local known = redis.call('HGET', prefix .. 'w:' .. ARGV[i], ARGV[i + 1])
  out[#out + 1] = (known == ARGV[i + 2]) and '1' or '0'
end
return out
