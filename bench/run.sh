#!/usr/bin/env bash
# Load benchmark of the service on 127.0.0.1 (see BENCHMARKS.md).
#
#   bench/run.sh                      full run: every scenario, 10 s each, 10,000 and 1,000,000 users
#   BENCH_ROUNDS=6 bench/run.sh       more alternating rounds per ratio (default 2), for a noisy machine
#   bench/run.sh --smoke              CI's quick run: 2 s each, 10,000 users only, one round, no LTO
#   bench/run.sh --backend postgres   profile, login and storm on SQLite, on PostgreSQL behind one
#                                     instance, and behind two (a throwaway cluster, .ci/postgres.sh)
#
# Builds the release binaries, starts the server on a free port with a fresh seeded database
# (debug profile, throttling off, both through ROCKET_* variables), loads it with wrk, and
# writes bench/results/summary.{json,md} and latency.svg. Every run is bounded in time.
set -euo pipefail
shopt -s inherit_errexit # a failing command inside $(…) stops the run too
cd "$(dirname "$0")/.."

smoke=0
backend=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --backend) backend=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
duration=${BENCH_DURATION:-10}
round_count=${BENCH_ROUNDS:-2}
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
# auth-bench seeds through the data layer's test helpers (the `testing` feature); one build of
# both binaries with it, so the fat-LTO library is built once (the server does not call them).
cargo build --release --quiet --bins --features testing
server_bin=target/release/auth_service
tool=target/release/auth-bench
export BENCH_LUA="$PWD/bench/lua"

server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ "$backend" = postgres ] && pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server DB: the release binary with the debug profile's settings and throttling off, at
# database_synchronous $SYNC (default full), on DB (a file or a URL). Called again before
# stop_server, it starts another instance on the same database; `ports` lists them all and
# `port` is the last one's.
ports=()
start_server() {
  port=$(free_port)
  ports+=("$port")
  local share=()
  if [ -n "${SHARE:-}" ]; then
    share=("ROCKET_WORKERS=$(($(nproc) / SHARE))" "ROCKET_BCRYPT_CONCURRENCY=$(($(nproc) / SHARE))")
  fi
  env ROCKET_PROFILE=debug ROCKET_ADDRESS=127.0.0.1 ROCKET_PORT="$port" \
    ROCKET_DATABASE_URL="$1" ROCKET_THROTTLE_ENABLED=false ROCKET_LOG_LEVEL=critical \
    ROCKET_ADMIN_SOCKET="$work/admin-$port.sock" \
    ROCKET_DATABASE_SYNCHRONOUS="${SYNC:-full}" "${share[@]}" \
    ROCKET_AUDIT_LOG="$work/audit.log" ROCKET_MAIL_OUTBOX_DIR="$work/mail" \
    "$server_bin" >>"$work/server.log" 2>&1 &
  server_pid=$!
  server_pids+=("$server_pid")
  for _ in $(seq 1 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return
    sleep 0.1
  done
  echo "the server did not start" >&2
  cat "$work/server.log" >&2
  exit 1
}

stop_server() {
  for pid in "${server_pids[@]}"; do
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
  ports=()
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
  rss_kib=0
  for pid in "${server_pids[@]}"; do
    rss_kib=$((rss_kib + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status")))
  done
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

# load_split NAME SCRIPT CONNECTIONS USERS: CONNECTIONS spread over every running instance, one
# wrk each at once, recorded as one run (requests added up over the common duration).
load_split() {
  local name=$1 script=$2 conns=$3 users=$4 n=${#ports[@]} i=0 runs=()
  for p in "${ports[@]}"; do
    BENCH_USERS=$users timeout $((duration + 30)) wrk -t1 -c$((conns / n)) -d"${duration}s" \
      --timeout 30s -s "bench/lua/$script.lua" "http://127.0.0.1:$p" >"$work/$name.$i.txt" &
    runs+=($!)
    i=$((i + 1))
  done
  for run in "${runs[@]}"; do wait "$run"; done
  python3 - "$work" "$name" "$n" >"$work/$name.txt" <<'PY'
import json, sys
work, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = []
for i in range(n):
    for line in open(f"{work}/{name}.{i}.txt"):
        if line.startswith("RESULT "):
            parts.append(json.loads(line[7:]))
merged = {k: sum(p[k] for p in parts) for k in ("requests", "non2xx", "socket_errors")}
merged["duration_us"] = max(p["duration_us"] for p in parts)
merged.update({k: max(p[k] for p in parts) for k in ("p50_us", "p90_us", "p99_us")})
print("RESULT " + json.dumps(merged))
PY
  record "$name" "$conns" "$users"
}

# warm_up SCRIPT USERS: SCRIPT's load on every running instance for 2 s, not recorded, so that
# what is measured is the steady state: session caches filled, connections open.
warm_up() {
  for p in "${ports[@]}"; do
    BENCH_USERS=$2 timeout 30 wrk -t1 -c4 -d2s -s "bench/lua/$1.lua" "http://127.0.0.1:$p" >/dev/null
  done
}

if [ "$backend" = postgres ]; then
  . .ci/postgres.sh
  pg_start
  # pg_schema NAME: a fresh schema NAME in the cluster's database; prints its URL.
  pg_schema() {
    su postgres -s /bin/sh -c "psql -q -h $PG_DIR -p $PG_PORT -U postgres -d auth" >/dev/null <<SQL
DROP SCHEMA IF EXISTS $1 CASCADE;
CREATE SCHEMA $1 AUTHORIZATION auth;
SQL
    echo "$TEST_DATABASE_URL&options=-csearch_path%3D$1"
  }
  # backend_run KIND INSTANCES NAME SCRIPT: a fresh database of 10,000 users on KIND (sqlite or
  # postgres), INSTANCES servers on it, SCRIPT's load split over them. Instances sharing this
  # host share its cores: each gets its part of the async workers and hashing threads, as a
  # deployment of several instances on one host would be configured.
  backend_run() {
    local db
    case "$1" in
      sqlite) db=$(seed "$3" 10000) ;;
      postgres) db=$(pg_schema "bench_$3"); "$tool" seed "$db" 10000 >&2 ;;
    esac
    for _ in $(seq 1 "$2"); do SHARE=$2 start_server "$db"; done
    [ "$4" = profile ] && warm_up profile 10000
    load_split "$3" "$4" "$connections" 10000
    stop_server
  }
  # backend_storm KIND INSTANCES NAME: profile reads while as many connections log in, both
  # split over the instances.
  backend_storm() {
    local db
    case "$1" in
      sqlite) db=$(seed "$3" 10000) ;;
      postgres) db=$(pg_schema "bench_$3"); "$tool" seed "$db" 10000 >&2 ;;
    esac
    for _ in $(seq 1 "$2"); do SHARE=$2 start_server "$db"; done
    warm_up profile 10000
    load_split "${3}_alone" profile $((connections / 2)) 10000
    load_split "${3}_login" login $((connections / 2)) 10000 &
    local logins=$!
    load_split "${3}_profile" profile $((connections / 2)) 10000
    wait "$logins"
    stop_server
  }
  echo "== SQLite and PostgreSQL, one and two instances"
  sqlite_profile() { backend_run sqlite 1 sqlite_profile profile; }
  pg_profile() { backend_run postgres 1 pg_profile profile; }
  pg1_profile() { backend_run postgres 1 pg1_profile profile; }
  pg2_profile() { backend_run postgres 2 pg2_profile profile; }
  rounds sqlite_profile pg_profile
  rounds pg1_profile pg2_profile
  # 3,000 signed-in users last seen two minutes ago, read at random: each session's first
  # request is due its once-a-minute touch (a write), the rest are reads.
  sqlite_touch() { start_server "$(seed sqlite_touch 3000 120)"; load sqlite_touch profile "$connections" 3000; stop_server; }
  pg_touch() {
    local db
    db=$(pg_schema bench_pg_touch)
    "$tool" seed "$db" 3000 120 >&2
    start_server "$db"
    load pg_touch profile "$connections" 3000
    stop_server
  }
  rounds sqlite_touch pg_touch
  hash_before=$(hash_time)
  sqlite_login() { backend_run sqlite 1 sqlite_login login; }
  pg1_login() { backend_run postgres 1 pg1_login login; }
  pg2_login() { backend_run postgres 2 pg2_login login; }
  rounds pg1_login pg2_login
  sqlite_login
  hash_after=$(hash_time)
  python3 -c "import json; b, a = $hash_before, $hash_after; print(json.dumps({'bcrypt_cost': 12, 'hash_ms': round((b + a) / 2, 2), 'hash_ms_before_login': b, 'hash_ms_after_login': a, 'cores': $(nproc)}))" \
    >"$out/baseline.json"
  pg1_storm() { backend_storm postgres 1 pg1_storm; }
  pg2_storm() { backend_storm postgres 2 pg2_storm; }
  rounds pg1_storm pg2_storm
  python3 bench/report.py "$out"
  exit 0
fi

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
