//! `ripple bench`: Ripple's cost and speed, measured on this machine and reproducible by anyone.
//!
//! - `ripple bench fanout` fans one synthetic stream batch out three ways (Ripple's fanout, the
//!   samples' naive fan-out, a raw HTTP ceiling) and compares posts, billed messages, speed and
//!   peak memory.
//! - `ripple bench e2e` plays N players over real WebSockets against `ripple dev` (or, with
//!   `--url`, a running stack) and reports write→receive latency, messages per update, DynamoDB
//!   usage and a cost estimate.
//! - `ripple bench isolation` has healthy users chat through a storm of sick connections
//!   (aborted, flapping, not reading) on one shard, and fails unless each line reaches each of
//!   them once and their p99 stays within max(2×, +750 ms) of the calm phase's.
//! - `ripple bench cold-start` times each function binary's init and first invocations.
//!
//! | module | what it holds |
//! |---|---|
//! | [`fanout`] | `bench fanout`: the three strategies, each in a child process, and their results |
//! | [`batch`] | the synthetic workload: channels of members, seeded, and a stream batch in Lambda's JSON |
//! | [`e2e`] | `bench e2e`: `ripple dev` in-process, its results, the handlers' timing for the Lambda cost |
//! | [`players`] | simulated players ([`crate::wsclient::WsClient`]s) and what they measured |
//! | [`remote`] | `bench e2e --url`: the same players against a running stack, bounded, cost confirmed first |
//! | [`isolation`] | `bench isolation`: healthy chat beside aborted, flapping and non-reading connections |
//! | [`cold_start`] | `bench cold-start`: each function binary behind [`crate::runtime_api`] |
//! | [`cost`] | the cost model: usage from the counters (DynamoDB, Lambda, logs), prices, the bill |
//! | [`histogram`] | latencies (`hdrhistogram`) and their SVG picture (`plotters`) |
//!
//! Every bench prints its results as JSON on stdout (`scripts/bench.sh` turns them into the
//! README's tables) and its progress on stderr (`indicatif`).

pub mod batch;
pub mod cold_start;
pub mod cost;
pub mod e2e;
pub mod fanout;
pub mod histogram;
pub mod isolation;
pub mod players;
pub mod remote;

use anyhow::Context;
use clap::Subcommand;
use ripple_common::config::{dynamodb_client, local_sdk_config};
use ripple_common::store::Store;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

use crate::dynamodb_local::DynamoDbLocal;

/// `ripple bench …`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Fan one synthetic stream batch out three ways (Ripple, the samples' naive fan-out, a raw
    /// HTTP ceiling) against DynamoDB Local and a loopback @connections server.
    Fanout(fanout::FanoutArgs),
    /// Players over real WebSockets against `ripple dev`: latency, messages per update,
    /// DynamoDB usage and cost per million delivered updates.
    E2e(e2e::E2eArgs),
    /// Healthy users chat in one channel, calm and then beside a storm of sick connections
    /// (aborted, flapping, not reading) with every `$disconnect` lost; fails unless each line
    /// reaches each of them once and their p99 stays within max(2×, +750 ms) of the calm one.
    Isolation(isolation::IsolationArgs),
    /// Each function binary's init time and first invocations, behind a loopback Lambda Runtime
    /// API against DynamoDB Local.
    ColdStart(cold_start::ColdStartArgs),
    /// One strategy of `bench fanout`, in its own process (used by `bench fanout`).
    #[command(hide = true)]
    FanoutRun(fanout::RunArgs),
}

/// Runs a bench. Logs go to stderr (default level `warn`, `RUST_LOG` overrides).
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .compact()
        .try_init();
    match command {
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::E2e(args) => e2e::run(args).await,
        BenchCommand::Isolation(args) => isolation::run(args).await,
        BenchCommand::ColdStart(args) => cold_start::run(args).await,
        BenchCommand::FanoutRun(args) => fanout::run_child(args).await,
    }
}

/// A progress note on stderr.
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// Prints `results` on stdout: one JSON line with `--json`, indented JSON otherwise (the same
/// keys, in the same order; the README's tables are made from these by `scripts/bench.sh`).
pub(crate) fn print(json: bool, results: &Value) {
    let text = if json {
        results.to_string()
    } else {
        serde_json::to_string_pretty(results).unwrap_or_default()
    };
    println!("{text}");
}

/// A table name no other run uses.
pub(crate) fn unique_table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{nanos:x}-{}", std::process::id())
}

/// A bench's own table (named `{prefix}-…`), on `endpoint` or on a DynamoDB Local started for it.
pub(crate) struct BenchTable {
    pub store: Store,
    pub endpoint: String,
    local: Option<DynamoDbLocal>,
}

impl BenchTable {
    pub async fn create(endpoint: Option<&str>, prefix: &str) -> anyhow::Result<Self> {
        let local = if endpoint.is_none() {
            note(&format!("bench: starting DynamoDB Local for {prefix}"));
            Some(
                DynamoDbLocal::start()
                    .await
                    .context("starting DynamoDB Local")?,
            )
        } else {
            None
        };
        let endpoint = local.as_ref().map_or(endpoint, |l| Some(&l.endpoint));
        let endpoint = endpoint.unwrap_or_default().to_owned();
        let client = dynamodb_client(&local_sdk_config(), Some(&endpoint));
        let store = Store::new(client, unique_table_name(prefix));
        let table = Self {
            store,
            endpoint,
            local,
        };
        match table.store.create_table_if_missing().await {
            Ok(_) => Ok(table),
            Err(err) => {
                table.remove().await;
                Err(anyhow::Error::new(err).context(format!("creating a table for {prefix}")))
            }
        }
    }

    /// Deletes the table (best effort: DynamoDB Local is in memory anyway) and stops the
    /// DynamoDB Local started for it.
    pub async fn remove(self) {
        let (client, table) = (self.store.client(), self.store.table());
        if let Err(err) = client.delete_table().table_name(table).send().await {
            tracing::debug!(error = %err, table, "could not delete the bench table");
        }
        if let Some(local) = self.local {
            local.stop().await;
        }
    }
}

/// The JSON object `into` with the fields of the object `fields` added.
pub(crate) fn merged(mut into: Value, fields: Value) -> Value {
    if let (Some(into), Value::Object(fields)) = (into.as_object_mut(), fields) {
        into.extend(fields);
    }
    into
}

/// Rounds to `digits` decimals (the JSON stays readable).
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_of_the_rounds() {
        // GIVEN wall times with an outlier WHEN the median is taken THEN the outlier is ignored
        assert_eq!(median(&[0.9, 0.01, 0.02]), 0.02);
        assert_eq!(median(&[0.04, 0.01, 0.02, 0.03]), 0.025);
        let medians = [&[][..], &[5.0, 1.0, 3.0], &[4.0, 1.0, 3.0, 2.0]].map(median);
        assert_eq!(medians, [0.0, 3.0, 2.5]);
    }
}
