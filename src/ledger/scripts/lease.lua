-- Takes or renews the lease on an item's draw for one gate.
-- KEYS: the lease
-- ARGV: the gate, the lease's length (ms)
-- Returns 1 (this gate holds it now) or 0 (another gate does).
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
