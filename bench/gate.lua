-- wrk script for bench/gate.sh: every request is an order from a new user.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local counter = 0

function request()
  counter = counter + 1
  return wrk.format("POST", nil, {
    ["X-User-Id"] = "u" .. tid .. "-" .. counter,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept"] = "application/json",
  }, "sku=BENCH-1&quantity=1")
end
