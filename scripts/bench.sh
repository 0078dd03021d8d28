#!/usr/bin/env bash
# The README's benchmark command: builds `ripple` and the three functions in release, runs
# `ripple bench fanout` (the batching scenarios and the big channels), `ripple bench e2e` (the
# 20-player run drawing docs/bench/latency.svg, the 50-player room, and the shard × room-size
# grid), `ripple bench isolation` (calm and storm, two storm sizes) and `ripple bench
# cold-start`, and prints the results as the Markdown tables the README
# holds. Raw JSON lines land in target/bench/. About 12 minutes after the build on 2 cores.
# Everything runs on 127.0.0.1; each bench starts (and stops) its own DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

log "building ripple and the three functions (release)"
cargo build --release -p ripple -p connect -p ingest -p fanout
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

log "bench e2e: the 50-player room at 10 Hz for 20 s (AWS-like defaults: 4 shards)"
"$RIPPLE" bench e2e --players 50 --channels 1 --hz 10 --seconds 20 --json >"$OUT/e2e-room50.json"

for shards in 1 4 16; do
  for room in 10 50 100; do
    log "bench e2e grid: $shards shards, one room of $room players at 10 Hz for 10 s"
    "$RIPPLE" bench e2e --players "$room" --channels 1 --hz 10 --seconds 10 --shards "$shards" --json >"$OUT/e2e-grid-$shards-$room.json"
  done
done

log "bench fanout: big channels (1,000 and 5,000 members)"
"$RIPPLE" bench fanout --channels 1 --members 1000 --records 100 --rounds 1 --json >"$OUT/fanout-big-1000.json"
"$RIPPLE" bench fanout --channels 1 --members 5000 --records 20 --rounds 1 --json >"$OUT/fanout-big-5000.json"

# Isolation fails (exit 1) when a healthy line is lost or copied, or the storm's p99 leaves the
# bound: the other benches still run and print, and this script fails at the end.
isolation_failed=0
log "bench isolation: 8 healthy users, then 10 aborted connections/s, 1 flapper, 1 non-reader"
"$RIPPLE" bench isolation --json >"$OUT/isolation-small.json" || isolation_failed=1
log "bench isolation: the same with 30 aborted connections/s, 3 flappers, 3 non-readers"
"$RIPPLE" bench isolation --aborts 30 --flappers 3 --non-readers 3 --json >"$OUT/isolation-big.json" || isolation_failed=1

log "bench cold-start: each function binary, 3 cold starts"
"$RIPPLE" bench cold-start --runs 3 --json >"$OUT/cold-start.json"

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

print()
print("**The 50-player room** (`ripple bench e2e --players 50 --channels 1 --hz 10 --seconds 20`, 4 shards):\n")
room = load("e2e-room50.json")
def e2e_row(r):
    est = r["estimate"]
    return (f"| {r['shards']} | {r['players']} | {r['client']['delivered'] and n(r['client']['delivered'])} | "
            f"{r['billed_messages_per_update']:.4f} | {r['messages_per_update']:.4f} | "
            f"${est['per_million_delivered_usd']:.4f} | ${r['floor_per_million_delivered_usd']:.4f} | {r['vs_floor']:.2f}× | "
            f"{r['latency_ms']['p50']} / {r['latency_ms']['p99']} ms | {r['final_positions_missed']} |")
head = ("| shards | room | delivered (whole run) | billed messages / update | outbound frames / update | "
        "cost per million delivered | floor | vs floor | p50 / p99 | final positions missed |")
print(head)
print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
print(e2e_row(room))
print()
print("Its bill, line by line (per million delivered updates):\n")
print("| item | quantity | per million delivered updates |")
print("|---|--:|--:|")
for line in room["estimate"]["lines"]:
    print(f"| {line['item']} | {n(line['quantity'], 1)} {line['unit']} | ${line['usd'] / max(room['client']['delivered'], 1) * 1e6:.4f} |")
print()
print("**Shards × room size** (`ripple bench e2e --players ROOM --channels 1 --hz 10 --seconds 10 --shards N`):\n")
print(head)
print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for shards in (1, 4, 16):
    for room_size in (10, 50, 100):
        print(e2e_row(load(f"e2e-grid-{shards}-{room_size}.json")))
print()
print("**Big channels** (`ripple bench fanout --channels 1 --members M --records R --rounds 1`):\n")
print("| channel | records | posts | batch duration (wall) | posts/s | peak RSS |")
print("|---|--:|--:|--:|--:|--:|")
for m in (1000, 5000):
    f = load(f"fanout-big-{m}.json")
    r = f["ripple"]
    print(f"| {n(m)} members | {n(f['scenario']['records'])} | {n(r['posts'])} | {r['wall_seconds']:.2f} s | {n(r['posts_per_sec'])} | {r['peak_rss_mb']:.1f} MB |")
print()
print("**Isolation** (`ripple bench isolation [--aborts A --flappers F --non-readers R]`: 8 healthy users chatting at 1 line/s for 10 s calm, then 10 s beside the sick connections, on 1 shard, every `$disconnect` lost):\n")
print("| sick connections in the storm | healthy lines | missing | copies | calm p50 / p99 | storm p50 / p99 | p99 bound | non-readers closed after | isolated |")
print("|---|--:|--:|--:|--:|--:|--:|--:|---|")
for name in ("isolation-small.json", "isolation-big.json"):
    try:
        i = load(name)
    except (OSError, IndexError, ValueError):
        print(f"| {name}: no result | | | | | | | | no |")
        continue
    s, c, t = i["sick"], i["calm"], i["storm"]
    sick = f"{n(s['aborted'])} aborted, {s['flappers']} flapping ({n(s['flapper_refused'])} of {n(s['flapper_frames'])} frames refused), {s['non_readers']} not reading"
    closed = ", ".join(f"{ms / 1000:.1f} s" for ms in s["non_readers_closed_after_ms"]) or "never"
    lat = lambda p: f"{p['latency_ms']['p50']} / {p['latency_ms']['p99']} ms"
    print(f"| {sick} | {n(c['lines'] + t['lines'])} | {c['missing'] + t['missing']} | {c['copies'] + t['copies']} | {lat(c)} | {lat(t)} | {i['p99_bound_ms']} ms | {closed} | {'yes' if i['isolated'] else 'no: ' + i['verdict']} |")
print()
print("**Cold starts** (`ripple bench cold-start --runs 3`, release binaries, medians):\n")
print("| function | init | first call | second call |")
print("|---|--:|--:|--:|")
for c in load("cold-start.json"):
    print(f"| {c['function']} | {c['init_ms']:.1f} ms | {c['first_invocation_ms']:.1f} ms | {c['second_invocation_ms']:.1f} ms |")
PY

if [ "$isolation_failed" = 1 ]; then
  echo "bench.sh: ripple bench isolation failed (see $OUT/isolation-*.json)" >&2
  exit 1
fi
