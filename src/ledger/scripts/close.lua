-- Closes an item's entries for its draw and returns what the draw needs: the
-- units it draws for (fixed the first time, so a gate that takes over a draw
-- begun by one that died draws the same) and every entrant. Not before the
-- window's end by the ledger's clock (a gate whose clock is ahead waits).
-- KEYS: the item's entries (a set), its draw (a hash), meta, the item's winners
-- ARGV: sku, the window's end (Unix ms)
-- Returns units, then the entrants; or -1 and the milliseconds left.
local units = redis.call('HGET', KEYS[2], 'units')
if not units then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now < tonumber(ARGV[2]) then
    return {'-1', tostring(tonumber(ARGV[2]) - now)}
  end
  local total = tonumber(redis.call('HGET', KEYS[3], 'total:' .. ARGV[1]) or '0')
  units = tostring(math.max(0, total - redis.call('HLEN', KEYS[4])))
  redis.call('HSET', KEYS[2], 'units', units)
end
local out = {units}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = user
end
return out
