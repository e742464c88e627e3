-- GET / (the framework's ceiling for a tiny JSON answer).
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
