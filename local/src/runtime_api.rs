//! A loopback Lambda Runtime API, and a function binary run behind it as Lambda runs it: the
//! packaged test (`tests/tests/packaged.rs`) and `ripple bench cold-start` use it.
//!
//! [`RuntimeApi`] serves the Runtime API's four routes (`GET /2018-06-01/runtime/invocation/next`,
//! `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error`, `POST …/init/error`), with
//! the headers Lambda sets (`Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`,
//! `-Invoked-Function-Arn`, `-Trace-Id`). [`RuntimeApi::invoke`] queues one event and waits for
//! the function's answer, so a caller sees what API Gateway or the stream mapping would see;
//! [`RuntimeApi::polled`] waits for the function to ask for its next event (the end of its init).
//! [`PackagedFunction`] is one running binary.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// How long an invocation may take before the test fails (a debug build's cold start included).
pub const INVOKE_WAIT: Duration = Duration::from_secs(60);

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST …/response`: the handler's JSON.
    Response(Value),
    /// `POST …/error`: the runtime's error document (`errorType`, `errorMessage`).
    Error(Value),
}

#[derive(Default)]
struct Queue {
    /// Events no `next` has taken yet: (request id, payload).
    pending: VecDeque<(String, Value)>,
    /// Invocations taken or pending, waiting for their answer.
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    /// The document of `POST /init/error`, once the function reported it could not start.
    init_error: Option<Value>,
    next_id: u64,
    /// `GET …/next` calls so far, and when the last one came.
    polls: u64,
    last_poll: Option<std::time::Instant>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Woken when an event is queued or an init error arrives.
    changed: Notify,
    function_name: String,
}

/// A loopback Lambda Runtime API for one function.
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    shared: Arc<Shared>,
    _shutdown: Arc<oneshot::Sender<()>>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish()
    }
}

const PREFIX: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start(function_name: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            function_name: function_name.to_owned(),
            ..Shared::default()
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/{{outcome}}"),
                post(outcome),
            )
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(Arc::clone(&shared));
        let (url, shutdown) = crate::connections_server::serve_on_loopback(app).await?;
        Ok(Self {
            address: url.trim_start_matches("http://").to_owned(),
            shared,
            _shutdown: shutdown,
        })
    }

    /// Queues `event` and waits for the function's answer; fails when the function reported an
    /// init error or nothing came within [`INVOKE_WAIT`].
    pub async fn invoke(&self, event: &Value) -> anyhow::Result<Outcome> {
        let (tx, rx) = oneshot::channel();
        {
            let mut q = self
                .shared
                .queue
                .lock()
                .map_err(|_| anyhow::anyhow!("runtime queue poisoned"))?;
            if let Some(doc) = &q.init_error {
                bail!(
                    "{} reported an init error: {doc}",
                    self.shared.function_name
                );
            }
            q.next_id += 1;
            let id = format!("{:08x}-0000-4000-8000-{:012x}", q.next_id, q.next_id);
            q.pending.push_back((id.clone(), event.clone()));
            q.waiting.insert(id, tx);
        }
        self.shared.changed.notify_waiters();
        let init_failed = async {
            loop {
                let notified = self.shared.changed.notified();
                let failed = self
                    .shared
                    .queue
                    .lock()
                    .ok()
                    .and_then(|q| q.init_error.clone());
                if let Some(doc) = failed {
                    return doc;
                }
                notified.await;
            }
        };
        tokio::select! {
            outcome = tokio::time::timeout(INVOKE_WAIT, rx) => outcome
                .with_context(|| format!("{} did not answer within {INVOKE_WAIT:?}", self.shared.function_name))?
                .context("the runtime API dropped the invocation"),
            doc = init_failed => bail!("{} reported an init error: {doc}", self.shared.function_name),
        }
    }

    /// Waits until the function has asked for its `n`-th event (`GET …/next`; the first ends its
    /// init) and returns when that last request came; fails on an init error or after
    /// [`INVOKE_WAIT`].
    pub async fn polled(&self, n: u64) -> anyhow::Result<std::time::Instant> {
        let name = &self.shared.function_name;
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                let (failed, polls, last) = {
                    let q = self.shared.queue.lock();
                    let q = q.map_err(|_| anyhow::anyhow!("runtime queue poisoned"))?;
                    (q.init_error.clone(), q.polls, q.last_poll)
                };
                if let Some(doc) = failed {
                    bail!("{name} reported an init error: {doc}");
                }
                if let (true, Some(at)) = (polls >= n, last) {
                    return Ok(at);
                }
                notified.await;
            }
        };
        tokio::time::timeout(INVOKE_WAIT, wait)
            .await
            .with_context(|| format!("{name} did not ask for an event within {INVOKE_WAIT:?}"))?
    }

    /// The init error the function reported, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.shared
            .queue
            .lock()
            .ok()
            .and_then(|q| q.init_error.clone())
    }
}

/// `GET /invocation/next`: long-polls until an event is queued.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(mut q) = shared.queue.lock() {
        q.polls += 1;
        q.last_poll = Some(std::time::Instant::now());
    }
    shared.changed.notify_waiters();
    loop {
        let notified = shared.changed.notified();
        let taken = shared
            .queue
            .lock()
            .ok()
            .and_then(|mut q| q.pending.pop_front());
        if let Some((id, event)) = taken {
            let deadline = ripple_common::now_ms() + INVOKE_WAIT.as_millis() as u64;
            let arn = format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                shared.function_name
            );
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", id.clone()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                ("lambda-runtime-invoked-function-arn", arn),
                (
                    "lambda-runtime-trace-id",
                    format!("Root=1-00000000-{id};Sampled=0"),
                ),
                ("content-type", "application/json".to_owned()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        notified.await;
    }
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let waiter = shared
        .queue
        .lock()
        .ok()
        .and_then(|mut q| q.waiting.remove(id));
    match waiter {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// `…/invocation/{id}/response` or `…/invocation/{id}/error`.
async fn outcome(
    State(shared): State<Arc<Shared>>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let body = json_or_text(&body);
    match kind.as_str() {
        "response" => answer(&shared, &id, Outcome::Response(body)),
        "error" => answer(&shared, &id, Outcome::Error(body)),
        _ => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut q) = shared.queue.lock() {
        q.init_error = Some(json_or_text(&body));
    }
    shared.changed.notify_waiters();
    StatusCode::ACCEPTED
}

/// One packaged function running against its own [`RuntimeApi`]; killed on drop.
pub struct PackagedFunction {
    pub api: RuntimeApi,
    /// When the process was spawned.
    pub started: std::time::Instant,
    child: tokio::process::Child,
    stderr: Arc<Mutex<String>>,
    /// The tasks copying stdout and stderr; they end when the process closes them.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for PackagedFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackagedFunction")
            .field("api", &self.api)
            .finish()
    }
}

impl PackagedFunction {
    /// Starts `bootstrap` with exactly `env` plus what the Lambda service sets (runtime API,
    /// function name and memory, dummy credentials, region, DynamoDB at `dynamodb_endpoint`).
    pub async fn start(
        name: &str,
        bootstrap: &Path,
        env: &[(String, String)],
        dynamodb_endpoint: &str,
    ) -> anyhow::Result<Self> {
        let api = RuntimeApi::start(name).await?;
        let mut cmd = tokio::process::Command::new(bootstrap);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_SESSION_TOKEN", "local")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // What the test adds: DynamoDB Local instead of the regional endpoint.
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = std::time::Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bootstrap.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&stderr);
            readers.push(tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            }));
        }
        Ok(Self {
            api,
            started,
            child,
            stderr,
            readers,
        })
    }

    /// Invokes the function with `event`; on failure the error carries the process's output.
    pub async fn invoke(&mut self, event: &Value) -> anyhow::Result<Outcome> {
        let result = tokio::select! {
            r = self.api.invoke(event) => r,
            status = self.child.wait() => {
                // Let the readers drain what the process wrote before it exited.
                for reader in self.readers.drain(..) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
                }
                Err(anyhow::anyhow!("the process exited: {status:?}"))
            }
        };
        result.with_context(|| format!("output so far:\n{}", self.output()))
    }

    /// Everything the process wrote to stdout and stderr (its logs and EMF lines).
    pub fn output(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
