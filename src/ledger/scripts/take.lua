-- One admission attempt, atomically.
-- KEYS: meta, winners of the item, order counter, winners' stream
-- ARGV: epoch, sku, user, gate, time, sale
-- Returns {'won', order, left} | {'repeat', order} | {'sold_out'} | {'unknown'} | {'reset', epoch}
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then
  return {'reset', epoch or ''}
end
local order = redis.call('HGET', KEYS[2], ARGV[3])
if order then
  return {'repeat', order}
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total:' .. ARGV[2]))
if not total then
  return {'unknown'}
end
local taken = redis.call('HLEN', KEYS[2])
if taken >= total then
  return {'sold_out'}
end
local n = redis.call('INCR', KEYS[3])
order = ARGV[4] .. '-' .. string.format('%06d', n)
redis.call('HSET', KEYS[2], ARGV[3], order)
redis.call('XADD', KEYS[4], '*', 'order', order, 'sale', ARGV[6], 'sku', ARGV[2],
  'user', ARGV[3], 'gate', ARGV[4], 'time', ARGV[5])
return {'won', order, tostring(total - taken - 1)}
