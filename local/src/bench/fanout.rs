//! `ripple bench fanout`: one synthetic stream batch, fanned out three ways against the same
//! DynamoDB table and the same loopback `@connections` server. This process owns the shared parts
//! (DynamoDB Local, the seeded table, the counting server); each strategy runs in a child process
//! of this binary so its peak RSS is its own.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ripple_common::config::DEFAULT_MAX_IN_FLIGHT;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::batch::Scenario;
use super::layout::{self, Layout};
use super::report::{FanoutResults, ScenarioSummary, StrategyResult, render};
use super::strategies::{DEFAULT_ROUNDS, RunOutput, Spec, Strategy, WARM_LINE};
use super::{median, note, round, unique_table_name};
use crate::connections_server::{LoopbackConnections, Tally};
use crate::dynamodb_local::DynamoDbLocal;

/// A strategy that takes longer than this is stopped (and the run fails).
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);
/// Member reads made before measuring, so DynamoDB Local's Query path is warm (its JIT).
const WARM_QUERIES_PER_CHANNEL: usize = 5;

/// `ripple bench fanout`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub scenario: Scenario,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Posts in flight at once, for Ripple and for the ceiling.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Ripple's member cache in ms (`RIPPLE_MEMBER_CACHE_MS`; 0: off, as deployed by default).
    #[arg(long, default_value_t = 0)]
    pub member_cache_ms: u64,
    /// Size of the ceiling's frames in bytes (default: one position update, ~150 bytes). Set it
    /// to Ripple's mean frame size to compare posting the same bytes.
    #[arg(long, default_value_t = 0)]
    pub ceiling_frame_bytes: usize,
    /// Timed rounds per strategy after its warm-up; the median wall time is reported.
    #[arg(long, default_value_t = DEFAULT_ROUNDS)]
    pub rounds: usize,
    /// Print exactly one JSON line (stdout) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// DynamoDB Local started for a bench, unless `endpoint` names one: (the process, its URL).
pub(super) async fn dynamodb(
    endpoint: &Option<String>,
    bench: &str,
) -> anyhow::Result<(Option<DynamoDbLocal>, String)> {
    if let Some(url) = endpoint {
        return Ok((None, url.clone()));
    }
    note(&format!("bench {bench}: starting DynamoDB Local"));
    let local = DynamoDbLocal::start()
        .await
        .context("starting DynamoDB Local")?;
    let url = local.endpoint.clone();
    Ok((Some(local), url))
}

/// Runs the three strategies and prints the results.
pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    args.scenario.validate()?;
    anyhow::ensure!(
        args.max_in_flight >= 1,
        "--max-in-flight must be at least 1"
    );
    anyhow::ensure!((1..=100).contains(&args.rounds), "--rounds must be 1-100");
    let (local, endpoint) = dynamodb(&args.dynamodb_endpoint, "fanout").await?;
    let results = run_on(&args, &endpoint).await;
    if let Some(local) = local {
        local.stop().await;
    }
    super::print(args.json, &results?, render);
    Ok(())
}

async fn run_on(args: &FanoutArgs, endpoint: &str) -> anyhow::Result<FanoutResults> {
    let s = &args.scenario;
    let table = unique_table_name("ripple-bench");
    let store = super::new_table(endpoint, &table)
        .await
        .with_context(|| format!("creating table {table} at {endpoint}"))?;
    let layout = Layout::synthetic(s.channels, s.members);
    let count = layout.connection_count();
    note(&format!(
        "bench fanout: seeding {count} connections with their memberships in {table}"
    ));
    let outcome = async {
        layout::seed(&store, &layout).await?;
        let mut query_seconds = Vec::new();
        for channel in &layout.channels {
            for _ in 0..WARM_QUERIES_PER_CHANNEL {
                let started = std::time::Instant::now();
                store.channel_members(&channel.name).await?;
                query_seconds.push(started.elapsed().as_secs_f64());
            }
        }
        let query_ms = median(&query_seconds) * 1000.0;
        note(&format!(
            "bench fanout: one channel's members Query takes {query_ms:.2} ms here (median of {})",
            query_seconds.len()
        ));
        let sink = LoopbackConnections::counting().await?;
        let (base_ts, mut ripple_posts) = (ripple_common::now_ms(), 0);
        let results = async {
            let mut results = Vec::with_capacity(3);
            for strategy in Strategy::ALL {
                let r = run_strategy(
                    args,
                    strategy,
                    endpoint,
                    &table,
                    &sink,
                    base_ts,
                    ripple_posts,
                )
                .await?;
                if strategy == Strategy::Ripple {
                    ripple_posts = r.posts;
                }
                results.push(r);
            }
            anyhow::Ok(results)
        }
        .await;
        sink.stop().await;
        let [ripple, naive, ceiling] = <[_; 3]>::try_from(results?)
            .map_err(|_| anyhow::anyhow!("a strategy did not report"))?;
        let summary = ScenarioSummary {
            channels: s.channels,
            members: s.members,
            records: s.records,
            message_ratio: s.message_ratio,
            users: s.senders(),
            max_in_flight: args.max_in_flight,
            rounds: args.rounds,
            member_query_ms: round(query_ms, 2),
        };
        anyhow::Ok(FanoutResults::new(summary, ripple, naive, ceiling))
    }
    .await;
    super::drop_table(&store).await;
    outcome
}

/// Runs one strategy's child and reports one round's worth of what it posted (every round posts
/// the same).
async fn run_strategy(
    args: &FanoutArgs,
    strategy: Strategy,
    endpoint: &str,
    table: &str,
    sink: &LoopbackConnections,
    base_ts: u64,
    ripple_posts: u64,
) -> anyhow::Result<StrategyResult> {
    let name = strategy.name();
    note(&format!("bench fanout: running {name} …"));
    let (out, tally) =
        run_child(args, strategy, endpoint, table, sink, base_ts, ripple_posts).await?;
    let rounds = out.walls.len().max(1) as u64;
    let (posts, bytes) = (tally.posts / rounds, tally.bytes / rounds);
    if out.posts_failed > 0 {
        note(&format!(
            "bench fanout: {name} had {} failed posts",
            out.posts_failed
        ));
    }
    let result = StrategyResult {
        records: out.records,
        recipients: tally.recipients.len(),
        updates_delivered: out.updates_delivered,
        posts,
        messages_billed: tally.messages_billed / rounds,
        wall_seconds: median(&out.walls),
        peak_rss_mb: out.peak_rss_mb,
        ..StrategyResult::default()
    }
    .derived();
    let walls: Vec<String> = out.walls.iter().map(|w| format!("{w:.4}")).collect();
    note(&format!(
        "bench fanout: {name} done: {} posts (mean {} bytes), median {:.4} s of {rounds} rounds ({}), peak RSS {:.1} MB",
        result.posts,
        bytes / posts.max(1),
        result.wall_seconds,
        walls.join(" "),
        result.peak_rss_mb
    ));
    Ok(result)
}

/// Runs `ripple bench fanout-run` for one strategy: lets it warm up, tells it to go, reads its
/// JSON line. Returns it with what the strategy posted after its warm-up.
async fn run_child(
    args: &FanoutArgs,
    strategy: Strategy,
    endpoint: &str,
    table: &str,
    sink: &LoopbackConnections,
    base_ts: u64,
    posts: u64,
) -> anyhow::Result<(RunOutput, Tally)> {
    let exe = std::env::current_exe().context("finding the ripple binary")?;
    let name = strategy.name();
    let spec = Spec {
        strategy,
        bench: args.clone(),
        dynamodb_endpoint: endpoint.to_owned(),
        table: table.to_owned(),
        connections_url: sink.url_for(name),
        base_ts,
        posts,
    };
    let mut command = tokio::process::Command::new(exe);
    command.args([
        "bench",
        "fanout-run",
        "--spec",
        &serde_json::to_string(&spec)?,
    ]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting the {name} run"))?;
    let (Some(stdout), Some(mut stdin)) = (child.stdout.take(), child.stdin.take()) else {
        anyhow::bail!("the {name} run has no stdin/stdout");
    };
    let exchange = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut warm = Tally::default();
        while let Some(line) = lines.next_line().await? {
            let line = line.trim();
            if line == WARM_LINE {
                warm = sink.tally(name);
                stdin.write_all(b"go\n").await?;
                stdin.flush().await?;
            } else if line.starts_with('{') {
                let out: RunOutput = serde_json::from_str(line)
                    .with_context(|| format!("reading the {name} run's result: {line}"))?;
                return anyhow::Ok((out, sink.tally(name).since(&warm)));
            }
        }
        anyhow::bail!("the {name} run printed no result")
    };
    let result = tokio::time::timeout(CHILD_TIMEOUT, exchange)
        .await
        .with_context(|| {
            format!(
                "the {name} run took longer than {} s",
                CHILD_TIMEOUT.as_secs()
            )
        })?;
    let status = child.wait().await?;
    let result = result?;
    anyhow::ensure!(status.success(), "the {name} run failed ({status})");
    Ok(result)
}
