//! `ripple bench cold-start`: each function binary started behind a loopback Lambda Runtime API
//! ([`crate::runtime_api`]) against DynamoDB Local and a loopback `@connections` server, timing
//! **init** (spawn to its first `GET …/next`: runtime set-up, SDK configuration, the warm-up calls
//! of `ripple_common::warm`), the **first** invocation and the **second** (warm) one. Times are
//! over loopback: AWS adds TLS and the network (the warm-up moves them into init), and runs init
//! at full CPU whatever the memory size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use ripple_common::config::Settings;
use ripple_common::deploy::ENV_RUST_LOG;
use serde::Serialize;
use serde_json::Value;

use super::batch::{self, Layout, build_json};
use super::{BenchTable, median, note, round};
use crate::apigw::{WsContext, connect_event, message_event};
use crate::connections_server::LoopbackConnections;
use crate::runtime_api::{Outcome, PackagedFunction};

/// `ripple bench cold-start`.
#[derive(Debug, Clone, Args)]
pub struct ColdStartArgs {
    /// Folder of the built function binaries (default: this executable's, e.g. target/release).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Cold starts per function; the median of each time is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    pub json: bool,
}

/// One function's times (ms, medians over the runs).
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub function: &'static str,
    pub init_ms: f64,
    pub first_invocation_ms: f64,
    pub second_invocation_ms: f64,
    pub runs: usize,
}

/// The `i`-th event `function` gets (from 1), as Lambda's JSON.
fn event(function: &str, i: u64, table: &str, layout: &Layout) -> anyhow::Result<Value> {
    let now = ripple_common::now_ms() + i;
    let (channel, member) = layout.members().next().context("no member")?;
    let ctx = |id: &str| WsContext {
        connection_id: id.to_owned(),
        domain: "127.0.0.1:1".to_owned(),
        stage: "local".to_owned(),
        connected_at: now,
        source_ip: "127.0.0.1".to_owned(),
        user_agent: None,
    };
    let user = format!("cold-{i}");
    let query = [("user", user.as_str()), ("channel", channel)].map(|(k, v)| (k.into(), v.into()));
    let frame = format!(r#"{{"action":"position","channel":"{channel}","x":1,"y":2,"seq":{i}}}"#);
    Ok(match function {
        "connect" => serde_json::to_value(connect_event(&ctx(&user), &[], &query, now)?)?,
        "ingest" => serde_json::to_value(message_event(&ctx(&member.connection_id), &frame, now)?)?,
        _ => serde_json::from_slice(&build_json(layout, 1, 0.0, 1, now, table)?)?,
    })
}

/// Times `event` to its answer (ms); fails unless the function answered without an error.
async fn invoke(f: &mut PackagedFunction, event: &Value) -> anyhow::Result<f64> {
    let handed = Instant::now();
    let outcome = f.invoke(event).await?;
    let ms = handed.elapsed().as_secs_f64() * 1000.0;
    let failures = |a: &Value| a["batchItemFailures"].as_array().map_or(0, Vec::len);
    match outcome {
        Outcome::Response(a) if a["statusCode"].as_u64() < Some(500) && failures(&a) == 0 => Ok(ms),
        other => bail!("the invocation failed: {other:?}"),
    }
}

/// Runs the cold starts and prints the results.
pub async fn run(args: ColdStartArgs) -> anyhow::Result<()> {
    let results = serde_json::to_value(measure(&args).await?)?;
    super::print(args.json, &results);
    Ok(())
}

/// Each function's times; fails when one does not start or answer.
pub async fn measure(args: &ColdStartArgs) -> anyhow::Result<Vec<ColdStart>> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let exe = std::env::current_exe()?;
    let dir = args.bin_dir.clone().or(exe.parent().map(Into::into));
    let dir: PathBuf = dir.context("this executable has no folder")?;
    let functions = ["connect", "ingest", "fanout"];
    for path in functions.map(|f| dir.join(f)) {
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: build the functions first (cargo build --release -p connect -p ingest -p fanout) or pass --bin-dir",
            path.display()
        );
    }
    let db = BenchTable::create(args.dynamodb_endpoint.as_deref(), "ripple-cold").await?;
    let results = cold_starts(args, &dir, &db).await;
    db.remove().await;
    results
}

/// Each function's cold starts against `db`.
async fn cold_starts(
    args: &ColdStartArgs,
    dir: &Path,
    db: &BenchTable,
) -> anyhow::Result<Vec<ColdStart>> {
    let (store, functions) = (&db.store, ["connect", "ingest", "fanout"]);
    let layout = Layout::synthetic(1, 10); // fanout's batch goes to a channel of 10
    batch::seed(store, &layout).await?;
    let sink = LoopbackConnections::counting().await?;
    // What the functions read: the table, the sink, and Terraform's defaults for the rest (the
    // events carry `?user=`: no identity provider here).
    let mut settings = Settings::for_table(store.table());
    settings.connections_endpoint = Some(sink.url_for("cold"));
    let env = settings.to_env().into_iter().map(|(k, v)| (k.into(), v));
    let mut env: Vec<(String, String)> = env.collect();
    env.push((ENV_RUST_LOG.into(), "warn".into()));
    let mut results = Vec::new();
    for function in functions {
        let mut times: [Vec<f64>; 3] = Default::default();
        for run in 1..=args.runs {
            note(&format!("bench cold-start: {function} {run}/{}", args.runs));
            let (name, binary) = (format!("ripple-{function}"), dir.join(function));
            let mut f = PackagedFunction::start(&name, &binary, &env, &db.endpoint).await?;
            let timed = async {
                let init = f.api.polled(1).await?.duration_since(f.started);
                let first = invoke(&mut f, &event(function, 1, store.table(), &layout)?).await?;
                f.api.polled(2).await?;
                let second = invoke(&mut f, &event(function, 2, store.table(), &layout)?).await?;
                anyhow::Ok([init.as_secs_f64() * 1000.0, first, second])
            };
            let t = timed.await.context(format!("cold start of {function}"))?;
            times.iter_mut().zip(t).for_each(|(v, t)| v.push(t));
        }
        let [init_ms, first_invocation_ms, second_invocation_ms] =
            times.map(|v| round(median(&v), 1));
        let runs = args.runs;
        results.push(ColdStart {
            function,
            init_ms,
            first_invocation_ms,
            second_invocation_ms,
            runs,
        });
    }
    sink.stop().await;
    Ok(results)
}
