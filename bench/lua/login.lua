-- POST /sessions with the credentials of a random seeded user.
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
request = function()
  local i = math.random(0, users - 1)
  return wrk.format("POST", "/sessions", headers,
    "email=user" .. i .. "%40bench.test&password=bench-password")
end
