#!/usr/bin/env bash
# The storm scenario of bench/run.sh (profile reads alone, then with as many connections logging
# in) for two builds side by side, in alternating rounds (ABBA), to tell a regression from the
# machine: a ratio that moves for both builds moved with the machine.
#
#   bench/storm-ab.sh A_DIR B_DIR    each DIR holds a release auth_service and auth-bench (the
#                                    latter built with --features testing where it has one)
#   ROUNDS=6 (default 4)             rounds; prints one line per run: p99 alone and in the storm (us)
set -euo pipefail
declare -A dirs
dirs=([a]="$1" [b]="$2")
cd "$(dirname "$0")/.."
export BENCH_LUA="$PWD/bench/lua"
work=$(mktemp -d)
duration=10
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
p99() { sed -n 's/^RESULT //p' "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["p99_us"], r["requests"])'; }
storm() {
  local side=$1 db="$work/$1.db"
  rm -f "$db" "$db-wal" "$db-shm"
  "${dirs[$side]}/auth-bench" seed "$db" 10000 >/dev/null 2>&1; sync
  local port; port=$(free_port)
  env ROCKET_PROFILE=debug ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT="$port" ROCKET_DATABASE_URL="$db" \
    ROCKET_THROTTLE_ENABLED=false ROCKET_LOG_LEVEL=critical ROCKET_ADMIN_SOCKET="$work/admin.sock" \
    ROCKET_DATABASE_SYNCHRONOUS=full ROCKET_AUDIT_LOG="$work/audit.log" ROCKET_MAIL_OUTBOX_DIR="$work/mail" \
    "${dirs[$side]}/auth_service" >>"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.1; done
  BENCH_USERS=10000 timeout 40 wrk -t2 -c16 -d${duration}s --timeout 30s -s bench/lua/profile.lua "http://127.0.0.1:$port" >"$work/alone.txt"
  BENCH_USERS=10000 timeout 40 wrk -t1 -c16 -d${duration}s --timeout 30s -s bench/lua/login.lua "http://127.0.0.1:$port" >"$work/login.txt" &
  local l=$!
  BENCH_USERS=10000 timeout 40 wrk -t2 -c16 -d${duration}s --timeout 30s -s bench/lua/profile.lua "http://127.0.0.1:$port" >"$work/storm.txt"
  wait $l
  kill $pid; wait $pid 2>/dev/null || true
  echo "$side alone $(p99 $work/alone.txt) storm $(p99 $work/storm.txt) login $(p99 $work/login.txt)"
}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
for r in $(seq 1 "${ROUNDS:-4}"); do
  if [ $((r % 2)) = 1 ]; then storm a; storm b; else storm b; storm a; fi
done
rm -rf "$work"
