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
use ripple_common::config::{DEFAULT_MAX_IN_FLIGHT, Settings, dynamodb_client, local_sdk_config};
use ripple_common::connections::{Connections, PostOutcome};
use ripple_common::protocol::{Event as WireEvent, ServerFrame};
use ripple_common::store::Store;
use serde::{Deserialize, Serialize};

use super::batch::{self, Scenario};
use super::layout::Layout;
use super::rss::peak_rss_mb;

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
    #[arg(long, value_enum)]
    pub strategy: Strategy,
    #[arg(long)]
    pub dynamodb_endpoint: String,
    #[arg(long)]
    pub table: String,
    /// `@connections` base URL for this strategy's posts.
    #[arg(long)]
    pub connections_url: String,
    #[command(flatten)]
    pub scenario: Scenario,
    /// Write time of the batch's first record (ms); the parent fixes it for all strategies.
    #[arg(long)]
    pub base_ts: u64,
    /// Ceiling only: how many frames to post.
    #[arg(long, default_value_t = 0)]
    pub posts: u64,
    /// Ceiling only: frame size in bytes (0: one position update).
    #[arg(long, default_value_t = 0)]
    pub ceiling_frame_bytes: usize,
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Ripple only: member cache in ms (0: off).
    #[arg(long, default_value_t = 0)]
    pub member_cache_ms: u64,
    /// Timed rounds after the warm-up.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: usize,
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
    pub peak_rss_mb: f64,
}

/// Runs one strategy and prints its [`RunOutput`].
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    args.scenario.validate()?;
    let out = measure(&args).await?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

async fn measure(args: &RunArgs) -> anyhow::Result<RunOutput> {
    let layout = Layout::synthetic(args.scenario.channels, args.scenario.members);
    let sdk = local_sdk_config();
    let connections = Connections::new(sdk.clone(), Some(args.connections_url.clone()));
    let store = Store::new(
        dynamodb_client(&sdk, Some(&args.dynamodb_endpoint)),
        args.table.clone(),
    );
    let rounds = args.rounds.max(1);
    let mut out = RunOutput {
        strategy: args.strategy,
        records: 0,
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
            settings.max_in_flight = args.max_in_flight;
            settings.member_cache_ms = args.member_cache_ms.min(1_000);
            let state = FanoutState::new(store, connections, &settings);
            // Like successive invocations of one instance: each gets its own copy of the batch.
            let _ = fanout::process(&state, build_event(args, &layout)?).await;
            warm_and_wait().await?;
            for _ in 0..rounds {
                let event = build_event(args, &layout)?;
                out.records = event.records.len();
                let started = Instant::now();
                let (response, report) = fanout::process(&state, event).await;
                out.walls.push(started.elapsed().as_secs_f64());
                anyhow::ensure!(
                    response.batch_item_failures.is_empty(),
                    "fanout reported batchItemFailures: {report:?}"
                );
                out.updates_delivered = report.updates_delivered;
                out.posts_ok += report.delivery.delivered;
                out.posts_failed += report.delivery.failed + report.delivery.gone.len() as u64;
            }
        }
        Strategy::Naive => {
            let event = build_event(args, &layout)?;
            out.records = event.records.len();
            let mut warm = Event::default();
            warm.records = event
                .records
                .iter()
                .take(args.scenario.channels)
                .cloned()
                .collect();
            naive(&store, &connections, &warm).await?;
            warm_and_wait().await?;
            for _ in 0..rounds {
                let started = Instant::now();
                let (ok, failed) = naive(&store, &connections, &event).await?;
                out.walls.push(started.elapsed().as_secs_f64());
                out.updates_delivered = ok;
                out.posts_ok += ok;
                out.posts_failed += failed;
            }
        }
        Strategy::Ceiling => {
            let url = &args.connections_url;
            let (in_flight, bytes) = (args.max_in_flight, args.ceiling_frame_bytes);
            let warm = args.posts.min(CEILING_WARM_POSTS);
            ceiling(&connections, url, &layout, warm, in_flight, bytes).await;
            warm_and_wait().await?;
            for _ in 0..rounds {
                let started = Instant::now();
                let (ok, failed) =
                    ceiling(&connections, url, &layout, args.posts, in_flight, bytes).await;
                out.walls.push(started.elapsed().as_secs_f64());
                out.updates_delivered = ok;
                out.posts_ok += ok;
                out.posts_failed += failed;
            }
        }
    }
    out.peak_rss_mb = peak_rss_mb().unwrap_or(0.0);
    Ok(out)
}

/// Tells the parent the warm-up is over and waits for its go (a line, or end of input).
async fn warm_and_wait() -> anyhow::Result<()> {
    use std::io::Write;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{WARM_LINE}")?;
        stdout.flush()?;
    }
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| ())
    })
    .await?
    .context("waiting for the parent's go")
}

fn build_event(args: &RunArgs, layout: &Layout) -> anyhow::Result<Event> {
    batch::build(
        layout,
        args.scenario.records,
        args.scenario.message_ratio,
        args.scenario.senders(),
        args.base_ts,
        &args.table,
    )
}

/// The samples' fan-out: record after record, read the members, post to all but the sender at
/// once (one frame per record per recipient). Returns (delivered, failed) posts.
async fn naive(
    store: &Store,
    connections: &Connections,
    event: &Event,
) -> anyhow::Result<(u64, u64)> {
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
                let url = connections.url_for(&m.endpoint());
                let data = frame.clone();
                async move { connections.post(&url, &m.connection_id, data).await }
            });
        for outcome in futures::future::join_all(posts).await {
            if outcome == PostOutcome::Delivered {
                ok += 1;
            } else {
                failed += 1;
            }
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
    let count = bytes.div_ceil(one).max(1);
    ServerFrame::Events {
        events: vec![event; count],
    }
    .to_json()
    .into_bytes()
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
) -> (u64, u64) {
    let ids: Vec<&str> = layout.connection_ids().collect();
    if ids.is_empty() {
        return (0, 0);
    }
    let frame = ceiling_frame(frame_bytes);
    let posts: Vec<_> = (0..posts)
        .map(|i| {
            let id = ids[(i % ids.len() as u64) as usize];
            let data = frame.clone();
            async move { connections.post(url, id, data).await }
        })
        .collect();
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
