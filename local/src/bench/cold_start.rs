//! `ripple bench cold-start`: each function binary's init time and first invocations, locally.
//!
//! Each run starts the built binary (`connect`, `ingest`, `fanout`, next to this executable)
//! behind a loopback Lambda Runtime API ([`crate::runtime_api`]), as Lambda would, against
//! DynamoDB Local (and, for fanout, the bench's loopback `@connections` server):
//!
//! - **init**: from spawning the process to its first `GET …/next` (runtime set-up, the AWS
//!   SDK's configuration, and the warm-up calls of `ripple_common::warm`);
//! - **first**: from handing over the first event to its response;
//! - **second**: the same for the next event (a warm invocation), for comparison.
//!
//! Times are on this machine, over loopback: AWS adds the TLS handshake and the network, which
//! the warm-up moves into init; on AWS, init also runs at full CPU whatever the memory size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use ripple_common::config as c;
use ripple_common::deploy as d;
use serde::Serialize;
use serde_json::Value;

use super::layout::{self, Layout};
use super::{median, note, round, unique_table_name};
use crate::apigw::{WsContext, connect_event, message_event};
use crate::connections_server::LoopbackConnections;
use crate::runtime_api::{Outcome, PackagedFunction};

/// Members of fanout's channel in its test batch.
const FANOUT_MEMBERS: usize = 10;

/// `ripple bench cold-start`.
#[derive(Debug, Clone, Args)]
pub struct ColdStartArgs {
    /// Folder of the built function binaries (default: this executable's folder, e.g.
    /// target/release after `cargo build --release`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Cold starts per function; the median of each time is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print exactly one JSON line (stdout) instead of the table.
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

/// The two events a function gets, as Lambda's JSON.
fn events(function: &str, table: &str, layout: &Layout, addr: &str) -> anyhow::Result<[Value; 2]> {
    let now = ripple_common::now_ms();
    let ctx = |id: &str| WsContext {
        connection_id: id.to_owned(),
        domain: addr.to_owned(),
        stage: "local".to_owned(),
        connected_at: now,
        source_ip: "127.0.0.1".to_owned(),
        user_agent: None,
    };
    let (channel, member) = layout
        .members()
        .next()
        .context("the layout has no member")?;
    let connect = |id: &str, user: &str| {
        let query =
            [("user", user), ("channel", channel)].map(|(k, v)| (k.to_owned(), v.to_owned()));
        anyhow::Ok(serde_json::to_value(connect_event(
            &ctx(id),
            &[],
            &query,
            now,
        )?)?)
    };
    let ingest = |seq: u64| {
        let frame =
            format!(r#"{{"action":"position","channel":"{channel}","x":1,"y":2,"seq":{seq}}}"#);
        anyhow::Ok(serde_json::to_value(message_event(
            &ctx(&member.connection_id),
            &frame,
            now + seq - 1,
        )?)?)
    };
    let fanout = |ts| {
        anyhow::Ok(serde_json::from_slice(&super::batch::build_json(
            layout, 1, 0.0, 1, ts, table,
        )?)?)
    };
    Ok(match function {
        "connect" => [connect("cold-a=", "cold-a")?, connect("cold-b=", "cold-b")?],
        "ingest" => [ingest(1)?, ingest(2)?],
        _ => [fanout(now)?, fanout(now + 1)?],
    })
}

/// Times `event` to its answer (ms); fails unless the function answered without an error.
async fn invoke(f: &mut PackagedFunction, event: &Value) -> anyhow::Result<f64> {
    let handed = Instant::now();
    let outcome = f.invoke(event).await?;
    let ms = handed.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Response(answer)
            if answer["statusCode"].as_u64().unwrap_or(200) < 500
                && answer["batchItemFailures"]
                    .as_array()
                    .is_none_or(Vec::is_empty) =>
        {
            Ok(ms)
        }
        other => bail!("the invocation failed: {other:?}"),
    }
}

/// One cold start of `function`: (init, first, second) in ms.
async fn cold_start(
    binary: &Path,
    function: &'static str,
    env: &[(String, String)],
    endpoint: &str,
    (table, layout): (&str, &Layout),
) -> anyhow::Result<[f64; 3]> {
    let mut f =
        PackagedFunction::start(&format!("ripple-{function}"), binary, env, endpoint).await?;
    let [first, second] = events(function, table, layout, &f.api.address)?;
    let result = async {
        let init = f
            .api
            .polled(1)
            .await?
            .duration_since(f.started)
            .as_secs_f64()
            * 1000.0;
        let first = invoke(&mut f, &first).await?;
        f.api.polled(2).await?;
        anyhow::Ok([init, first, invoke(&mut f, &second).await?])
    };
    result
        .await
        .with_context(|| format!("cold start of {function}"))
}

/// Runs the cold starts and prints the results.
pub async fn run(args: ColdStartArgs) -> anyhow::Result<()> {
    let (dir, results) = measure(&args).await?;
    let title = format!(
        "ripple bench cold-start: medians of {} cold starts per function; loopback, DynamoDB Local; bins from {}",
        args.runs,
        dir.display()
    );
    super::print(args.json, &results, |r| super::report(&title, r));
    Ok(())
}

/// Runs the cold starts: the binaries' folder, and each function's times. Fails when a function
/// does not start or answers an invocation with an error.
pub async fn measure(args: &ColdStartArgs) -> anyhow::Result<(PathBuf, Vec<ColdStart>)> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .context("this executable has no folder")?,
    };
    let functions = ["connect", "ingest", "fanout"];
    for path in functions.map(|f| dir.join(f)) {
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: build the functions first (cargo build --release -p connect -p ingest -p fanout) or pass --bin-dir",
            path.display()
        );
    }
    let (local, endpoint) = super::fanout::dynamodb(&args.dynamodb_endpoint, "cold-start").await?;
    let store = super::new_table(&endpoint, &unique_table_name("ripple-cold")).await?;
    let layout = Layout::synthetic(1, FANOUT_MEMBERS);
    layout::seed(&store, &layout).await?;
    let sink = LoopbackConnections::counting().await?;
    // What the functions read: the table, the sink, and Terraform's defaults for the rest of what
    // it always sets (`env_required`); the events carry `?user=` (no identity provider here).
    let env = [
        (d::ENV_TABLE, store.table().to_owned()),
        (d::ENV_CONNECTIONS_ENDPOINT, sink.url_for("cold")),
        (
            d::ENV_CONNECTION_TTL_SECS,
            c::DEFAULT_CONNECTION_TTL_SECS.to_string(),
        ),
        (
            d::ENV_RESUME_WINDOW_SECS,
            c::DEFAULT_RESUME_WINDOW_SECS.to_string(),
        ),
        (
            d::ENV_POSITION_TTL_SECS,
            c::DEFAULT_POSITION_TTL_SECS.to_string(),
        ),
        (
            d::ENV_MESSAGE_TTL_SECS,
            c::DEFAULT_MESSAGE_TTL_SECS.to_string(),
        ),
        (d::ENV_POSITION_RATE, c::DEFAULT_POSITION_RATE.to_string()),
        (d::ENV_MESSAGE_RATE, c::DEFAULT_MESSAGE_RATE.to_string()),
        (d::ENV_MAX_IN_FLIGHT, c::DEFAULT_MAX_IN_FLIGHT.to_string()),
        (
            d::ENV_POSTS_PER_SECOND,
            c::DEFAULT_POSTS_PER_SECOND.to_string(),
        ),
        (d::ENV_MEMBER_CACHE_MS, "0".to_owned()),
        (d::ENV_ALLOW_ANONYMOUS, "true".to_owned()),
        (d::ENV_RUST_LOG, "warn".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let mut results = Vec::new();
    for function in functions {
        let mut times: [Vec<f64>; 3] = Default::default();
        for run in 0..args.runs {
            note(&format!(
                "bench cold-start: {function} {}/{}",
                run + 1,
                args.runs
            ));
            let t = cold_start(
                &dir.join(function),
                function,
                &env,
                &endpoint,
                (store.table(), &layout),
            )
            .await?;
            times.iter_mut().zip(t).for_each(|(v, t)| v.push(t));
        }
        let [init_ms, first_invocation_ms, second_invocation_ms] =
            times.map(|v| round(median(&v), 1));
        results.push(ColdStart {
            function,
            init_ms,
            first_invocation_ms,
            second_invocation_ms,
            runs: args.runs,
        });
    }
    super::drop_table(&store).await;
    sink.stop().await;
    if let Some(local) = local {
        local.stop().await;
    }
    Ok((dir, results))
}
