//! `ripple bench cold-start`: each function binary's init time and first invocations, locally.
//!
//! Each run starts the built binary (`connect`, `ingest`, `fanout`, next to this executable)
//! behind a minimal Lambda Runtime API on loopback, as Lambda would: `GET …/invocation/next`
//! hands out one event, `POST …/invocation/{id}/response` takes the answer. Against DynamoDB
//! Local (and, for fanout, the bench's loopback `@connections` server):
//!
//! - **init**: from spawning the process to its first `GET …/next` (runtime set-up, the AWS
//!   SDK's configuration, and the warm-up calls of `ripple_common::warm`);
//! - **first**: from handing over the first event to its response;
//! - **second**: the same for the next event (a warm invocation), for comparison.
//!
//! Times are on this machine, over loopback: AWS adds the TLS handshake and the network, which
//! the warm-up moves into init; on AWS, init also runs at full CPU whatever the memory size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Args;
use ripple_common::config::{dynamodb_client, local_sdk_config};
use ripple_common::store::Store;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::layout::{self, Layout};
use super::{note, unique_table_name};
use crate::apigw::{WsContext, connect_event, message_event};
use crate::connections_server::LoopbackConnections;
use crate::dynamodb_local::DynamoDbLocal;
use ripple_common::config::{
    DEFAULT_CONNECTION_TTL_SECS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MESSAGE_RATE,
    DEFAULT_MESSAGE_TTL_SECS, DEFAULT_POSITION_RATE, DEFAULT_POSITION_TTL_SECS,
    DEFAULT_POSTS_PER_SECOND, DEFAULT_RESUME_WINDOW_SECS,
};

/// Longest wait for an init or an invocation before the run fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
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

/// What the Runtime API saw.
#[derive(Debug)]
enum Seen {
    /// `GET …/next`, at this instant.
    Next(Instant),
    /// `POST …/{id}/response` or `…/error`, at this instant.
    Answered {
        at: Instant,
        error: bool,
        body: Bytes,
    },
    /// `POST …/init/error`.
    InitError(Bytes),
}

struct Runtime {
    seen: mpsc::UnboundedSender<Seen>,
    events: Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> axum::response::Response {
    let _ = rt.seen.send(Seen::Next(Instant::now()));
    let Some((id, body)) = rt.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = ripple_common::now_ms() + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:ripple-bench".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    (headers, body).into_response()
}

async fn response(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    let _ = rt.seen.send(Seen::Answered {
        at: Instant::now(),
        error: false,
        body,
    });
    StatusCode::ACCEPTED
}

async fn error(
    State(rt): State<Arc<Runtime>>,
    UrlPath(_id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let _ = rt.seen.send(Seen::Answered {
        at: Instant::now(),
        error: true,
        body,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    let _ = rt.seen.send(Seen::InitError(body));
    StatusCode::ACCEPTED
}

/// A minimal Lambda Runtime API on a free loopback port.
struct RuntimeApi {
    addr: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    events: mpsc::UnboundedSender<(String, Vec<u8>)>,
    stop: Option<oneshot::Sender<()>>,
}

impl RuntimeApi {
    async fn start() -> anyhow::Result<Self> {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let rt = Arc::new(Runtime {
            seen: seen_tx,
            events: Mutex::new(events_rx),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(rt);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            seen,
            events,
            stop: Some(stop),
        })
    }

    async fn wait(&mut self) -> anyhow::Result<Seen> {
        match tokio::time::timeout(STEP_TIMEOUT, self.seen.recv()).await {
            Ok(Some(seen)) => Ok(seen),
            Ok(None) => bail!("the Runtime API stopped"),
            Err(_) => bail!("the function did not call the Runtime API within {STEP_TIMEOUT:?}"),
        }
    }

    /// Waits for the next `GET …/next`.
    async fn wait_next(&mut self) -> anyhow::Result<Instant> {
        match self.wait().await? {
            Seen::Next(at) => Ok(at),
            Seen::InitError(body) => bail!("init failed: {}", String::from_utf8_lossy(&body)),
            other => bail!("expected GET …/next, got {other:?}"),
        }
    }

    /// Hands over `event` and times it to its answer (ms).
    async fn invoke(&mut self, id: &str, event: Vec<u8>) -> anyhow::Result<f64> {
        let handed = Instant::now();
        self.events
            .send((id.to_owned(), event))
            .map_err(|_| anyhow::anyhow!("the Runtime API stopped"))?;
        match self.wait().await? {
            Seen::Answered { at, error, body } => {
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let status = answer["statusCode"].as_u64().unwrap_or(200);
                let failures = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                if error || status >= 500 || failures > 0 {
                    bail!("the invocation failed: {}", String::from_utf8_lossy(&body));
                }
                Ok(at.duration_since(handed).as_secs_f64() * 1000.0)
            }
            other => bail!("expected a response, got {other:?}"),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The folder of the function binaries.
fn bin_dir(args: &ColdStartArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("this executable has no folder")
}

/// The two events a function gets: `(first, second)`, as Lambda's JSON.
fn events(
    function: &str,
    table: &str,
    layout: &Layout,
    addr: &str,
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let now = ripple_common::now_ms();
    let ctx = |id: &str| WsContext {
        connection_id: id.to_owned(),
        domain: addr.to_owned(),
        stage: "local".to_owned(),
        connected_at: now,
        source_ip: "127.0.0.1".to_owned(),
        user_agent: None,
    };
    let member = layout
        .channels
        .first()
        .and_then(|c| c.members.first().map(|m| (c.name.clone(), m.clone())))
        .context("the layout has no member")?;
    Ok(match function {
        "connect" => {
            let query = |user: &str| {
                vec![
                    ("user".to_owned(), user.to_owned()),
                    ("channel".to_owned(), member.0.clone()),
                ]
            };
            (
                serde_json::to_vec(&connect_event(&ctx("cold-a="), &[], &query("cold-a"), now)?)?,
                serde_json::to_vec(&connect_event(&ctx("cold-b="), &[], &query("cold-b"), now)?)?,
            )
        }
        "ingest" => {
            let frame = |seq: u64| {
                format!(
                    r#"{{"action":"position","channel":"{}","x":1,"y":2,"seq":{seq}}}"#,
                    member.0
                )
            };
            let id = member.1.connection_id.as_str();
            (
                serde_json::to_vec(&message_event(&ctx(id), &frame(1), now)?)?,
                serde_json::to_vec(&message_event(&ctx(id), &frame(2), now + 1)?)?,
            )
        }
        _ => (
            super::batch::build_json(layout, 1, 0.0, 1, now, table)?,
            super::batch::build_json(layout, 1, 0.0, 1, now + 1, table)?,
        ),
    })
}

/// One cold start of `function`: (init, first, second) in ms.
async fn cold_start(
    binary: &Path,
    function: &'static str,
    env: &HashMap<&'static str, String>,
    table: &str,
    layout: &Layout,
) -> anyhow::Result<(f64, f64, f64)> {
    let mut api = RuntimeApi::start().await?;
    let (first, second) = events(function, table, layout, &api.addr)?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("ripple-{function}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let result = async {
        let init = api.wait_next().await?.duration_since(started);
        let first = api.invoke("cold-1", first).await?;
        api.wait_next().await?;
        let second = api.invoke("cold-2", second).await?;
        anyhow::Ok((init.as_secs_f64() * 1000.0, first, second))
    }
    .await;
    let _ = child.kill().await;
    result.with_context(|| format!("cold start of {function}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Runs the cold starts and prints the results.
pub async fn run(args: ColdStartArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    let dir = bin_dir(&args)?;
    let binaries: Vec<(&'static str, PathBuf)> = ["connect", "ingest", "fanout"]
        .into_iter()
        .map(|f| (f, dir.join(f)))
        .collect();
    for (_, path) in &binaries {
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: build the functions first (cargo build --release -p connect -p ingest -p fanout) or pass --bin-dir",
            path.display()
        );
    }
    let local = match &args.dynamodb_endpoint {
        Some(_) => None,
        None => {
            note("bench cold-start: starting DynamoDB Local");
            Some(DynamoDbLocal::start().await?)
        }
    };
    let endpoint = args
        .dynamodb_endpoint
        .clone()
        .or_else(|| local.as_ref().map(|l| l.endpoint.clone()))
        .context("no DynamoDB endpoint")?;
    let table = unique_table_name("ripple-cold");
    let store = Store::new(
        dynamodb_client(&local_sdk_config(), Some(&endpoint)),
        table.clone(),
    );
    store.create_table_if_missing().await?;
    let layout = Layout::synthetic(1, FANOUT_MEMBERS);
    layout::seed(&store, &layout).await?;
    let sink = LoopbackConnections::counting().await?;

    // What Lambda sets, plus what the functions read; the keys are DynamoDB Local's dummies.
    let mut env: HashMap<&'static str, String> = HashMap::from([
        ("RIPPLE_TABLE", table.clone()),
        ("RIPPLE_CONNECTIONS_ENDPOINT", sink.url_for("cold")),
        // Terraform's defaults for the rest of what it always sets (`env_required`).
        (
            "RIPPLE_CONNECTION_TTL_SECS",
            DEFAULT_CONNECTION_TTL_SECS.to_string(),
        ),
        (
            "RIPPLE_RESUME_WINDOW_SECS",
            DEFAULT_RESUME_WINDOW_SECS.to_string(),
        ),
        (
            "RIPPLE_POSITION_TTL_SECS",
            DEFAULT_POSITION_TTL_SECS.to_string(),
        ),
        (
            "RIPPLE_MESSAGE_TTL_SECS",
            DEFAULT_MESSAGE_TTL_SECS.to_string(),
        ),
        ("RIPPLE_POSITION_RATE", DEFAULT_POSITION_RATE.to_string()),
        ("RIPPLE_MESSAGE_RATE", DEFAULT_MESSAGE_RATE.to_string()),
        ("RIPPLE_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT.to_string()),
        (
            "RIPPLE_POSTS_PER_SECOND",
            DEFAULT_POSTS_PER_SECOND.to_string(),
        ),
        ("RIPPLE_MEMBER_CACHE_MS", "0".to_owned()),
        // The events carry `?user=`: no identity provider on loopback.
        ("RIPPLE_ALLOW_ANONYMOUS", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/ripple-bench".to_owned(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]);
    if let Ok(path) = std::env::var("PATH") {
        env.insert("PATH", path);
    }

    let mut results = Vec::new();
    for (function, binary) in &binaries {
        let (mut init, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs {
            note(&format!(
                "bench cold-start: {function} {}/{}",
                run + 1,
                args.runs
            ));
            let (i, f, s) = cold_start(binary, function, &env, &table, &layout).await?;
            init.push(i);
            first.push(f);
            second.push(s);
        }
        results.push(ColdStart {
            function,
            init_ms: round1(median(init)),
            first_invocation_ms: round1(median(first)),
            second_invocation_ms: round1(median(second)),
            runs: args.runs,
        });
    }
    super::drop_table(&store, &table).await;
    sink.stop().await;

    if args.json {
        println!("{}", serde_json::to_string(&results)?);
    } else {
        println!(
            "{:<8} {:>10} {:>18} {:>19}",
            "function", "init ms", "first call ms", "second call ms"
        );
        for r in &results {
            println!(
                "{:<8} {:>10.1} {:>18.1} {:>19.1}",
                r.function, r.init_ms, r.first_invocation_ms, r.second_invocation_ms
            );
        }
        println!(
            "(medians of {} cold starts per function; loopback, DynamoDB Local; bins from {})",
            args.runs,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
