//! `ripple bench e2e`: `ripple dev` in this process (its own DynamoDB Local unless told
//! otherwise), N players over real WebSockets spread over M channels, each sending positions at
//! H Hz for T seconds after a short warm-up. Reports sent and delivered updates, write→receive
//! latency percentiles, messages per update, DynamoDB usage and the cost per million delivered
//! updates (as JSON); can draw the latency histogram as SVG.
//!
//! The Lambda part of the cost needs the handlers' time per invocation: after the run, the real
//! `ingest` and `fanout` handlers are timed on a side table in the same DynamoDB (seeded like the
//! run: same channels, same members per channel), fanout posting to a loopback `@connections`
//! server. Nothing there touches the run's table or players.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use fanout::FanoutState;
use ingest::{IngestState, Outcome};
use ripple_common::config::{Settings, local_sdk_config};
use ripple_common::connections::Connections;
use ripple_common::items::Endpoint;
use ripple_common::store::Store;
use serde_json::{Value, json};

use super::batch::{self, Layout, Member};
use super::cost::{self, ItemSizes, ServerCounts};
use super::players::{session, user_of};
use super::{BenchTable, note, round, unique_table_name};
use crate::connections_server::LoopbackConnections;
use crate::dev::{DevOptions, DevServer};

/// Position frames timed through `ingest` (at most 10 per sender, under the publish burst), and
/// batches timed through `fanout`.
const INGEST_SAMPLES: usize = 100;
const INGEST_SAMPLES_PER_SENDER: usize = 10;
const FANOUT_SAMPLES: usize = 10;

/// `ripple bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Simulated players (WebSocket connections).
    #[arg(long, default_value_t = 20)]
    pub players: usize,
    /// Channels the players are spread over (player i joins channel i mod M).
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Positions per second each player sends.
    #[arg(long, default_value_t = 10.0)]
    pub hz: f64,
    /// Measured seconds of play.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Unmeasured seconds of play first: DynamoDB Local's JIT needs about 8 s on two cores before
    /// the pipeline keeps up. Latency and messages_per_update count only measured updates; the
    /// cost counts the whole run.
    #[arg(long, default_value_t = 10.0)]
    pub warmup: f64,
    /// Write the latency histogram as SVG here (default path when given without one).
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "target/bench/latency.svg")]
    pub histogram: Option<PathBuf>,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Stream shards of the local stack (AWS: one per table partition).
    #[arg(long, default_value_t = ripple_common::deploy::LOCAL_STREAM_SHARDS)]
    pub shards: usize,
    /// Concurrent batches per shard (as deployed by terraform/).
    #[arg(long, default_value_t = ripple_common::deploy::FANOUT_MAPPING.parallelization_factor)]
    pub parallelization_factor: usize,
    /// How often each shard is polled, in ms (AWS: 250; lower is kinder than AWS).
    #[arg(long, value_name = "MS", default_value_t = ripple_common::deploy::STREAM_POLL_INTERVAL_MS)]
    pub poll_interval: u64,
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    pub json: bool,
    /// Play against this already running stack instead of starting `ripple dev`: a deployed
    /// `wss://…/prod` (`terraform output -raw websocket_url`) or a running `ripple dev`'s
    /// `ws://127.0.0.1:3001`. Bounded: at most 200 players, 20 Hz, 120 s of play (warm-up
    /// included) and 1,000,000 delivered updates at worst; prints the estimated bill first and
    /// asks before sending (see --yes). Server counters and DynamoDB usage cannot be measured
    /// remotely and are reported as null.
    #[arg(long, value_name = "WS_URL", conflicts_with_all = ["dynamodb_endpoint", "histogram"])]
    pub url: Option<String>,
    /// With --url: do not ask for confirmation of the estimated cost (required without a terminal).
    #[arg(long, requires = "url")]
    pub yes: bool,
    /// With --url, when the stack requires a JWT at connect: one token per player (give it
    /// --players times; each a different user).
    #[arg(long = "token", value_name = "JWT", requires = "url")]
    pub tokens: Vec<String>,
    /// With --url: read the players' tokens from this file, one per line (keeps them out of the
    /// process list).
    #[arg(long, value_name = "PATH", requires = "url", conflicts_with = "tokens")]
    pub token_file: Option<PathBuf>,
    /// Appended to the channel names (`bench{tag}-{i}`): a remote run uses a fresh tag, so an
    /// earlier run's positions (higher `seq`) on the same stack do not shadow this one's.
    #[arg(skip)]
    pub channel_tag: String,
}

impl E2eArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let (players, channels, hz, seconds) = (self.players, self.channels, self.hz, self.seconds);
        let ok = channels >= 1 && (2 * channels..=5_000).contains(&players);
        let ok = ok && hz > 0.0 && hz <= 100.0 && seconds > 0.0 && seconds <= 600.0;
        anyhow::ensure!(
            ok && (0.0..=60.0).contains(&self.warmup),
            "the run needs --channels ≥ 1, --players from twice --channels (someone to hear each sender) to 5000, --hz in (0, 100], --seconds in (0, 600] and --warmup 0-60"
        );
        Ok(())
    }

    pub(super) fn channel_of(&self, player: usize) -> String {
        format!("bench{}-{}", self.channel_tag, player % self.channels)
    }
}

/// Runs the bench and prints the results.
pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    args.validate()?;
    if args.url.is_some() {
        return super::remote::run(args).await;
    }
    note("bench e2e: starting ripple dev");
    let settings = Settings::for_table(unique_table_name("ripple-bench-e2e"));
    let server = DevServer::start(DevOptions {
        port: 0,
        dynamodb_endpoint: args.dynamodb_endpoint.clone(),
        settings: Settings {
            // The bench measures the pipeline, not the per-connection publish limit.
            position_rate: settings.position_rate.max((args.hz * 2.0).ceil() as u32),
            ..settings
        },
        mapping: crate::dev::mapping::MappingConfig {
            shards: args.shards.max(1),
            parallelization_factor: args.parallelization_factor.clamp(1, 10),
            poll_interval: Duration::from_millis(args.poll_interval.max(1)),
            ..crate::dev::mapping::MappingConfig::default()
        },
        ..DevOptions::default()
    })
    .await
    .context("starting ripple dev")?;
    let results = drive(&args, &server).await;
    server.shutdown().await;
    super::print(args.json, &results?);
    Ok(())
}

/// `ripple dev`'s counters, by name without `_total`.
fn server_counts(server: &DevServer) -> ServerCounts {
    let snapshot = server.metrics.snapshot().into_iter();
    let fields =
        snapshot.filter_map(|(n, _, v)| Some((n.strip_suffix("_total")?.to_owned(), v.into())));
    serde_json::from_value(serde_json::Value::Object(fields.collect())).unwrap_or_default()
}

/// Plays the run, then times the handlers and estimates the cost: everything `--json` prints.
async fn drive(args: &E2eArgs, server: &DevServer) -> anyhow::Result<Value> {
    let run = session(args, &server.ws_url(), &[]).await?;
    // Wait for ripple dev to run every $disconnect.
    let closing = Instant::now();
    while server_counts(server).disconnects < args.players as u64
        && closing.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = server_counts(server);
    if let Some(path) = &args.histogram {
        let a = args;
        let subtitle = format!(
            "ripple bench e2e: {} players in {} channels at {} Hz for {} s (after {} s warm-up), ripple dev on loopback with DynamoDB Local",
            a.players, a.channels, a.hz, a.seconds, a.warmup
        );
        super::histogram::write_svg(path, &run.latencies, &subtitle)?;
    }
    let members = args.players as f64 / args.channels as f64;
    let avg_records = super::ratio(counts.fanout_records as f64, counts.fanout_batches as f64);
    note("bench e2e: timing the ingest and fanout handlers on a side table (for the Lambda cost)");
    let db = BenchTable::create(Some(&server.dynamodb_endpoint), "ripple-calibration").await?;
    let layout = Layout::synthetic(args.channels.max(1), (members.round() as usize).max(2));
    let times = handler_times(&db.store, &layout, avg_records.round().max(1.0) as usize).await;
    db.remove().await;
    let times = times.context("timing the handlers")?;
    let (channel, connection_id) = run
        .sample
        .unwrap_or_else(|| (args.channel_of(0), "AbCdEfGhIjK=".to_owned()));
    let endpoint = Endpoint {
        domain: server.addr.to_string(),
        stage: "local".into(),
    };
    let sender = Member::new(&connection_id, &user_of(0));
    let item_bytes = ItemSizes::sample(&channel, &sender, &endpoint);
    let client = run.client;
    let estimate = cost::estimate(&counts, &client, args.channels, members, item_bytes, times);
    let floor = cost::floor_per_million_delivered(members, args.hz, item_bytes, times.0);
    let billed = (client.sent + client.messages_out) as f64 / client.delivered.max(1) as f64;
    let per_million = estimate["per_million_delivered_usd"].as_f64();
    let histogram = args.histogram.as_ref().map(|p| p.display().to_string());
    let results = json!({
        // the emulated stream: shards, concurrent batches per shard, poll interval
        "shards": args.shards.max(1),
        "parallelization_factor": args.parallelization_factor.clamp(1, 10),
        "poll_interval_ms": args.poll_interval.max(1),
        // billed API Gateway messages, in and out, per delivered update over the whole run
        "billed_messages_per_update": round(billed, 4),
        // this load at this architecture's floor (perfect 100 ms batching, no reads, no logs),
        // per million delivered updates, and this run's cost over it
        "floor_per_million_delivered_usd": floor.map(|f| round(f, 4)),
        "vs_floor": floor.zip(per_million).map(|(f, c)| round(c / f, 2)),
        "server": counts, "client": client, "item_bytes": item_bytes, "estimate": estimate,
        "histogram": histogram,
    });
    Ok(super::merged(run.measured, results))
}

/// The mean time per invocation of the `ingest` and `fanout` handlers, in ms, on `store` seeded
/// with `layout`, fanout given batches of `records` positions.
async fn handler_times(
    store: &Store,
    layout: &Layout,
    records: usize,
) -> anyhow::Result<(f64, f64)> {
    batch::seed(store, layout).await?;
    let mut settings = Settings::for_table(store.table());
    // Calibration times the handler, not the per-connection publish limit.
    (settings.position_rate, settings.message_rate) = (u32::MAX, u32::MAX);
    let state = IngestState::new(store.clone(), settings);
    let senders: Vec<_> = layout.members().collect();
    anyhow::ensure!(!senders.is_empty(), "no members to publish from");
    let samples = INGEST_SAMPLES.min(senders.len() * INGEST_SAMPLES_PER_SENDER);
    let send = |k: usize, seq: usize| {
        let (channel, member) = senders[k % senders.len()];
        let body =
            format!(r#"{{"action":"position","channel":"{channel}","x":{k},"y":1.5,"seq":{seq}}}"#);
        let state = &state;
        async move {
            match ingest::ingest_frame(state, &member.connection_id, body.as_bytes()).await {
                Outcome::Accepted | Outcome::Answered(_) => Ok(()),
                other => anyhow::bail!("calibration frame not accepted: {other:?}"),
            }
        }
    };
    // Each sender's first position proves its membership (a read and a transaction, once per
    // connection per instance: the estimate counts those apart); the run's steady state is timed.
    for k in 0..samples.min(senders.len()) {
        send(k, 1).await?;
    }
    let started = Instant::now();
    for k in 0..samples {
        send(k, k + 2).await?;
    }
    let ingest_ms = started.elapsed().as_secs_f64() * 1000.0 / samples.max(1) as f64;

    let sink = LoopbackConnections::counting().await?;
    let connections = Connections::new(local_sdk_config(), Some(sink.url_for("calibration")));
    let state = FanoutState::new(
        store.clone(),
        connections,
        &Settings::for_table(store.table()),
    );
    let members = layout.channels.first().map_or(1, |c| c.members.len());
    let now = ripple_common::now_ms();
    let event = batch::build(layout, records, 0.0, members, now, store.table())?;
    let started = Instant::now();
    for _ in 0..FANOUT_SAMPLES {
        let _ = fanout::process(&state, event.clone()).await;
    }
    let fanout_ms = started.elapsed().as_secs_f64() * 1000.0 / FANOUT_SAMPLES as f64;
    sink.stop().await;
    Ok((ingest_ms, fanout_ms))
}
