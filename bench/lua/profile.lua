-- GET /profile with the session of a random seeded user (bench-session-0 .. USERS-1).
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
local users = tonumber(os.getenv("BENCH_USERS") or "1")
request = function()
  local i = math.random(0, users - 1)
  return wrk.format("GET", "/profile", { ["Cookie"] = "session_id=bench-session-" .. i })
end
