-- Closes an item's entries for its draw and returns what the draw needs: the
-- units it draws for (fixed the first time, so a gate that takes over a draw
-- begun by one that died draws the same) and every entrant.
-- KEYS: the item's entries (a set), its draw (a hash), meta, the item's winners
-- ARGV: sku
-- Returns units, then the entrants.
local units = redis.call('HGET', KEYS[2], 'units')
if not units then
  local total = tonumber(redis.call('HGET', KEYS[3], 'total:' .. ARGV[1]) or '0')
  units = tostring(math.max(0, total - redis.call('HLEN', KEYS[4])))
  redis.call('HSET', KEYS[2], 'units', units)
end
local out = {units}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = user
end
return out
