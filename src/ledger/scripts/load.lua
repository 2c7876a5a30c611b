-- Loads a sale's stock in one step. Refused when the sale has started and a
-- gate of its fleet has not put its winners back into this ledger (no marker
-- in `members`) nor been named missing by the operator: its units might be
-- sold twice. Refused too when the ledger holds winners of these items and
-- `force` is not '1'. Else every total and a new epoch are written together,
-- so no winner can be taken between the look and the write, and every listed
-- gate without a marker is marked excused (named missing, or the sale has not
-- started: nobody can have won yet), so the others resume without it.
-- KEYS: the meta key, only to route the call to the sale's slot in a cluster.
-- ARGV: key prefix, force ('1'/'0'), epoch, started ('1'/'0'),
--   n, the fleet's gates (n of them), m, the gates named missing (m of them),
--   then (sku, total) pairs.
-- Returns {'loaded', winners} | {'has_winners', winners} | {'not_back', gate...}
local prefix, force, epoch, started = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local members = prefix .. 'members'
local i = 5
local fleet = {}
for j = 1, tonumber(ARGV[i]) do
  fleet[#fleet + 1] = ARGV[i + j]
end
i = i + tonumber(ARGV[i]) + 1
local missing = {}
for j = 1, tonumber(ARGV[i]) do
  missing[ARGV[i + j]] = true
end
i = i + tonumber(ARGV[i]) + 1
local not_back = {'not_back'}
for _, g in ipairs(fleet) do
  if started == '1' and not missing[g] and redis.call('HEXISTS', members, g) == 0 then
    not_back[#not_back + 1] = g
  end
end
if #not_back > 1 then
  return not_back
end
local winners = 0
for k = i, #ARGV, 2 do
  winners = winners + redis.call('HLEN', prefix .. 'w:' .. ARGV[k])
end
if winners > 0 and force ~= '1' then
  return {'has_winners', tostring(winners)}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, g in ipairs(fleet) do
  if redis.call('HEXISTS', members, g) == 0 then
    redis.call('HSET', members, g, 'excused:' .. now)
  end
end
for k = i, #ARGV, 2 do
  redis.call('HSET', prefix .. 'meta', 'total:' .. ARGV[k], ARGV[k + 1])
end
redis.call('HSET', prefix .. 'meta', 'epoch', epoch)
return {'loaded', tostring(winners)}
