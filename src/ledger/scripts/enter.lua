-- A fair start's entry, unless the item's entries are closed (its draw began).
-- KEYS: the item's entries (a set), its draw (a hash: units once closed, done)
-- ARGV: user
-- Returns 1 (entered, or an entrant already) or 0 (closed: too late to enter).
if redis.call('HEXISTS', KEYS[2], 'units') == 1 then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
