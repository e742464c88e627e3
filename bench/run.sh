#!/usr/bin/env bash
# Load benchmark of the service on 127.0.0.1 (see BENCHMARKS.md).
#
#   bench/run.sh            full run: every scenario, 10 s each, 10,000 and 1,000,000 users
#   bench/run.sh --smoke    CI's quick run: 2 s each, 10,000 users only, one round, no LTO
#
# Builds the release binaries, starts the server on a free port with a fresh seeded database
# (debug profile, throttling off, both through ROCKET_* variables), loads it with wrk, and
# writes bench/results/summary.{json,md} and latency.svg. Every run is bounded in time.
set -euo pipefail
shopt -s inherit_errexit # a failing command inside $(…) stops the run too
cd "$(dirname "$0")/.."

smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
duration=${BENCH_DURATION:-10}
round_count=2
if [ "$smoke" = 1 ]; then
  duration=2
  round_count=1
  export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
connections=${BENCH_CONNECTIONS:-32}
out=bench/results
work=$(mktemp -d)
mkdir -p "$out"
rm -f "$out"/*.json

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet --bins
server_bin=target/release/auth_service
tool=target/release/auth-bench
export BENCH_LUA="$PWD/bench/lua"

server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server DB: the release binary with the debug profile's settings and throttling off, at
# database_synchronous $SYNC (default full).
start_server() {
  port=$(free_port)
  ROCKET_PROFILE=debug ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT=$port \
    ROCKET_DATABASE_URL="$1" ROCKET_THROTTLE_ENABLED=false ROCKET_LOG_LEVEL=critical \
    ROCKET_DATABASE_SYNCHRONOUS="${SYNC:-full}" \
    ROCKET_AUDIT_LOG="$work/audit.log" ROCKET_MAIL_OUTBOX_DIR="$work/mail" \
    "$server_bin" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return
    sleep 0.1
  done
  echo "the server did not start" >&2
  cat "$work/server.log" >&2
  exit 1
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# load NAME SCRIPT CONNECTIONS USERS: one bounded wrk run, recorded.
load() {
  local name=$1 script=$2 conns=$3 users=$4
  BENCH_USERS=$users timeout $((duration + 30)) wrk -t2 -c"$conns" -d"${duration}s" \
    --timeout 30s -s "bench/lua/$script.lua" "http://127.0.0.1:$port" >"$work/$name.txt"
  record "$name" "$conns" "$users"
}

# record NAME CONNECTIONS USERS: the RESULT line of $work/NAME.txt plus the server's peak RSS so
# far goes to $out/NAME.json (NAME.rROUND.json inside `rounds`; report.py adds rounds up).
round=
record() {
  local name=$1 conns=$2 users=$3 rss_kib file
  file="$out/$name${round:+.r$round}.json"
  rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
  sed -n 's/^RESULT //p' "$work/$name.txt" |
    python3 -c "import json, sys; r = json.load(sys.stdin); r.update(name='$name', connections=$conns, users=$users, peak_rss_kib=$rss_kib); print(json.dumps(r))" \
      >"$file"
  echo "  $name${round:+ (round $round)}: $(cat "$file")"
}

# rounds A B: runs scenario function A then B, then again as B then A, and so on for
# $round_count rounds (ABBA). The two sides of a ratio alternate, so the machine's drift over the run
# cancels out instead of favouring whichever ran at a quieter moment.
rounds() {
  local first=$1 second=$2
  for round in $(seq 1 "$round_count"); do
    if [ $((round % 2)) = 1 ]; then "$first"; "$second"; else "$second"; "$first"; fi
  done
  round=
}

# seed NAME USERS [SEEN_AGO]: a new database of USERS users with a session each; prints its
# path. Seeded right before its run, so no session falls due for its once-a-minute touch (a
# write) during the run and every scenario measures reads alone, unless SEEN_AGO (seconds since
# each session's last use) makes them due. `sync` first, so the kernel is not still writing the
# new file out during the run.
seed() {
  local db="$work/$1.db"
  rm -f "$db" "$db-wal" "$db-shm"
  "$tool" seed "$db" "$2" "${3:-0}" >&2
  sync
  echo "$db"
}

# hash_time: the time of one bcrypt hash at cost 12 (ms) while every core hashes, as in the
# login scenario. Taken right before and right after that scenario, so the machine's drift
# over a run does not skew the login / bcrypt-bound ratio.
hash_time() {
  local ms
  ms=$("$tool" hash-time 12 4 "$(nproc)")
  echo "  one bcrypt hash at cost 12, every core hashing: $ms ms" >&2
  echo "$ms"
}

# scenario NAME SCRIPT USERS: a wrk run of SCRIPT on a fresh server and database of USERS users.
scenario() {
  start_server "$(seed "$1" "$3")"
  load "$1" "$2" "$connections" "$3"
  stop_server
}

echo "== scenarios on 10,000 users"
root() { scenario root root 10000; }
profile() { scenario profile profile 10000; }
rounds root profile
# Every write scenario runs at database_synchronous = full (the default; its name) and normal
# (NAME_normal), in alternating rounds, so their ratio is what durability costs.
login_full() { scenario login login 10000; }
login_normal() { SYNC=normal scenario login_normal login 10000; }
hash_before=$(hash_time)
rounds login_full login_normal
hash_after=$(hash_time)
register_full() { scenario register register 10000; }
register_normal() { SYNC=normal scenario register_normal register 10000; }
rounds register_full register_normal
python3 -c "import json; b, a = $hash_before, $hash_after; print(json.dumps({'bcrypt_cost': 12, 'hash_ms': round((b + a) / 2, 2), 'hash_ms_before_login': b, 'hash_ms_after_login': a, 'cores': $(nproc)}))" \
  >"$out/baseline.json"

# storm SUFFIX: profile reads alone, then the same reads while as many connections log in.
storm() {
  start_server "$(seed storm 10000)"
  load "storm_profile_alone$1" profile $((connections / 2)) 10000
  BENCH_USERS=10000 timeout $((duration + 30)) wrk -t1 -c$((connections / 2)) -d"${duration}s" \
    --timeout 30s -s bench/lua/login.lua "http://127.0.0.1:$port" >"$work/storm_login$1.txt" &
  local logins=$!
  load "storm_profile$1" profile $((connections / 2)) 10000
  wait "$logins"
  record "storm_login$1" $((connections / 2)) 10000
  stop_server
}
storm_full() { storm ""; }
storm_normal() { SYNC=normal storm _normal; }
rounds storm_full storm_normal

# Profile reads of sessions all due their once-a-minute touch: every request also writes.
touch_full() { start_server "$(seed touch 200000 120)"; load profile_touch profile_touch "$connections" 200000; stop_server; }
touch_normal() { SYNC=normal start_server "$(seed touch 200000 120)"; load profile_touch_normal profile_touch "$connections" 200000; stop_server; }
rounds touch_full touch_normal

echo "== scale"
scale_small() { scenario scale_10000 profile 10000; }
scale_large() { scenario scale_1000000 profile 1000000; }
if [ "$smoke" = 1 ]; then
  scale_small
else
  rounds scale_small scale_large
fi

python3 bench/report.py "$out"
