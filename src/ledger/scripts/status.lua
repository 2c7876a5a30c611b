-- The ledger at a glance, in one round trip; with a gate id, also its heartbeat.
-- KEYS: the meta key, only to route the call to the sale's slot in a cluster.
-- ARGV: key prefix, gate id (or ''), then the skus.
-- Returns {epoch or '', now_ms, n, (member, marker) * n, taken_1, total_1, ...,
--   gate_1, beat_1, ...}: a member's marker is the ms it put its winners back,
--   or 'excused:<ms>' when the load went without it.
local prefix = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] ~= '' then
  redis.call('HSET', prefix .. 'gates', ARGV[2], now)
end
local out = {redis.call('HGET', prefix .. 'meta', 'epoch') or '', tostring(now)}
local members = redis.call('HGETALL', prefix .. 'members')
out[#out + 1] = tostring(#members / 2)
for i = 1, #members do
  out[#out + 1] = members[i]
end
for i = 3, #ARGV do
  out[#out + 1] = tostring(redis.call('HLEN', prefix .. 'w:' .. ARGV[i]))
  out[#out + 1] = redis.call('HGET', prefix .. 'meta', 'total:' .. ARGV[i]) or '0'
end
local gates = redis.call('HGETALL', prefix .. 'gates')
for i = 1, #gates do
  out[#out + 1] = gates[i]
end
return out
