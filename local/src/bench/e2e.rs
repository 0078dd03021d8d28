//! `ripple bench e2e`: `ripple dev` in this process (its own DynamoDB Local unless told
//! otherwise), N players over real WebSockets spread over M channels, each sending positions at
//! H Hz for T seconds after a short warm-up. Reports sent and delivered updates, write→receive
//! latency percentiles, messages per update, DynamoDB usage and the cost per million delivered
//! updates; can draw the latency histogram as SVG.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use ripple_common::items::Endpoint;
use tokio::time::Instant;

use super::calibrate::{HandlerTimes, handler_times};
use super::cost::Prices;
use super::e2e_report::{E2eResults, LatencySummary, render};
use super::estimate::{
    ClientCounts, ItemSizes, ServerCounts, estimate, floor_per_million_delivered,
};
use super::latency::Latencies;
use super::players::{Player, Schedule, Tallies, user_of};
use super::report::{round, thousands};
use super::{note, svg, unique_table_name};
use crate::dev::{DevOptions, DevServer};

/// Players connecting at once.
const CONNECTS_IN_FLIGHT: usize = 8;
/// The run ends when nothing new arrived for this long after the last send…
const QUIET: Duration = Duration::from_millis(1500);
/// …or this long after the last send at the latest.
const MAX_DRAIN: Duration = Duration::from_secs(15);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

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
    /// Print exactly one JSON line (stdout) instead of the report.
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
        anyhow::ensure!(self.channels >= 1, "--channels must be at least 1");
        anyhow::ensure!(
            self.players >= 2 * self.channels,
            "--players must be at least twice --channels (someone to hear each sender)"
        );
        anyhow::ensure!(self.players <= 5_000, "--players must be at most 5000");
        anyhow::ensure!(
            self.hz > 0.0 && self.hz <= 100.0,
            "--hz must be in (0, 100]"
        );
        anyhow::ensure!(
            self.seconds > 0.0 && self.seconds <= 600.0,
            "--seconds must be in (0, 600]"
        );
        anyhow::ensure!(
            (0.0..=60.0).contains(&self.warmup),
            "--warmup must be 0-60 seconds"
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
    note(&format!(
        "bench e2e: starting ripple dev ({})",
        args.dynamodb_endpoint
            .as_deref()
            .map_or("with its own DynamoDB Local".to_owned(), |e| format!(
                "DynamoDB at {e}"
            ))
    ));
    let server = DevServer::start(DevOptions {
        port: 0,
        dynamodb_endpoint: args.dynamodb_endpoint.clone(),
        settings: ripple_common::config::Settings {
            // The bench measures the pipeline, not the per-connection publish limit.
            position_rate: ripple_common::config::DEFAULT_POSITION_RATE
                .max((args.hz * 2.0).ceil() as u32),
            ..ripple_common::config::Settings::for_table(unique_table_name("ripple-bench-e2e"))
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
    let (results, latencies) = results?;
    if let Some(path) = &args.histogram {
        write_histogram(path, &latencies, &args)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
    } else {
        print!("{}", render(&results));
    }
    Ok(())
}

fn write_histogram(path: &PathBuf, latencies: &Latencies, args: &E2eArgs) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let svg = svg::histogram(
        latencies,
        "Ripple end to end: write → receive latency",
        &format!(
            "ripple bench e2e: {} players in {} channels at {} Hz for {} s (after {} s warm-up), ripple dev on loopback with DynamoDB Local",
            args.players, args.channels, args.hz, args.seconds, args.warmup
        ),
    );
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    note(&format!(
        "bench e2e: histogram written to {}",
        path.display()
    ));
    Ok(())
}

fn counter(snapshot: &[(&'static str, &'static str, u64)], name: &str) -> u64 {
    snapshot
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(0, |(_, _, v)| *v)
}

fn server_counts(server: &DevServer) -> ServerCounts {
    let s = server.metrics.snapshot();
    ServerCounts {
        connects: counter(&s, "connects_total"),
        disconnects: counter(&s, "disconnects_total"),
        frames_accepted: counter(&s, "frames_accepted_total"),
        membership_reads: counter(&s, "membership_reads_total"),
        frames_refused: counter(&s, "frames_refused_total"),
        frames_failed: counter(&s, "frames_failed_total"),
        fanout_batches: counter(&s, "fanout_batches_total"),
        fanout_records: counter(&s, "fanout_records_total"),
    }
}

pub(super) fn progress(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{line:<100}");
    let _ = err.flush();
}

/// One player after the run: who, and the last measured `seq` it sent.
pub(super) struct Played {
    pub(super) player: Player,
    pub(super) last_seq: Option<u64>,
}

async fn drive(args: &E2eArgs, server: &DevServer) -> anyhow::Result<(E2eResults, Latencies)> {
    let tallies = Arc::new(Tallies::default());
    let connected_at = Instant::now();
    let players = connect_players(args, &server.ws_url(), &[], &tallies).await?;
    // Let the join announcements settle before anyone moves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (played, expected) = play(args, players, &tallies).await?;
    drain(&tallies, expected).await;

    let latencies = tallies.latencies();
    let final_missed = final_positions_missed(args, &played, &tallies);
    let sent = Tallies::get(&tallies.sent_measured);
    let delivered = Tallies::get(&tallies.delivered_measured);
    let frames = Tallies::get(&tallies.frames_measured);
    progress(&format!(
        "[bench e2e] done: sent {}  delivered {}  p50 {}",
        thousands(sent),
        thousands(delivered),
        latencies
            .percentile(50.0)
            .map_or("–".to_owned(), |p| format!("{p} ms"))
    ));
    let _ = writeln!(std::io::stderr());

    // Close, and wait for ripple dev to run every $disconnect.
    let connections = played.len() as u64;
    let sample = played
        .first()
        .map(|p| (p.player.channel.clone(), p.player.connection_id.clone()));
    close_all(played.into_iter().map(|p| p.player).collect()).await;
    let connected_seconds = connected_at.elapsed().as_secs_f64();
    let connection_minutes = connected_seconds / 60.0 * connections as f64;
    let closing = Instant::now();
    while server_counts(server).disconnects < connections
        && closing.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = server_counts(server);

    let members_per_channel = args.players as f64 / args.channels as f64;
    let avg_records = if counts.fanout_batches > 0 {
        counts.fanout_records as f64 / counts.fanout_batches as f64
    } else {
        1.0
    };
    note("bench e2e: timing the ingest and fanout handlers on a side table (for the Lambda cost)");
    let times: HandlerTimes = handler_times(
        &server.dynamodb_endpoint,
        &server.table,
        args.channels,
        members_per_channel.round() as usize,
        avg_records.round().max(1.0) as usize,
    )
    .await
    .context("timing the handlers")?;

    let (channel, connection_id) =
        sample.unwrap_or_else(|| (args.channel_of(0), "AbCdEfGhIjK=".to_owned()));
    let endpoint = Endpoint {
        domain: server.addr.to_string(),
        stage: "local".into(),
    };
    let item_bytes = ItemSizes::sample(&channel, &user_of(0), &connection_id, &endpoint);
    let client = ClientCounts {
        sent: Tallies::get(&tallies.sent_total),
        delivered: Tallies::get(&tallies.delivered_total),
        messages_out: Tallies::get(&tallies.messages_out),
        connection_minutes: round(connection_minutes, 3),
        seconds: round(connected_seconds, 1),
    };
    let estimate = estimate(
        &counts,
        &client,
        args.channels,
        members_per_channel,
        item_bytes,
        &times,
        &Prices::default(),
    );
    let floor = floor_per_million_delivered(
        members_per_channel,
        args.hz,
        item_bytes,
        &times,
        &Prices::default(),
    );
    let whole_run_delivered = client.delivered.max(1) as f64;
    let results = E2eResults {
        players: args.players,
        channels: args.channels,
        hz: args.hz,
        seconds: args.seconds,
        warmup_seconds: args.warmup,
        shards: args.shards.max(1),
        parallelization_factor: args.parallelization_factor.clamp(1, 10),
        poll_interval_ms: args.poll_interval.max(1),
        sent,
        delivered,
        expected,
        frames,
        final_positions_missed: final_missed,
        messages_per_update: round(
            if delivered > 0 {
                frames as f64 / delivered as f64
            } else {
                0.0
            },
            4,
        ),
        billed_messages_per_update: round(
            (client.sent + client.messages_out) as f64 / whole_run_delivered,
            4,
        ),
        floor_per_million_delivered_usd: floor.map(|f| round(f, 4)),
        vs_floor: floor
            .zip(estimate.per_million_delivered_usd)
            .map(|(f, c)| round(c / f, 2)),
        latency_ms: LatencySummary::from(&latencies),
        refused: Tallies::get(&tallies.refused),
        server: counts,
        client,
        item_bytes,
        estimate,
        histogram: args.histogram.as_ref().map(|p| p.display().to_string()),
    };
    Ok((results, latencies))
}

/// Connects every player (a few at a time) and waits for each one's `welcome`.
/// Player `i` uses `tokens[i]` when tokens are given.
pub(super) async fn connect_players(
    args: &E2eArgs,
    ws_url: &str,
    tokens: &[String],
    tallies: &Arc<Tallies>,
) -> anyhow::Result<Vec<Player>> {
    note(&format!(
        "bench e2e: connecting {} players to {ws_url} in {} channels",
        args.players, args.channels
    ));
    let connects: Vec<_> = (0..args.players)
        .map(|i| {
            let (url, channel, tallies) =
                (ws_url.to_owned(), args.channel_of(i), Arc::clone(tallies));
            let token = tokens.get(i).cloned();
            async move { Player::connect_with(&url, i, &channel, token.as_deref(), tallies).await }
        })
        .collect();
    let results: Vec<anyhow::Result<Player>> = futures::stream::iter(connects)
        .buffer_unordered(CONNECTS_IN_FLIGHT)
        .collect()
        .await;
    let mut players = Vec::with_capacity(args.players);
    let mut failure = None;
    for r in results {
        match r {
            Ok(p) => players.push(p),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(err) = failure {
        close_all(players).await;
        return Err(err.context("connecting the players"));
    }
    Ok(players)
}

/// Plays the warm-up and the measured seconds, with the progress line. Returns the players and
/// the measured updates delivery would make without coalescing: `sent × (channel size − 1)`.
pub(super) async fn play(
    args: &E2eArgs,
    players: Vec<Player>,
    tallies: &Arc<Tallies>,
) -> anyhow::Result<(Vec<Played>, u64)> {
    let period = Duration::from_secs_f64(1.0 / args.hz);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let n = players.len().max(1) as u32;
    let mut sizes = vec![0u64; args.channels];
    for p in &players {
        if let Some(s) = sizes.get_mut(p.index % args.channels) {
            *s += 1;
        }
    }
    let tasks: Vec<_> = players
        .into_iter()
        .enumerate()
        .map(|(i, mut player)| {
            let schedule = Schedule {
                first: start + period * (i as u32 % n) / n,
                measure_from,
                end,
                period,
            };
            let tallies = Arc::clone(tallies);
            tokio::spawn(async move {
                let sent = player.play(schedule, &tallies).await;
                (player, sent)
            })
        })
        .collect();

    let total = (end - start).as_secs_f64();
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let elapsed = start.elapsed().as_secs_f64().min(total);
        let line = if Instant::now() < measure_from {
            format!(
                "[bench e2e] warm-up {elapsed:5.1}/{total:.1} s  sent {}  delivered {} (not measured)",
                thousands(Tallies::get(&tallies.sent_total)),
                thousands(Tallies::get(&tallies.delivered_total)),
            )
        } else {
            format!(
                "[bench e2e] measuring {elapsed:5.1}/{total:.1} s  sent {}  delivered {}  p50 {}",
                thousands(Tallies::get(&tallies.sent_measured)),
                thousands(Tallies::get(&tallies.delivered_measured)),
                tallies.p50().map_or("–".to_owned(), |p| format!("{p} ms"))
            )
        };
        progress(&line);
    }
    let mut played = Vec::with_capacity(tasks.len());
    let mut expected = 0;
    for task in tasks {
        let (player, (sent, last_seq)) = task.await.context("a player task failed")?;
        let channel_size = sizes
            .get(player.index % args.channels)
            .copied()
            .unwrap_or(1);
        expected += sent * channel_size.saturating_sub(1);
        played.push(Played { player, last_seq });
    }
    Ok((played, expected))
}

/// Waits until nothing new arrives for [`QUIET`], everything expected has, or [`MAX_DRAIN`].
pub(super) async fn drain(tallies: &Tallies, expected: u64) {
    let started = Instant::now();
    let mut last = Tallies::get(&tallies.delivered_measured);
    let mut quiet_since = Instant::now();
    while started.elapsed() < MAX_DRAIN {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let now = Tallies::get(&tallies.delivered_measured);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET || now >= expected {
            break;
        }
        progress(&format!(
            "[bench e2e] draining {:4.1} s  sent {}  delivered {}/{}  p50 {}",
            started.elapsed().as_secs_f64(),
            thousands(Tallies::get(&tallies.sent_measured)),
            thousands(now),
            thousands(expected),
            tallies.p50().map_or("–".to_owned(), |p| format!("{p} ms"))
        ));
    }
}

/// (receiver, sender) pairs of a channel where the receiver did not end with the sender's last
/// measured position: coalescing may skip intermediate positions, never the last one.
pub(super) fn final_positions_missed(args: &E2eArgs, played: &[Played], tallies: &Tallies) -> u64 {
    let mut missed = 0;
    for receiver in played {
        for sender in played {
            let (r, s) = (receiver.player.index, sender.player.index);
            let same_channel = r % args.channels == s % args.channels;
            if let (true, true, Some(last)) = (same_channel, r != s, sender.last_seq)
                && tallies.latest_seen(r, &sender.player.user) != Some(last)
            {
                missed += 1;
            }
        }
    }
    missed
}

pub(super) async fn close_all(players: Vec<Player>) {
    futures::future::join_all(players.into_iter().map(Player::close)).await;
}
