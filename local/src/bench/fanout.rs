//! `ripple bench fanout`: one synthetic stream batch ([`super::batch`]) fanned out three ways
//! against one DynamoDB table and loopback `@connections` server, each strategy in a child process
//! (`ripple bench fanout-run`) so its peak RSS (`VmHWM`, Lambda's "Max Memory Used") is its own:
//! **ripple** (`fanout::process`, what the Lambda runs, unpaced); **naive** (the public samples:
//! per record, read the members, post the one event to each but the sender, all at once); a
//! **ceiling** (a plain concurrent HTTP client posting as many one-event frames as Ripple did).
//!
//! A child first runs one untimed round, as a warm Lambda instance would have (SDK clients built,
//! keep-alive connections open), then `--rounds` timed ones. Every round posts the same (Ripple's
//! batch freshly decoded each time), so the server's tally divided by the rounds is one round's.

use std::time::Instant;

use anyhow::{Context, Result};
use aws_lambda_events::dynamodb::Event;
use clap::Args;
use fanout::changes::{Change, change_of};
use futures::StreamExt;
use ripple_common::config::{DEFAULT_MAX_IN_FLIGHT, Settings, dynamodb_client, local_sdk_config};
use ripple_common::connections::{Connections, PostOutcome, PostOutcome::Delivered};
use ripple_common::protocol::{Event as WireEvent, ServerFrame};
use ripple_common::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::batch::{self, Layout};
use super::{BenchTable, median, note, ratio, round};
use crate::connections_server::{LoopbackConnections, Tally};

const STRATEGIES: [&str; 3] = ["ripple", "naive", "ceiling"];

/// `ripple bench fanout`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FanoutArgs {
    /// Channels in the batch.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Member connections per channel.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Stream records in the batch, spread evenly over the channels.
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Share of records that are chat messages (INSERT); the rest are positions (MODIFY).
    #[arg(long, default_value_t = 0.1)]
    pub message_ratio: f64,
    /// Distinct senders per channel (default: every member).
    #[arg(long)]
    pub users: Option<usize>,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Posts in flight at once, for Ripple and for the ceiling.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Ripple's member cache in ms (`RIPPLE_MEMBER_CACHE_MS`; 0: off, as deployed by default).
    #[arg(long, default_value_t = 0)]
    pub member_cache_ms: u64,
    /// Size of the ceiling's frames in bytes (default: one position update), e.g. Ripple's mean.
    #[arg(long, default_value_t = 0)]
    pub ceiling_frame_bytes: usize,
    /// Timed rounds per strategy after its warm-up; the median wall time is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    pub json: bool,
}

/// `ripple bench fanout-run` (hidden): one strategy in its own process, as `bench fanout` runs it.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// `[FanoutArgs, strategy, table, its @connections URL, the ceiling's posts]` as JSON.
    #[arg(long)]
    spec: String,
}

/// One strategy's results (per round): what its child measured, what the server counted.
fn line(child: &Value, tally: &Tally, rounds: u64) -> Value {
    let num = |key: &str| child[key].as_f64().unwrap_or(0.0);
    let (posts, billed) = (tally.posts / rounds, tally.messages_billed / rounds);
    let (delivered, wall) = (num("updates_delivered"), num("wall_seconds"));
    json!({
        "records": child["records"], "recipients": tally.recipients.len(),
        "updates_delivered": child["updates_delivered"], "posts": posts, "messages_billed": billed,
        "messages_per_update": round(ratio(billed as f64, delivered), 5),
        "wall_seconds": round(wall, 6), "posts_per_sec": round(ratio(posts as f64, wall), 1),
        "deliveries_per_sec": round(ratio(delivered, wall), 1),
        "peak_rss_mb": round(num("peak_rss_mb"), 1),
    })
}

/// Everything printed: the scenario, each strategy's line, and Ripple's rates over theirs.
fn results(scenario: Value, lines: &Map<String, Value>) -> Value {
    let rate = |s: &str, key: &str| lines.get(s).and_then(|l| l[key].as_f64()).unwrap_or(0.0);
    let versus = |s, key, digits| round(ratio(rate("ripple", key), rate(s, key)), digits);
    let naive = versus("naive", "deliveries_per_sec", 2);
    let ceiling = versus("ceiling", "posts_per_sec", 3);
    json!({
        "scenario": scenario, "ripple": lines.get("ripple"), "naive": lines.get("naive"),
        "ceiling": lines.get("ceiling"), "ripple_vs_naive_deliveries": naive,
        "ripple_vs_ceiling_posts": ceiling,
    })
}

/// Runs the three strategies and prints the results.
pub async fn run(mut args: FanoutArgs) -> Result<()> {
    let users = *args.users.get_or_insert(args.members);
    let a = &args;
    let ok = a.channels >= 1 && a.members >= 2 && (1..=10_000).contains(&a.records);
    let ok = ok && (0.0..=1.0).contains(&a.message_ratio) && (1..=a.members).contains(&users);
    anyhow::ensure!(
        ok && a.max_in_flight >= 1 && (1..=100).contains(&a.rounds),
        "the batch needs --channels ≥ 1, --members ≥ 2 (a sender and a recipient), --records 1-10000 (Lambda's largest stream batch), --message-ratio 0-1, --users 1 to --members, --max-in-flight ≥ 1 and --rounds 1-100"
    );
    let db = BenchTable::create(args.dynamodb_endpoint.as_deref(), "ripple-bench").await?;
    args.dynamodb_endpoint = Some(db.endpoint.clone());
    let results = measure(&args, &db.store).await;
    db.remove().await;
    super::print(args.json, &results?);
    Ok(())
}

async fn measure(args: &FanoutArgs, store: &Store) -> Result<Value> {
    let layout = Layout::synthetic(args.channels, args.members);
    note(&format!("bench fanout: seeding {}", store.table()));
    batch::seed(store, &layout).await?;
    // Member reads before measuring, so DynamoDB Local's Query path is warm (its JIT).
    let mut seconds = Vec::new();
    for channel in layout.channels.iter().flat_map(|c| [c; 5]) {
        let started = Instant::now();
        store.channel_members(&channel.name).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    let query_ms = median(&seconds) * 1000.0;
    note(&format!("bench fanout: a members Query: {query_ms:.2} ms"));
    let (sink, mut lines) = (LoopbackConnections::counting().await?, Map::new());
    for name in STRATEGIES {
        let posts = lines.get("ripple").map(|r: &Value| &r["posts"]); // the ceiling's: as many
        let spec = json!([args, name, store.table(), sink.url_for(name), posts]).to_string();
        let measured = spawn(&spec, name).await?;
        let line = line(&measured, &sink.tally(name), args.rounds as u64 + 1);
        note(&format!("bench fanout: {name}: {line}"));
        lines.insert(name.to_owned(), line);
    }
    let scenario = json!({
        "channels": args.channels, "members": args.members, "records": args.records,
        "message_ratio": args.message_ratio, "users": args.users,
        "max_in_flight": args.max_in_flight, "rounds": args.rounds,
        "member_query_ms": round(query_ms, 2),
    });
    Ok(results(scenario, &lines))
}

/// Runs one strategy's child to completion: what it measured.
async fn spawn(spec: &str, name: &str) -> Result<Value> {
    note(&format!("bench fanout: running {name} …"));
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.args(["bench", "fanout-run", "--spec", spec]);
    command.kill_on_drop(true); // stderr inherited: the child's notes show as they come
    let child = command.stdout(std::process::Stdio::piped()).spawn()?;
    let timeout = std::time::Duration::from_secs(900);
    let out = tokio::time::timeout(timeout, child.wait_with_output()).await;
    let out = out.with_context(|| format!("{name} took longer than {timeout:?}"))??;
    anyhow::ensure!(out.status.success(), "{name} failed: {}", out.status);
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `ripple bench fanout-run`: one strategy, a warm-up round then the timed ones; prints what it
/// measured as one JSON line on stdout.
pub async fn run_child(spec: RunArgs) -> Result<()> {
    let (args, name, table, url, posts): (FanoutArgs, String, String, String, Option<u64>) =
        serde_json::from_str(&spec.spec).context("reading --spec")?;
    let layout = Layout::synthetic(args.channels, args.members);
    let sdk = local_sdk_config();
    let conns = Connections::new(sdk.clone(), Some(url.clone()));
    let client = dynamodb_client(&sdk, args.dynamodb_endpoint.as_deref());
    let store = Store::new(client, table.clone());
    let (records, ratio, ts) = (args.records, args.message_ratio, ripple_common::now_ms());
    let senders = args.users.unwrap_or(args.members);
    let build = || batch::build(&layout, records, ratio, senders, ts, &table);
    let mut settings = Settings::for_table(&table);
    // Pacing far above what one machine posts, so it never caps the measurement.
    (settings.posts_per_second, settings.max_in_flight) = (1_000_000, args.max_in_flight);
    settings.member_cache_ms = args.member_cache_ms.min(1_000);
    let state = fanout::FanoutState::new(store.clone(), conns.clone(), &settings);
    // Only the naive fan-out keeps one decoded batch; Ripple decodes a fresh one per round, as a
    // new invocation would, and the ceiling needs none (each holds only what it uses: its RSS).
    let event = if name == "naive" {
        Some(build()?)
    } else {
        None
    };
    let members: Vec<_> = layout.members().map(|(_, m)| m).collect();
    let (mut walls, mut delivered, mut failed) = (Vec::new(), 0, 0);
    for round in 0..=args.rounds {
        let started = Instant::now();
        let (d, f) = match (name.as_str(), &event) {
            ("ripple", _) => {
                let (response, report) = fanout::process(&state, build()?).await;
                let refused = !response.batch_item_failures.is_empty();
                anyhow::ensure!(!refused, "fanout reported batchItemFailures: {report:?}");
                let gone = report.delivery.gone.len() as u64;
                (report.updates_delivered, report.delivery.failed + gone)
            }
            ("naive", Some(event)) => naive(&store, &conns, event).await?,
            _ => {
                let frame = ceiling_frame(args.ceiling_frame_bytes)?;
                let to = members.iter().cycle().take(posts.unwrap_or(0) as usize);
                let posts = to.map(|m| conns.post(&url, &m.connection_id, frame.clone()));
                let posts = futures::stream::iter(posts).buffer_unordered(args.max_in_flight);
                counted(&posts.collect::<Vec<_>>().await)
            }
        };
        if round > 0 {
            walls.push(started.elapsed().as_secs_f64());
            (delivered, failed) = (d, failed + f);
        }
    }
    let walls_text: String = walls.iter().map(|w| format!(" {w:.4}")).collect();
    note(&format!(
        "bench fanout: rounds{walls_text} s; {failed} failed"
    ));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let records = records * usize::from(name != "ceiling"); // the ceiling posts frames
    let (wall_seconds, peak_rss_mb) = (median(&walls), peak_rss_mb(&status));
    let out = json!({"records": records, "updates_delivered": delivered, "wall_seconds": wall_seconds, "peak_rss_mb": peak_rss_mb});
    println!("{out}");
    Ok(())
}

/// The `VmHWM` line of a `/proc/self/status` in MiB (0 when absent, e.g. off Linux).
fn peak_rss_mb(status: &str) -> f64 {
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
    let kb: Option<f64> = hwm.and_then(|v| v.split_whitespace().next()?.parse().ok());
    kb.map_or(0.0, |kb| kb / 1024.0)
}

/// An `events` frame of position updates: one, or as many as reach `bytes`.
fn ceiling_frame(bytes: usize) -> Result<Vec<u8>> {
    let sample = json!({"type": "position", "channel": "bench-0", "user": "u0-0", "x": 12.5, "y": -3.25, "z": 0.0, "seq": 42, "ts": 1_795_000_000_000u64});
    let one = sample.to_string().len() + 1;
    let events = vec![serde_json::from_value::<WireEvent>(sample)?; bytes.div_ceil(one).max(1)];
    Ok(ServerFrame::Events { events }.to_json().into_bytes())
}

/// (delivered, failed) posts.
fn counted(outcomes: &[PostOutcome]) -> (u64, u64) {
    let ok = outcomes.iter().filter(|o| **o == Delivered).count();
    (ok as u64, (outcomes.len() - ok) as u64)
}

/// The samples' fan-out: record after record, read the members, post to all but the sender at
/// once (one frame per record per recipient). Returns (delivered, failed) posts.
async fn naive(store: &Store, conns: &Connections, event: &Event) -> Result<(u64, u64)> {
    let (mut ok, mut failed) = (0, 0);
    for (index, record) in event.records.iter().enumerate() {
        let Ok(Change::Channel(change)) = change_of(index, record) else {
            continue;
        };
        let members = store.channel_members(&change.channel).await?;
        let events = vec![change.kind.to_event()];
        let frame = &ServerFrame::Events { events }.to_json().into_bytes();
        let to = members.iter().filter(|m| m.connection_id != change.sender);
        let posts = to.map(|m| async move {
            let url = conns.url_for(&m.endpoint());
            conns.post(&url, &m.connection_id, frame.clone()).await
        });
        let (d, f) = counted(&futures::future::join_all(posts).await);
        (ok, failed) = (ok + d, failed + f);
    }
    Ok((ok, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_are_derived_from_what_was_measured_and_peak_rss_from_vm_hwm() {
        // GIVEN what each child measured over 1 warm-up and 1 timed round, and the server's tally
        let strategy = |updates: u64, posts: u64, wall: f64| {
            let m = json!({"records": 100, "updates_delivered": updates, "wall_seconds": wall, "peak_rss_mb": 20.04});
            let mut tally = Tally::default();
            (tally.posts, tally.messages_billed) = (2 * posts, 2 * posts);
            tally.recipients = (0..50).map(|i| i.to_string()).collect();
            line(&m, &tally, 2)
        };
        // WHEN Ripple posts 50 frames (50 billed messages) carrying 2,450 updates in 0.05 s
        let ripple = strategy(2_450, 50, 0.05);
        // THEN the line has every field the issue names, rates and the billed share per round
        let billed = round(50.0 / 2_450.0, 5);
        let expected = json!({"records": 100, "recipients": 50, "updates_delivered": 2_450, "posts": 50, "messages_billed": 50, "messages_per_update": billed, "wall_seconds": 0.05, "posts_per_sec": 1_000.0, "deliveries_per_sec": 49_000.0, "peak_rss_mb": 20.0});
        assert_eq!(ripple, expected);
        // AND with a naive fan-out 25× slower and a ceiling twice Ripple's post rate, the ratios
        // are 25× and 50%
        let (naive, ceiling) = (strategy(4_900, 4_900, 2.5), strategy(50, 50, 0.025));
        let values = [ripple, naive, ceiling];
        let lines = Map::from_iter(STRATEGIES.map(String::from).into_iter().zip(values));
        let r = results(json!({}), &lines);
        assert_eq!(r["ripple_vs_naive_deliveries"], 25.0);
        assert_eq!(r["ripple_vs_ceiling_posts"], 0.5);
        assert!(STRATEGIES.iter().all(|s| r[s] == lines[*s]) && !r.to_string().contains('\n'));
        // AND nothing divides by zero
        let empty = results(json!({}), &Map::new());
        assert_eq!(empty["ripple_vs_naive_deliveries"], 0.0);
        // GIVEN a /proc/self/status excerpt WHEN read THEN VmHWM (not VmPeak or VmRSS) is taken
        let status = "Name:\tx\nVmPeak:\t  200000 kB\nVmHWM:\t   23552 kB\nVmRSS:\t 20000 kB\n";
        assert_eq!(peak_rss_mb(status), 23.0);
        assert_eq!(peak_rss_mb("Name:\tx\n"), 0.0);
    }
}
