//! A loopback `@connections` server (no sockets behind it), the one used by the benchmarks and
//! the tests; `ripple dev`'s gateway serves the real thing over its live sockets.
//!
//! A [`Mode::Record`] server is as strict as API Gateway: only ids marked live
//! ([`LoopbackConnections::mark_live`]) are connected; an id never marked live (unknown, or whose
//! `$connect` has not completed), `DELETE`d or marked gone answers 410 `GoneException` to every
//! call. A [`Mode::Count`] server (the benchmarks) calls every id connected except those marked
//! gone.
//!
//! Routes `/@connections/{id}` and `/{stage}/@connections/{id}`:
//! - `POST` draws a fault first (the same [`Faults`] as `ripple dev --fault`), answers 410 for
//!   ids not connected, 429 for ids marked throttled, and 413 above API Gateway's 128 KB, else
//!   200; every post answered 200 is counted per stage ([`Tally`]: posts, bytes, billed messages,
//!   recipients). A [`Mode::Record`] server also keeps the bodies per connection (what the tests
//!   assert on).
//! - `GET` answers 200 (connected) for every id ([`Mode::Count`]) or only for ids marked live
//!   ([`Mode::Record`]), else 410; the ids asked about are kept in order.
//! - `DELETE` is recorded; 204 for a live id (no longer live after), else 410.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ripple_common::config::local_sdk_config;
use ripple_common::connections::Connections;
use ripple_common::protocol::{MAX_CLIENT_MESSAGE_BYTES, billed_messages};
use serde_json::Value;

use crate::dev::faults::{FaultSpec, Faults};
use crate::dev::gateway::aws_error;

/// API Gateway's answer to a call for a connection it does not have.
fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "Gone")
}

/// What the server keeps and whom it calls connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Counts only, every connection connected (the benchmarks: no bodies held in memory).
    Count,
    /// Keeps every body; only ids marked live are connected, posts to others answer 410 (the
    /// tests).
    Record,
}

/// What was posted under one stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub posts: u64,
    pub bytes: u64,
    /// Sum over posts of [`billed_messages`].
    pub messages_billed: u64,
    pub recipients: HashSet<String>,
}

impl Tally {
    /// What was posted since `earlier` (distinct recipients: all of them so far).
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            posts: self.posts.saturating_sub(earlier.posts),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            messages_billed: self.messages_billed.saturating_sub(earlier.messages_billed),
            recipients: self.recipients.clone(),
        }
    }
}

#[derive(Debug)]
struct Recorded {
    mode: Mode,
    /// Per stage ("" for `/@connections/...`).
    tallies: HashMap<String, Tally>,
    posts: HashMap<String, Vec<Bytes>>,
    gone: HashSet<String>,
    /// Ids whose posts answer 429 (a client that does not read its socket).
    throttled: HashSet<String>,
    faults: Faults,
    attempts: usize,
    live: HashSet<String>,
    deleted: Vec<String>,
    checked: Vec<String>,
}

type Shared = Arc<Mutex<Recorded>>;

/// The running server; it stops when the last clone is dropped (or at [`Self::stop`]).
#[derive(Debug, Clone)]
pub struct LoopbackConnections {
    /// Base URL: `@connections` is at `{url}/@connections` and `{url}/{stage}/@connections`.
    pub url: String,
    state: Shared,
    _shutdown: Arc<tokio::sync::oneshot::Sender<()>>,
}

fn id_and_stage(params: &HashMap<String, String>) -> (String, String) {
    (
        params.get("id").cloned().unwrap_or_default(),
        params.get("stage").cloned().unwrap_or_default(),
    )
}

async fn on_post(
    State(state): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (id, stage) = id_and_stage(&params);
    let faults = match state.lock() {
        Ok(mut rec) => {
            rec.attempts += 1;
            rec.faults.clone()
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // The same fault injection `ripple dev --fault` uses (latency, then 429 / 500 / 410).
    if let Some(fault) = faults.pick().await {
        return fault.response();
    }
    let Ok(mut rec) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // API Gateway answers 410 to an id it does not know or has not established yet.
    if rec.gone.contains(&id) || (rec.mode == Mode::Record && !rec.live.contains(&id)) {
        return gone();
    }
    if rec.throttled.contains(&id) {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    if body.len() > MAX_CLIENT_MESSAGE_BYTES {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let tally = rec.tallies.entry(stage).or_default();
    tally.posts += 1;
    tally.bytes += body.len() as u64;
    tally.messages_billed += billed_messages(body.len());
    if !tally.recipients.contains(&id) {
        tally.recipients.insert(id.clone());
    }
    if rec.mode == Mode::Record {
        rec.posts.entry(id).or_default().push(body);
    }
    StatusCode::OK.into_response()
}

async fn on_get(
    State(state): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let (id, _) = id_and_stage(&params);
    let live = state
        .lock()
        .map(|mut rec| {
            let live = rec.mode == Mode::Count || rec.live.contains(&id);
            rec.checked.push(id);
            live
        })
        .unwrap_or(false);
    if live {
        let body = r#"{"connectedAt":"2026-11-21T22:00:00.000Z","lastActiveAt":"2026-11-21T22:00:00.000Z","identity":{"sourceIp":"127.0.0.1"}}"#;
        ([("content-type", "application/json")], body).into_response()
    } else {
        gone()
    }
}

async fn on_delete(
    State(state): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let (id, _) = id_and_stage(&params);
    let Ok(mut rec) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    rec.deleted.push(id.clone());
    if rec.live.remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

impl LoopbackConnections {
    /// A recording server ([`Mode::Record`]) on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in(Mode::Record).await
    }

    /// A counting server ([`Mode::Count`]) on a free loopback port.
    pub async fn counting() -> anyhow::Result<Self> {
        Self::start_in(Mode::Count).await
    }

    pub async fn start_in(mode: Mode) -> anyhow::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(Recorded {
            mode,
            tallies: HashMap::new(),
            posts: HashMap::new(),
            gone: HashSet::new(),
            throttled: HashSet::new(),
            faults: Faults::default(),
            attempts: 0,
            live: HashSet::new(),
            deleted: Vec::new(),
            checked: Vec::new(),
        }));
        let api = || post(on_post).get(on_get).delete(on_delete);
        let app = Router::new()
            .route("/@connections/{id}", api())
            .route("/{stage}/@connections/{id}", api())
            .with_state(Arc::clone(&state));
        let (url, shutdown) = serve_on_loopback(app).await?;
        Ok(Self {
            url,
            state,
            _shutdown: shutdown,
        })
    }

    /// Stops listening (once no clone is left).
    pub async fn stop(self) {
        drop(self);
    }

    /// The `@connections` base URL of `stage` (the benchmarks use one stage per strategy).
    pub fn url_for(&self, stage: &str) -> String {
        format!("{}/{stage}", self.url)
    }

    /// What was posted under `stage` so far.
    pub fn tally(&self, stage: &str) -> Tally {
        self.state
            .lock()
            .ok()
            .and_then(|rec| rec.tallies.get(stage).cloned())
            .unwrap_or_default()
    }

    /// From now on, posts draw faults from `spec` (see `ripple dev --fault`).
    pub fn inject(&self, spec: FaultSpec) {
        if let Ok(mut rec) = self.state.lock() {
            rec.faults = Faults::new(spec);
        }
    }

    /// Every POST received, faulted ones included.
    pub fn attempts(&self) -> usize {
        self.state.lock().map(|rec| rec.attempts).unwrap_or(0)
    }

    /// `connection_id` is connected: `GET` reports it, posts to it are delivered
    /// ([`Mode::Record`]: until it is `DELETE`d or marked gone).
    pub fn mark_live(&self, connection_id: &str) {
        if let Ok(mut rec) = self.state.lock() {
            rec.live.insert(connection_id.to_owned());
        }
    }

    /// Ids `DELETE`d so far.
    pub fn deleted(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|rec| rec.deleted.clone())
            .unwrap_or_default()
    }

    /// Ids `GET` asked about so far, in order.
    pub fn checked(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|rec| rec.checked.clone())
            .unwrap_or_default()
    }

    /// From now on, posts to `connection_id` answer 410 Gone (and, [`Mode::Record`], `GET` and
    /// `DELETE` too: it is no longer live).
    pub fn mark_gone(&self, connection_id: &str) {
        if let Ok(mut rec) = self.state.lock() {
            rec.live.remove(connection_id);
            rec.gone.insert(connection_id.to_owned());
        }
    }

    /// From now on, posts to `connection_id` answer 429: its client does not read its socket.
    pub fn mark_throttled(&self, connection_id: &str) {
        if let Ok(mut rec) = self.state.lock() {
            rec.throttled.insert(connection_id.to_owned());
        }
    }

    /// The frames posted to a connection, in order, parsed as JSON ([`Mode::Record`]).
    pub fn frames(&self, connection_id: &str) -> Vec<Value> {
        self.raw_frames(connection_id)
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
            .collect()
    }

    /// The bodies posted to a connection, in order ([`Mode::Record`]).
    pub fn raw_frames(&self, connection_id: &str) -> Vec<Bytes> {
        self.state
            .lock()
            .map(|rec| rec.posts.get(connection_id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every event (inside `events` frames) posted to a connection, in order.
    pub fn events(&self, connection_id: &str) -> Vec<Value> {
        self.frames(connection_id)
            .into_iter()
            .filter(|f| f["type"] == "events")
            .flat_map(|f| f["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Total posts answered 200.
    pub fn post_count(&self) -> usize {
        self.state
            .lock()
            .map(|rec| rec.tallies.values().map(|t| t.posts as usize).sum())
            .unwrap_or(0)
    }

    /// A `@connections` client pointed at this server (as `RIPPLE_CONNECTIONS_ENDPOINT` would).
    pub fn client(&self) -> Connections {
        Connections::new(local_sdk_config(), Some(self.url.clone()))
    }
}

/// Serves `app` on a free loopback port until the returned sender (and its clones) are dropped;
/// returns the base URL (`http://127.0.0.1:{port}`).
pub async fn serve_on_loopback(
    app: Router,
) -> anyhow::Result<(String, Arc<tokio::sync::oneshot::Sender<()>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "a loopback server stopped");
        }
    });
    Ok((url, Arc::new(tx)))
}
