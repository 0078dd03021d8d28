//! `ripple bench`: Ripple's cost and speed, measured on this machine and reproducible by anyone.
//!
//! - `ripple bench fanout` fans one synthetic stream batch out three ways (Ripple's fanout, the
//!   samples' naive fan-out, a raw HTTP ceiling) and compares posts, billed messages, speed and
//!   peak memory.
//! - `ripple bench e2e` plays N players over real WebSockets against `ripple dev` and reports
//!   write→receive latency, messages per update, DynamoDB usage and a cost estimate.
//! - `ripple bench cold-start` times each function binary's init and first invocations.
//!
//! | module | what it holds |
//! |---|---|
//! | [`fanout`] | `bench fanout`: the shared table and `@connections` server, one child process per strategy |
//! | [`strategies`] | the three strategies, run by the hidden `bench fanout-run` child |
//! | [`batch`] | the synthetic stream batch, in Lambda's exact JSON shape |
//! | [`layout`] | channels and member connections, seeded as `connect` writes them |
//! | [`report`] | `bench fanout` results: derived fields, ratios, targets, the text table |
//! | [`e2e`] | `bench e2e`: `ripple dev` in-process, the run and its progress line |
//! | [`e2e_report`] | `bench e2e` results: the JSON line and the readable report |
//! | [`players`] | simulated players: WebSocket clients sending positions and timing what they receive |
//! | [`remote`] | `bench e2e --url`: the same players against an already running stack, bounded, cost confirmed first |
//! | [`cold_start`] | `bench cold-start`: each function binary's init and first calls behind a loopback Runtime API |
//! | [`calibrate`] | measuring the ingest and fanout handlers' time per invocation, for the Lambda cost |
//! | [`estimate`] | `bench e2e`'s DynamoDB, Lambda and cost estimate from the counters |
//! | [`cost`] | the price list and the bill |
//! | [`logs`] | what the functions would print to CloudWatch Logs in a `bench e2e` run |
//! | [`units`] | billing units: 32 KB messages, DynamoDB capacity units, item sizes |
//! | [`latency`] | the latency histogram and its percentiles |
//! | [`svg`] | the latency histogram as a hand-written SVG |
//! | [`rss`] | peak resident memory (`VmHWM`) |

pub mod batch;
pub mod calibrate;
pub mod cold_start;
pub mod cost;
pub mod e2e;
pub mod e2e_report;
pub mod estimate;
pub mod fanout;
pub mod latency;
pub mod layout;
pub mod logs;
pub mod players;
pub mod remote;
pub mod report;
pub mod rss;
pub mod strategies;
pub mod svg;
pub mod units;

use std::io::Write;

use clap::Subcommand;
use tracing_subscriber::EnvFilter;

/// `ripple bench …`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Fan one synthetic stream batch out three ways (Ripple, the samples' naive fan-out, a raw
    /// HTTP ceiling) against DynamoDB Local and a loopback @connections server.
    Fanout(fanout::FanoutArgs),
    /// Players over real WebSockets against `ripple dev`: latency, messages per update,
    /// DynamoDB usage and cost per million delivered updates.
    E2e(e2e::E2eArgs),
    /// Each function binary's init time and first invocations, behind a loopback Lambda Runtime
    /// API against DynamoDB Local.
    ColdStart(cold_start::ColdStartArgs),
    /// One strategy of `bench fanout`, in its own process (used by `bench fanout`).
    #[command(hide = true)]
    FanoutRun(strategies::RunArgs),
}

/// Runs a bench. Logs go to stderr (default level `warn`, `RUST_LOG` overrides); stdout carries
/// only the results.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_target(false)
        .compact()
        .try_init();
    match command {
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::E2e(args) => e2e::run(args).await,
        BenchCommand::ColdStart(args) => cold_start::run(args).await,
        BenchCommand::FanoutRun(args) => strategies::run(args).await,
    }
}

/// A progress note on stderr.
pub(crate) fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// A table name no other run uses.
pub(crate) fn unique_table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos:x}-{}", std::process::id())
}

/// Deletes a table a bench made for itself (best effort: DynamoDB Local is in memory anyway).
pub(crate) async fn drop_table(store: &ripple_common::store::Store, table: &str) {
    if let Err(err) = store.client().delete_table().table_name(table).send().await {
        tracing::debug!(error = %err, table, "could not delete the bench table");
    }
}
