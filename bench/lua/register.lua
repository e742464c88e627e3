-- POST /users with an email no other request of the run uses (thread id + counter).
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = 0
setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/users", headers,
    "email=r" .. os.time() .. "-" .. thread_id .. "-" .. counter
      .. "%40bench.test&password=bench-password")
end
