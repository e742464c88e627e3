-- GET /profile walking through the seeded sessions in order, so every request reads a session
-- due its once-a-minute touch (seeded last used long ago): each request is a read and a write.
-- The two wrk threads start half-way apart.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local threads = 0
setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
local counter = 0
request = function()
  local i = (thread_id * math.floor(users / 2) + counter) % users
  counter = counter + 1
  return wrk.format("GET", "/profile", { ["Cookie"] = "session_id=bench-session-" .. i })
end
