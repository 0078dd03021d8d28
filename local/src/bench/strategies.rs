//! The three fan-out strategies `ripple bench fanout` compares, each run by a child process of the
//! same binary (`ripple bench fanout-run`) so its peak RSS is its own:
//!
//! - **ripple**: `fanout::process`, exactly what the Lambda runs (pacing set out of the way);
//! - **naive**: what the public samples do, per record: read the channel's members, then post
//!   that one event as its own frame to every member but the sender, all at once, unbounded;
//! - **ceiling**: a plain concurrent HTTP client (`Connections::post`, 64 in flight, no DynamoDB)
//!   posting as many small one-event frames as Ripple posted, as fast as it can
//!   (`--ceiling-frame-bytes` makes them bigger, e.g. the size of Ripple's frames).
//!
//! Each strategy first runs once untimed, as a warm Lambda instance would have (SDK clients built,
//! keep-alive connections to DynamoDB and `@connections` open): all of Ripple's batch, the naive
//! fan-out's first record of each channel, 128 of the ceiling's posts. The child then prints
//! [`WARM_LINE`] and waits for a line on stdin, so the parent can tell warm-up posts from measured
//! ones, and runs timed, `--rounds` times (each round the same batch, freshly decoded for Ripple).

use std::time::Instant;

use anyhow::Context;
use aws_lambda_events::dynamodb::Event;
use clap::{Args, ValueEnum};
use fanout::FanoutState;
use fanout::changes::{Change, change_of};
use futures::StreamExt;
use ripple_common::config::{Settings, dynamodb_client, local_sdk_config};
use ripple_common::connections::{Connections, PostOutcome};
use ripple_common::protocol::{Event as WireEvent, ServerFrame};
use ripple_common::store::Store;
use serde::{Deserialize, Serialize};

use super::batch;
use super::fanout::FanoutArgs;
use super::layout::Layout;

/// Posts per second given to Ripple's limiter: far above what one machine posts, so pacing never
/// caps the measurement.
pub const UNPACED_POSTS_PER_SECOND: u32 = 1_000_000;
/// Timed rounds per strategy; the median is reported.
pub const DEFAULT_ROUNDS: usize = 5;
/// What the child prints once warm; it then waits for a line on stdin.
pub const WARM_LINE: &str = "warm";
/// Posts the ceiling makes to warm up, at most.
const CEILING_WARM_POSTS: u64 = 128;

/// A fan-out strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Ripple,
    Naive,
    Ceiling,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Ripple, Strategy::Naive, Strategy::Ceiling];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Ripple => "ripple",
            Strategy::Naive => "naive",
            Strategy::Ceiling => "ceiling",
        }
    }
}

/// `ripple bench fanout-run` (hidden): one strategy, in its own process.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The run: a [`Spec`] as JSON, from `bench fanout`.
    #[arg(long)]
    pub spec: String,
}

/// What a child runs: `bench fanout`'s flags and what the parent fixed for every strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub strategy: Strategy,
    pub bench: FanoutArgs,
    pub dynamodb_endpoint: String,
    pub table: String,
    /// `@connections` base URL for this strategy's posts.
    pub connections_url: String,
    /// Write time of the batch's first record (ms).
    pub base_ts: u64,
    /// Ceiling only: how many frames to post (as many as Ripple posted).
    pub posts: u64,
}

/// What the child prints, as one JSON line on stdout (counts are per round, except the posts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    pub strategy: Strategy,
    pub records: usize,
    pub updates_delivered: u64,
    pub posts_ok: u64,
    pub posts_failed: u64,
    /// Wall time of each timed round, in seconds.
    pub walls: Vec<f64>,
    /// Peak resident memory: `VmHWM`, what Lambda reports as "Max Memory Used".
    pub peak_rss_mb: f64,
}

/// Runs one strategy and prints its [`RunOutput`].
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let spec: Spec = serde_json::from_str(&args.spec).context("reading --spec")?;
    spec.bench.scenario.validate()?;
    let out = measure(&spec).await?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// Posts delivered and failed by one round.
type Round = (u64, u64);

async fn measure(args: &Spec) -> anyhow::Result<RunOutput> {
    let (b, s) = (&args.bench, &args.bench.scenario);
    let layout = Layout::synthetic(s.channels, s.members);
    let sdk = local_sdk_config();
    let connections = Connections::new(sdk.clone(), Some(args.connections_url.clone()));
    let store = Store::new(
        dynamodb_client(&sdk, Some(&args.dynamodb_endpoint)),
        args.table.clone(),
    );
    let rounds = b.rounds.max(1);
    let build = || {
        batch::build(
            &layout,
            s.records,
            s.message_ratio,
            s.senders(),
            args.base_ts,
            &args.table,
        )
    };
    let mut out = RunOutput {
        strategy: args.strategy,
        // The ceiling posts frames, not records.
        records: if args.strategy == Strategy::Ceiling {
            0
        } else {
            s.records
        },
        updates_delivered: 0,
        posts_ok: 0,
        posts_failed: 0,
        walls: Vec::with_capacity(rounds),
        peak_rss_mb: 0.0,
    };
    match args.strategy {
        Strategy::Ripple => {
            let mut settings = Settings::for_table(args.table.clone());
            settings.posts_per_second = UNPACED_POSTS_PER_SECOND;
            settings.max_in_flight = b.max_in_flight;
            settings.member_cache_ms = b.member_cache_ms.min(1_000);
            let state = FanoutState::new(store, connections, &settings);
            // Like successive invocations of one instance: each gets its own copy of the batch.
            let _ = fanout::process(&state, build()?).await;
            timed(&mut out, rounds, async || {
                let (response, report) = fanout::process(&state, build()?).await;
                anyhow::ensure!(
                    response.batch_item_failures.is_empty(),
                    "fanout reported batchItemFailures: {report:?}"
                );
                let d = &report.delivery;
                Ok((
                    report.updates_delivered,
                    (d.delivered, d.failed + d.gone.len() as u64),
                ))
            })
            .await?;
        }
        Strategy::Naive => {
            let event = build()?;
            let mut warm = Event::default();
            warm.records = event.records.iter().take(s.channels).cloned().collect();
            naive(&store, &connections, &warm).await?;
            timed(&mut out, rounds, async || {
                naive(&store, &connections, &event).await.map(|r| (r.0, r))
            })
            .await?;
        }
        Strategy::Ceiling => {
            let (url, in_flight, bytes) = (
                &args.connections_url,
                b.max_in_flight,
                b.ceiling_frame_bytes,
            );
            let warm = args.posts.min(CEILING_WARM_POSTS);
            ceiling(&connections, url, &layout, warm, in_flight, bytes).await;
            timed(&mut out, rounds, async || {
                let r = ceiling(&connections, url, &layout, args.posts, in_flight, bytes).await;
                Ok((r.0, r))
            })
            .await?;
        }
    }
    out.peak_rss_mb = peak_rss_mb().unwrap_or(0.0);
    Ok(out)
}

/// Tells the parent the warm-up is over, waits for its go, then times `rounds` rounds, each
/// returning the updates it delivered and its posts.
async fn timed(
    out: &mut RunOutput,
    rounds: usize,
    mut round: impl AsyncFnMut() -> anyhow::Result<(u64, Round)>,
) -> anyhow::Result<()> {
    warm_and_wait().await?;
    for _ in 0..rounds {
        let started = Instant::now();
        let (delivered, (ok, failed)) = round().await?;
        out.walls.push(started.elapsed().as_secs_f64());
        out.updates_delivered = delivered;
        (out.posts_ok, out.posts_failed) = (out.posts_ok + ok, out.posts_failed + failed);
    }
    Ok(())
}

/// Peak RSS of this process so far in MiB: `VmHWM` from `/proc/self/status` (`None` off Linux).
fn peak_rss_mb() -> Option<f64> {
    parse_vm_hwm_kb(&std::fs::read_to_string("/proc/self/status").ok()?)
        .map(|kb| kb as f64 / 1024.0)
}

/// The `VmHWM` line's value in kB.
fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Tells the parent the warm-up is over and waits for its go (a line, or end of input).
async fn warm_and_wait() -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{WARM_LINE}")?;
    stdout.flush()?;
    drop(stdout);
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()).map(|_| ()))
        .await?
        .context("waiting for the parent's go")
}

/// The samples' fan-out: record after record, read the members, post to all but the sender at
/// once (one frame per record per recipient). Returns (delivered, failed) posts.
async fn naive(store: &Store, connections: &Connections, event: &Event) -> anyhow::Result<Round> {
    let (mut ok, mut failed) = (0, 0);
    for (index, record) in event.records.iter().enumerate() {
        let Ok(Change::Channel(change)) = change_of(index, record) else {
            continue;
        };
        let members = store
            .channel_members(&change.channel)
            .await
            .with_context(|| format!("reading the members of {}", change.channel))?;
        let frame = ServerFrame::Events {
            events: vec![change.kind.to_event()],
        }
        .to_json()
        .into_bytes();
        let posts = members
            .iter()
            .filter(|m| m.connection_id != change.sender)
            .map(|m| {
                let (url, data) = (connections.url_for(&m.endpoint()), frame.clone());
                async move { connections.post(&url, &m.connection_id, data).await }
            });
        for outcome in futures::future::join_all(posts).await {
            *(if outcome == PostOutcome::Delivered {
                &mut ok
            } else {
                &mut failed
            }) += 1;
        }
    }
    Ok((ok, failed))
}

/// An `events` frame of position updates: one (a small frame), or as many as reach `bytes`.
pub fn ceiling_frame(bytes: usize) -> Vec<u8> {
    let event = WireEvent::Position {
        channel: "bench-0".into(),
        user: "u0-0".into(),
        x: 12.5,
        y: -3.25,
        z: 0.0,
        seq: 42,
        data: None,
        ts: 1_795_000_000_000,
    };
    let one = serde_json::to_vec(&event).map_or(100, |e| e.len() + 1);
    let events = vec![event; bytes.div_ceil(one).max(1)];
    ServerFrame::Events { events }.to_json().into_bytes()
}

/// Posts `posts` frames (of about `frame_bytes`; 0: one event) over the layout's connections,
/// `max_in_flight` at a time.
async fn ceiling(
    connections: &Connections,
    url: &str,
    layout: &Layout,
    posts: u64,
    max_in_flight: usize,
    frame_bytes: usize,
) -> Round {
    let ids: Vec<&str> = layout.connection_ids().collect();
    if ids.is_empty() {
        return (0, 0);
    }
    let frame = ceiling_frame(frame_bytes);
    let posts = (0..posts).map(|i| {
        let (id, data) = (ids[(i % ids.len() as u64) as usize], frame.clone());
        async move { connections.post(url, id, data).await }
    });
    let outcomes: Vec<PostOutcome> = futures::stream::iter(posts)
        .buffer_unordered(max_in_flight.max(1))
        .collect()
        .await;
    let ok = outcomes
        .iter()
        .filter(|o| **o == PostOutcome::Delivered)
        .count() as u64;
    (ok, outcomes.len() as u64 - ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_from_proc_status() {
        // GIVEN a /proc/self/status excerpt
        let status =
            "Name:\tripple\nVmPeak:\t  200000 kB\nVmHWM:\t   23552 kB\nVmRSS:\t   20000 kB\n";
        // WHEN parsed THEN VmHWM (not VmPeak or VmRSS) is taken
        assert_eq!(parse_vm_hwm_kb(status), Some(23_552));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\n"), None);
    }
}
