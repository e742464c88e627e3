#!/usr/bin/env python3
"""Turns bench/run.sh's per-scenario JSON into summary.json, summary.md and latency.svg.

Every figure is also a ratio against a baseline of the same run (root, the bcrypt bound, the
profile read alone, 10,000 users), because absolute numbers drift on a shared machine. Exits 1
when a scenario saw errors (the run is invalid); unmet targets are reported, not fatal.
"""
import json
import math
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
baseline = json.loads((out / "baseline.json").read_text())
rounds = {}
for path in sorted(out.glob("*.json")):
    if path.name not in ("baseline.json", "summary.json"):
        run = json.loads(path.read_text())
        rounds.setdefault(run["name"], []).append(run)

# A scenario run in several rounds (bench/run.sh's `rounds`) counts as one run of their total
# requests over their total time; its percentiles are the rounds' mean, its peak RSS the highest.
runs = {}
for name, parts in rounds.items():
    run = dict(parts[0])
    for key in ("requests", "duration_us", "non2xx", "socket_errors"):
        run[key] = sum(p[key] for p in parts)
    for key in ("p50_us", "p90_us", "p99_us"):
        run[key] = round(sum(p[key] for p in parts) / len(parts))
    run["peak_rss_kib"] = max(p["peak_rss_kib"] for p in parts)
    run["rounds"] = len(parts)
    run["rps"] = run["requests"] / (run["duration_us"] / 1e6)
    run["rps_per_round"] = [round(p["requests"] / (p["duration_us"] / 1e6), 1) for p in parts]
    # Logins during the storm yield the CPU to the reads by design (nice 10), so a short
    # smoke run may end before any of them does; every other scenario must complete some.
    done = all(p["requests"] > 0 for p in parts) or "storm_login" in name
    run["valid"] = run["non2xx"] == 0 and run["socket_errors"] == 0 and done
    runs[name] = run

bcrypt_bound = baseline["cores"] * 1000 / baseline["hash_ms"]
MIB = 1024


def ratio(a, b):
    """runs a / runs b, or None when either is missing or b completed nothing (a short smoke
    run can end before a storm's login does)."""
    if a not in runs or b not in runs or runs[b]["rps"] == 0:
        return None
    return runs[a]["rps"] / runs[b]["rps"]


targets = []


def target(name, value, limit, met, unit=""):
    if value is not None:
        targets.append({"target": name, "value": round(value, 3), "limit": limit, "met": met(value), "unit": unit})


target("profile rps / root rps", ratio("profile", "root"), ">= 0.65", lambda v: v >= 0.65)
if "login" in runs:
    target("login rps / bcrypt bound", runs["login"]["rps"] / bcrypt_bound, ">= 0.95", lambda v: v >= 0.95)
if "storm_profile" in runs and "storm_profile_alone" in runs:
    p99 = runs["storm_profile"]["p99_us"] / max(runs["storm_profile_alone"]["p99_us"], 1)
    target("profile p99 in storm / p99 alone", p99, "<= 3", lambda v: v <= 3)
# What durability costs: each write scenario at database_synchronous = full (the default) over
# the same scenario at normal, run in alternating rounds. The storm's reads are taken relative
# to the reads alone on the same server (which write nothing, so durability cannot touch them):
# between two servers the same read load moves by ±12 %, which would drown the difference.
for name in ("login", "register", "storm_login", "profile_touch"):
    target(f"{name} rps, synchronous full / normal", ratio(name, f"{name}_normal"), ">= 0.95", lambda v: v >= 0.95)
full_storm = ratio("storm_profile", "storm_profile_alone")
normal_storm = ratio("storm_profile_normal", "storm_profile_alone_normal")
if full_storm is not None and normal_storm:
    target("storm reads (/ reads alone), synchronous full / normal", full_storm / normal_storm, ">= 0.95", lambda v: v >= 0.95)
target("scale rps 1,000,000 / 10,000 users", ratio("scale_1000000", "scale_10000"), ">= 0.80", lambda v: v >= 0.8)
# The PostgreSQL run (bench/run.sh --backend postgres).
target("PostgreSQL profile rps / SQLite profile rps", ratio("pg_profile", "sqlite_profile"), ">= 0.90", lambda v: v >= 0.9)
target("PostgreSQL, touches due: rps / SQLite's", ratio("pg_touch", "sqlite_touch"), ">= 0.50", lambda v: v >= 0.5)
for name in ("pg_profile", "pg1_storm_alone", "pg_touch"):
    if name in runs:
        target(f"{name} p99 / p50", runs[name]["p99_us"] / max(runs[name]["p50_us"], 1), "<= 5", lambda v: v <= 5)
if "pg1_storm_profile" in runs and "pg1_storm_alone" in runs:
    p99 = runs["pg1_storm_profile"]["p99_us"] / max(runs["pg1_storm_alone"]["p99_us"], 1)
    target("PostgreSQL profile p99 in storm / p99 alone", p99, "<= 3", lambda v: v <= 3)
for name in ("sqlite_login", "pg1_login", "pg2_login"):
    if name in runs:
        target(f"{name} rps / bcrypt bound", runs[name]["rps"] / bcrypt_bound, ">= 0.95", lambda v: v >= 0.95)
for kind in ("profile", "login", "storm_profile"):
    target(f"two instances / one, {kind} rps", ratio(f"pg2_{kind}", f"pg1_{kind}"), ">= 0.90", lambda v: v >= 0.9)
one = [r["peak_rss_kib"] for n, r in runs.items() if r["users"] == 10000 and not n.startswith("pg2_")]
if one:
    target("peak RSS at 10,000 users, one instance", max(one) / MIB, "< 48", lambda v: v < 48, "MiB")
two = [r["peak_rss_kib"] for n, r in runs.items() if n.startswith("pg2_")]
if two:
    target("peak RSS, two instances together", max(two) / MIB, "< 64", lambda v: v < 64, "MiB")

summary = {"baseline": {**baseline, "bcrypt_bound_rps": bcrypt_bound}, "runs": runs, "targets": targets}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

lines = [
    f"Baselines: one bcrypt hash at cost {baseline['bcrypt_cost']} takes {baseline['hash_ms']} ms "
    f"with every core hashing ({baseline['hash_ms_before_login']} before the login run, "
    f"{baseline['hash_ms_after_login']} after); "
    f"bcrypt bound on {baseline['cores']} cores = {bcrypt_bound:.1f} logins/s.",
    "",
    "| scenario | users | conns | requests/s (per round) | p50 ms | p99 ms | non-2xx | peak RSS MiB | valid |",
    "|---|---|---|---|---|---|---|---|---|",
]
for run in runs.values():
    per_round = " / ".join(f"{r:,.0f}" for r in run["rps_per_round"]) if run["rounds"] > 1 else ""
    lines.append(
        f"| {run['name']} | {run['users']:,} | {run['connections']} | {run['rps']:.1f}"
        f"{f' ({per_round})' if per_round else ''} | "
        f"{run['p50_us'] / 1000:.2f} | {run['p99_us'] / 1000:.2f} | {run['non2xx']} | "
        f"{run['peak_rss_kib'] / MIB:.1f} | {'yes' if run['valid'] else 'NO'} |"
    )
lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
for t in targets:
    lines.append(f"| {t['target']} | {t['value']} {t['unit']} | {t['limit']} | {'met' if t['met'] else 'NOT MET'} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

# latency.svg: p50 and p99 per scenario on a log scale, no plotting library needed.
width, row, left = 760, 34, 190
height = 60 + row * len(runs)
lo, hi = 0.01, max([r["p99_us"] / 1000 for r in runs.values()] + [1])


def x(ms):
    span = math.log10(hi * 1.2) - math.log10(lo)
    return left + (width - left - 20) * (math.log10(max(ms, lo)) - math.log10(lo)) / span


svg = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
    f'<text x="{left}" y="20" font-size="14">Latency per scenario (ms, log scale): p50 dark, p99 light</text>',
]
for tick in [0.01, 0.1, 1, 10, 100, 1000, 10000]:
    if tick <= hi * 1.2:
        svg.append(f'<line x1="{x(tick):.1f}" y1="30" x2="{x(tick):.1f}" y2="{height - 20}" stroke="#ddd"/>')
        svg.append(f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" fill="#555">{tick:g}</text>')
for i, run in enumerate(runs.values()):
    y = 36 + i * row
    p50, p99 = run["p50_us"] / 1000, run["p99_us"] / 1000
    svg.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{run["name"]}</text>')
    svg.append(f'<rect x="{left}" y="{y}" width="{x(p99) - left:.1f}" height="20" fill="#aab4f0"/>')
    svg.append(f'<rect x="{left}" y="{y + 5}" width="{x(p50) - left:.1f}" height="10" fill="#3346d3"/>')
    svg.append(f'<text x="{x(p99) + 4:.1f}" y="{y + 14}" fill="#333">{p50:.2f} / {p99:.2f}</text>')
svg.append("</svg>")
(out / "latency.svg").write_text("\n".join(svg) + "\n")

invalid = [name for name, run in runs.items() if not run["valid"]]
if invalid:
    print(f"INVALID runs (errors or non-2xx answers): {', '.join(invalid)}", file=sys.stderr)
    sys.exit(1)
