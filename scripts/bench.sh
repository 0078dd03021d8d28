#!/usr/bin/env bash
# The README's benchmark command: builds `ripple` in release, runs `ripple bench fanout` for the
# issue's two scenarios and `ripple bench e2e` (drawing docs/bench/latency.svg), and prints the
# results as the Markdown table the README holds. Raw JSON lines land in target/bench/.
# Everything runs on 127.0.0.1; each bench starts (and stops) its own DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

log "building ripple (release)"
cargo build --release -p ripple
RIPPLE=target/release/ripple
OUT=target/bench
mkdir -p "$OUT" docs/bench

# The machine may be shared: record how busy it was.
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-before"

log "bench fanout: 1 channel × 50 members, 100 position records"
"$RIPPLE" bench fanout --channels 1 --members 50 --records 100 --message-ratio 0 --json >"$OUT/fanout-50x100.json"

log "bench fanout: the same batch with a warm instance's 1 s member cache (RIPPLE_MEMBER_CACHE_MS=1000)"
"$RIPPLE" bench fanout --channels 1 --members 50 --records 100 --message-ratio 0 --member-cache-ms 1000 --json >"$OUT/fanout-50x100-cached.json"

log "bench fanout: 10 channels × 100 members, 1,000 records (10% chat)"
"$RIPPLE" bench fanout --channels 10 --members 100 --records 1000 --message-ratio 0.1 --json >"$OUT/fanout-100x1000.json"

log "bench e2e: 20 players in 2 channels at 10 Hz for 10 s"
"$RIPPLE" bench e2e --players 20 --channels 2 --hz 10 --seconds 10 --json --histogram docs/bench/latency.svg >"$OUT/e2e.json"

cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-after"

log "results (Markdown)"
python3 - "$OUT" <<'PY'
import json, os, platform, subprocess, sys

out = sys.argv[1]
load = lambda name: json.loads(open(os.path.join(out, name)).read().strip().splitlines()[-1])
fanouts = [load("fanout-50x100.json"), load("fanout-50x100-cached.json"), load("fanout-100x1000.json")]
cached = {id(fanouts[1])}
e2e = load("e2e.json")

def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"

def n(x, d=0):
    return f"{x:,.{d}f}"

loadavg = lambda name: open(os.path.join(out, name)).read().split()
before, after = loadavg("loadavg-before"), loadavg("loadavg-after")
print(f"Measured on {os.cpu_count()} cores ({cpu()}), {platform.system()} {platform.release()}, "
      f"{subprocess.run(['rustc', '--version'], capture_output=True, text=True).stdout.strip()}; "
      f"load average (1/5/15 min) {'/'.join(before)} before the runs, {'/'.join(after)} after.\n")
print("**`ripple bench fanout`**: one stream batch, fanned out three ways against DynamoDB Local and a loopback `@connections` server.\n")
print("| batch | strategy | recipients | updates delivered | posts | billed messages | messages / update | wall (s) | posts/s | deliveries/s | peak RSS (MB) |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for f in fanouts:
    s = f["scenario"]
    batch = f"{s['channels']} × {s['members']} members, {n(s['records'])} records ({s['message_ratio']*100:.0f}% chat)" + (", 1 s member cache" if id(f) in cached else "")
    for name in ("ripple", "naive", "ceiling"):
        r = f[name]
        print(f"| {batch} | {name} | {n(r['recipients'])} | {n(r['updates_delivered'])} | {n(r['posts'])} | "
              f"{n(r['messages_billed'])} | {r['messages_per_update']:.4f} | {r['wall_seconds']:.4f} | "
              f"{n(r['posts_per_sec'])} | {n(r['deliveries_per_sec'])} | {r['peak_rss_mb']:.1f} |")
        batch = ""
print()
print("| batch | Ripple vs naive (deliveries/s) | Ripple vs ceiling (posts/s) | one members Query (ms) | timed rounds (median shown) |")
print("|---|--:|--:|--:|--:|")
for f in fanouts:
    s = f["scenario"]
    print(f"| {s['channels']} × {s['members']} members, {n(s['records'])} records{', 1 s member cache' if id(f) in cached else ''} | "
          f"{f['ripple_vs_naive_deliveries']:.1f}× | {f['ripple_vs_ceiling_posts']*100:.0f}% | "
          f"{s['member_query_ms']:.2f} | {s['rounds']} |")
print()
lat = e2e["latency_ms"]
est = e2e["estimate"]
d = est["dynamodb"]
lam = est["lambda"]
print(f"**`ripple bench e2e`**: {e2e['players']} players in {e2e['channels']} channels at {e2e['hz']:g} Hz "
      f"for {e2e['seconds']:g} s (after {e2e['warmup_seconds']:g} s warm-up), real WebSockets against `ripple dev`.\n")
print("| sent | delivered | final positions missed | p50 | p95 | p99 | messages / update | DynamoDB writes (WRU) | DynamoDB reads (RRU) | ingest / fanout handler | cost per million delivered updates |")
print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
print(f"| {n(e2e['sent'])} | {n(e2e['delivered'])} | {e2e['final_positions_missed']} | {lat['p50']} ms | {lat['p95']} ms | {lat['p99']} ms | "
      f"{e2e['messages_per_update']:.3f} | {n(d['write_requests'])} ({n(d['write_units'])}) | "
      f"{n(d['read_requests'])} ({n(d['read_units'], 1)}) | {lam['ingest_ms']:.2f} / {lam['fanout_ms']:.2f} ms | "
      f"${est['per_million_delivered_usd']:.2f} |")
print()
print("Cost of the whole e2e run, line by line (per million delivered updates):\n")
print("| item | quantity | per million delivered updates |")
print("|---|--:|--:|")
delivered = max(e2e["client"]["delivered"], 1)
for line in est["lines"]:
    print(f"| {line['item']} | {n(line['quantity'], 1)} {line['unit']} | ${line['usd'] / delivered * 1e6:.4f} |")
PY
