-- A fair start's entry, unless the item's entries are closed (its draw
-- began) or the window is over by the ledger's clock: one clock for every
-- gate of the fleet, however theirs drift.
-- KEYS: the item's entries (a set), its draw (a hash: units once closed, done)
-- ARGV: user, the window's end (Unix ms)
-- Returns 1 (entered, or an entrant already) or 0 (too late to enter).
if redis.call('HEXISTS', KEYS[2], 'units') == 1 then
  return 0
end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
