//! API Gateway, played locally: WebSocket upgrades at `/` and `/{stage}` become `$connect`,
//! message and `$disconnect` events (in API Gateway's JSON shape) for the very handlers Lambda
//! runs; `@connections` POST / GET / DELETE act on the live sockets; API Gateway's limits apply
//! (128 KB messages, idle timeout, maximum duration).
//!
//! Strict as API Gateway is, by default:
//! - Every client frame is its own integration invocation, run concurrently with the others of
//!   its connection after a small random delay (`--frame-jitter`), so nothing is handled in the
//!   order it was sent unless the client waited for the answer; `--serial-frames` handles them
//!   one at a time instead. `$disconnect` does not wait for frames still being handled.
//! - `$disconnect` is best effort: `--fault disconnect-loss=P` loses that fraction of them,
//!   `disconnect-delay=MS` makes the others late; `POST /_local/vanish/{id}` makes a client
//!   vanish without a close (posts answer 200 and go nowhere, its frames never arrive) until the
//!   idle timeout closes it.
//! - A client frame over 32 KB closes the connection with 1009 (a message of up to 128 KB may
//!   come in several frames).
//! - `@connections` answers 429 `LimitExceededException` above the account's rate, shared by
//!   every caller (`--connections-rate`, 10,000 requests/s and bursts of 5,000 by default); a
//!   connection is known only under the stage it connected to (410 under another).
//! - A connection exists for `@connections` only once its `$connect` integration has returned
//!   200 *and* the upgrade has completed; until then POST and GET answer 410 GoneException, and
//!   nothing is queued for later. AWS knowledge center, "How do I troubleshoot 410 GoneException
//!   errors with API Gateway WebSocket APIs": "a message was posted to the WebSocket API before the
//!   connection was established". `--connect-delay MS` holds the upgrade that much longer after
//!   `$connect` returns (a slow handshake or network), posts still answered 410 meanwhile.
//! - Left out: the 29 s integration timeout, route selection expressions other than `action`,
//!   API keys and usage plans, IAM on `@connections` (no signature is checked).
//! - A client that does not read fills its queue ([`super::registry::OUTBOUND_FRAMES`] frames, as
//!   its socket's buffer fills on AWS); posts to it then answer 429 `LimitExceededException`.
//!   `POST /_local/stall/{id}` makes a client stop reading.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use futures::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use aws_lambda_events::encodings::Body;
use connect::ConnectState;
use ingest::IngestState;

use super::faults::Faults;
use super::registry::{Conn, Outgoing, Registry, new_connection_id};
use crate::apigw::{WsContext, connect_event, disconnect_event, message_event};

/// API Gateway's limit on a message, either way (the one constant, in the protocol).
pub use ripple_common::protocol::MAX_CLIENT_MESSAGE_BYTES as MAX_MESSAGE_BYTES;
/// API Gateway's limit on one WebSocket frame from a client (a message may span frames).
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
/// The account's `@connections` rate (API Gateway quotas: 10,000 requests/s per account and
/// Region, a bucket of 5,000).
pub const ACCOUNT_CONNECTIONS_RATE: u32 = 10_000;
/// Where a test makes a client vanish without a close.
pub const VANISH_PATH: &str = "/_local/vanish/{id}";
/// Where a test makes a client stop reading its socket.
pub const STALL_PATH: &str = "/_local/stall/{id}";

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Stage used for connections made at `/`.
    pub default_stage: String,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    /// How long the upgrade is held after `$connect` returned 200 (posts answer 410 meanwhile).
    pub connect_delay: Duration,
    /// Handle a connection's frames one at a time, in order (kinder than AWS).
    pub serial_frames: bool,
    /// Each concurrently handled frame waits a random time up to this first.
    pub frame_jitter: Duration,
    /// `@connections` requests per second for the whole account (every lane shares them).
    pub connections_rate: u32,
    /// Concurrently handled frames in flight at once, across all connections (0: no bound).
    pub ingest_concurrency: usize,
    /// Frames queued for a client that is not reading before posts to it answer 429.
    pub outbound_frames: usize,
}

/// How many client frames `ripple dev` handles at once. On AWS each is a Lambda invocation
/// (bounded by the account's concurrency); locally the bound keeps DynamoDB Local, which slows
/// down sharply under many concurrent writers, from falling behind its own stream. A frame takes
/// a slot before it is read on (at the bound, connections' frames wait in their sockets), then
/// waits its random delay: frames still run in no order.
pub const INGEST_CONCURRENCY: usize = 32;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            default_stage: "local".into(),
            idle_timeout: Duration::from_secs(600),
            max_duration: Duration::from_secs(7200),
            connect_delay: Duration::ZERO,
            serial_frames: false,
            frame_jitter: Duration::from_millis(10),
            connections_rate: ACCOUNT_CONNECTIONS_RATE,
            ingest_concurrency: INGEST_CONCURRENCY,
            outbound_frames: super::registry::OUTBOUND_FRAMES,
        }
    }
}

/// The account-wide `@connections` bucket: `rate` requests/s, bursts of half that (0: no limit).
pub fn account_limiter(rate: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    let per_second = std::num::NonZeroU32::new(rate)?;
    let burst = std::num::NonZeroU32::new(rate / 2).unwrap_or(per_second);
    Some(Arc::new(RateLimiter::direct(
        Quota::per_second(per_second).allow_burst(burst),
    )))
}

/// The slots of [`GatewayConfig::ingest_concurrency`] (0: no bound).
pub fn frame_slots(concurrency: usize) -> Option<Arc<tokio::sync::Semaphore>> {
    (concurrency > 0).then(|| Arc::new(tokio::sync::Semaphore::new(concurrency)))
}

/// Shared state of the gateway.
#[derive(Clone)]
pub struct Gateway {
    pub connect: ConnectState,
    pub ingest: IngestState,
    pub registry: Registry,
    pub config: GatewayConfig,
    pub faults: Faults,
    pub metrics: super::metrics::Metrics,
    /// [`account_limiter`] of `config.connections_rate`.
    pub account_limit: Option<Arc<DefaultDirectRateLimiter>>,
    /// [`frame_slots`] of `config.ingest_concurrency`.
    pub frame_slots: Option<Arc<tokio::sync::Semaphore>>,
}

const DEMO_HTML: &str = include_str!("../../assets/demo.html");

/// The router: WebSocket upgrades, `@connections`, the demo page, metrics.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/", get(upgrade_default))
        .route("/demo", get(|| async { Html(DEMO_HTML) }))
        .route("/metrics", get(metrics))
        .route("/@connections/{id}", any(connections_api))
        .route("/{stage}", get(upgrade_stage))
        .route("/{stage}/@connections/{id}", any(connections_api_staged))
        .route(VANISH_PATH, axum::routing::post(vanish))
        .route(STALL_PATH, axum::routing::post(stall))
        .with_state(Arc::new(gateway))
}

/// The client of `id` vanishes without a close: 204, or 404 for an unknown id.
async fn vanish(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> StatusCode {
    on_connection(&gw, &id, Conn::vanish)
}

/// Applies a test control to the connection `id`: 204, or 404 for an unknown id.
fn on_connection(gw: &Gateway, id: &str, control: impl FnOnce(&Conn)) -> StatusCode {
    match gw.registry.get(id) {
        Some(conn) => {
            control(&conn);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// The client of `id` stops reading its socket (a frozen tab, a stuck game loop): 204, or 404
/// for an unknown id. Its frames queue up to [`super::registry::OUTBOUND_FRAMES`], then posts
/// to it answer 429.
async fn stall(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> StatusCode {
    on_connection(&gw, &id, Conn::stall)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    (
        [("content-type", super::metrics::CONTENT_TYPE)],
        gw.metrics.render(gw.registry.len()),
    )
}

type Upgrade = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

async fn upgrade_default(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Upgrade,
) -> Response {
    let stage = gw.config.default_stage.clone();
    upgrade(gw, stage, peer, headers, query, ws).await
}

async fn upgrade_stage(
    State(gw): State<Arc<Gateway>>,
    Path(stage): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Upgrade,
) -> Response {
    if stage != gw.config.default_stage {
        return unknown_stage(&gw, &stage);
    }
    upgrade(gw, stage, peer, headers, query, ws).await
}

/// A path that is no stage of the API: 403 `ForbiddenException`, as API Gateway answers both a
/// WebSocket upgrade and an `@connections` request there. `ripple dev` serves one stage
/// (`--stage`); `/` is that stage too.
fn unknown_stage(gw: &Gateway, stage: &str) -> Response {
    aws_error(
        StatusCode::FORBIDDEN,
        "ForbiddenException",
        &format!(
            "Forbidden: `{stage}` is not a stage of this API (ripple dev serves `{}`)",
            gw.config.default_stage
        ),
    )
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (canonical_header(k.as_str()), v.to_owned()))
        })
        .collect()
}

/// `sec-websocket-key` → `Sec-WebSocket-Key`, as API Gateway presents header names.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
        .replace("Websocket", "WebSocket")
}

async fn upgrade(
    gw: Arc<Gateway>,
    stage: String,
    peer: SocketAddr,
    headers: HeaderMap,
    query: Option<String>,
    ws: Upgrade,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "Ripple: connect here with a WebSocket client, e.g. websocat 'ws://HOST/?user=alice&channel=arena'; or open /demo\n",
        )
            .into_response();
    };
    let now = ripple_common::now_ms();
    let connection_id = new_connection_id();
    let domain = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let user_agent = headers
        .get("user-agent")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let ctx = WsContext {
        connection_id: connection_id.clone(),
        domain,
        stage,
        connected_at: now,
        source_ip: peer.ip().to_string(),
        user_agent,
    };
    let pairs: Vec<(String, String)> = query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let event = match connect_event(&ctx, &header_pairs(&headers), &pairs, now) {
        Ok(e) => e,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let response = connect::handle(&gw.connect, event).await;
    if !(200..300).contains(&response.status_code) {
        gw.metrics.connect_rejected();
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match response.body {
            Some(Body::Text(t)) => t,
            _ => String::new(),
        };
        return (status, body).into_response();
    }
    gw.metrics.connected();
    let mut ws = ws
        .max_message_size(8 * MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    if let Some(protocol) = response
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
    {
        ws = ws.protocols([protocol.to_owned()]);
    }
    // The connection is not established yet: `@connections` answers 410 until the upgrade is
    // done (API Gateway does the same until `$connect` has returned and the handshake finished).
    if !gw.config.connect_delay.is_zero() {
        tokio::time::sleep(gw.config.connect_delay).await;
    }
    let failed_gw = Arc::clone(&gw);
    let failed_ctx = ctx.clone();
    ws.on_failed_upgrade(move |err| {
        tracing::warn!(error = %err, "WebSocket upgrade failed after $connect");
        tokio::spawn(
            async move { disconnect(&failed_gw, &failed_ctx, 1006, "upgrade failed").await },
        );
    })
    .on_upgrade(move |socket| async move {
        let (tx, rx) = mpsc::channel(gw.config.outbound_frames.max(1));
        gw.registry.insert(
            ctx.connection_id.clone(),
            Conn {
                tx,
                connected_at_ms: ctx.connected_at,
                last_active_ms: ripple_common::now_ms().into(),
                source_ip: ctx.source_ip.clone(),
                user_agent: ctx.user_agent.clone(),
                vanished: Default::default(),
                stalled: Default::default(),
                closing: Arc::default(),
            },
        );
        serve_socket(gw, ctx, socket, rx).await;
    })
}

/// The connection is gone for `@connections`; its `$disconnect` runs unless the fault loses it
/// (late when the fault delays it).
async fn disconnect(gw: &Gateway, ctx: &WsContext, status: u16, reason: &str) {
    gw.registry.remove(&ctx.connection_id);
    let closed_at = ripple_common::now_ms();
    let Some(delay) = gw.faults.disconnect_fate() else {
        tracing::info!(
            connection_id = ctx.connection_id,
            "$disconnect lost (fault)"
        );
        gw.metrics.disconnect_lost();
        return;
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match disconnect_event(ctx, status, reason, closed_at) {
        Ok(event) => {
            connect::handle(&gw.connect, event).await;
        }
        Err(err) => tracing::error!(error = %err, "could not build the $disconnect event"),
    }
}

/// One client frame through `ingest`, its answer (the route response) back to the sender.
async fn handle_frame(gw: &Gateway, ctx: &WsContext, body: Option<String>, now: u64) {
    let event = match body {
        Some(text) => message_event(ctx, &text, now),
        None => message_event(ctx, "", now).map(|mut e| {
            e.is_base64_encoded = true;
            e
        }),
    };
    let event = match event {
        Ok(e) => e,
        Err(err) => {
            tracing::error!(error = %err, "could not build the message event");
            return;
        }
    };
    let response = ingest::handle(&gw.ingest, event).await;
    let reply = |out: Outgoing| {
        if let Some(conn) = gw.registry.get(&ctx.connection_id) {
            conn.send(out);
        }
    };
    match response.body {
        Some(Body::Text(t)) => {
            gw.metrics.frame_answered(&t);
            reply(Outgoing::Text(t));
        }
        _ if response.status_code >= 500 => {
            gw.metrics.frame_failed();
            reply(Outgoing::Text(
                json!({"message": "Internal server error", "connectionId": ctx.connection_id})
                    .to_string(),
            ));
        }
        _ => gw.metrics.frame_accepted(),
    }
}

/// Is this read error tungstenite's refusal of a frame over [`MAX_FRAME_BYTES`]? Read from its
/// text: axum links its own tungstenite version, whose type this crate cannot name
/// (`CapacityError` displays as "Space limit exceeded: …"; dev_e2e's 1009 check fails if that
/// changes).
fn frame_too_big(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.to_string().contains("Space limit exceeded") {
            return true;
        }
        source = e.source();
    }
    false
}

fn to_message(out: Outgoing) -> Message {
    match out {
        Outgoing::Text(t) => Message::Text(t.into()),
        Outgoing::Binary(b) => Message::Binary(b.into()),
        Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

async fn serve_socket(
    gw: Arc<Gateway>,
    ctx: WsContext,
    socket: WebSocket,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let (mut sink, mut stream) = socket.split();
    // Not the `Conn` itself: its queue must close when the registry drops it.
    let (vanish_flag, stall_flag, closing) = gw
        .registry
        .get(&ctx.connection_id)
        .map(|c| {
            (
                Arc::clone(&c.vanished),
                Arc::clone(&c.stalled),
                Arc::clone(&c.closing),
            )
        })
        .unwrap_or_default();
    let vanished = move || vanish_flag.load(std::sync::atomic::Ordering::Relaxed);
    let writer_vanished = vanished.clone();
    let writer = tokio::spawn(async move {
        loop {
            if stall_flag.load(std::sync::atomic::Ordering::Relaxed) {
                // A client that stopped reading: its frames stay queued until the end.
                std::future::pending::<()>().await;
            }
            let Some(out) = rx.recv().await else { break };
            if writer_vanished() {
                // Nothing reaches a client that vanished, not even the close.
                continue;
            }
            let closing = matches!(out, Outgoing::Close(..));
            if sink.send(to_message(out)).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let reply = |out: Outgoing| {
        if let Some(conn) = gw.registry.get(&ctx.connection_id) {
            conn.send(out);
        }
    };
    let hard_deadline = Instant::now() + gw.config.max_duration;
    let mut idle_deadline = Instant::now() + gw.config.idle_timeout;
    let (status, reason) = loop {
        let deadline = idle_deadline.min(hard_deadline);
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, stream.next()) => next,
            () = closing.notified() => break (1000, "closed by @connections DELETE"),
        };
        let msg = match next {
            Err(_) if deadline == hard_deadline => {
                reply(Outgoing::Close(
                    1001,
                    "Going away: maximum connection duration".into(),
                ));
                break (1001, "maximum duration reached");
            }
            Err(_) => {
                reply(Outgoing::Close(1001, "Going away: idle timeout".into()));
                break (1001, "idle timeout");
            }
            Ok(None) => break (1006, "connection lost"),
            Ok(Some(Err(err))) if frame_too_big(&err) => {
                reply(Outgoing::Close(1009, "Frame too big".into()));
                break (1009, "frame too big");
            }
            Ok(Some(Err(err))) => {
                tracing::debug!(error = %err, "socket read failed");
                break (1006, "connection error");
            }
            Ok(Some(Ok(_))) if vanished() => continue,
            Ok(Some(Ok(msg))) => msg,
        };
        let now = ripple_common::now_ms();
        let body: Option<String> = match msg {
            Message::Text(t) => Some(t.to_string()),
            Message::Binary(b) => {
                if b.len() > MAX_MESSAGE_BYTES {
                    reply(Outgoing::Close(1009, "Message too big".into()));
                    break (1009, "message too big");
                }
                None
            }
            Message::Close(frame) => {
                let code = frame.as_ref().map_or(1005, |f| f.code);
                break (code, "client closed");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        idle_deadline = Instant::now() + gw.config.idle_timeout;
        if let Some(conn) = gw.registry.get(&ctx.connection_id) {
            conn.touch(now);
        }
        if body.as_ref().is_some_and(|b| b.len() > MAX_MESSAGE_BYTES) {
            reply(Outgoing::Close(1009, "Message too big".into()));
            break (1009, "message too big");
        }
        if gw.config.serial_frames {
            handle_frame(&gw, &ctx, body, now).await;
        } else {
            // Its own invocation, as on AWS: nothing orders it after the frames sent before.
            let jitter = gw.config.frame_jitter.mul_f64(rand::rng().random::<f64>());
            // A slot first, so that a stack at its bound stops reading (the clients' frames wait
            // in their sockets) instead of queueing without end.
            let slot = match &gw.frame_slots {
                Some(slots) => Arc::clone(slots).acquire_owned().await.ok(),
                None => None,
            };
            let (gw, ctx) = (Arc::clone(&gw), ctx.clone());
            tokio::spawn(async move {
                let _slot = slot;
                tokio::time::sleep(jitter).await;
                handle_frame(&gw, &ctx, body, now).await;
            });
        }
    };
    disconnect(&gw, &ctx, status, reason).await;
    gw.metrics.disconnected();
    // Dropping the registry entry closed the queue; the writer flushes the close frame and ends,
    // unless the client does not read: then the socket is dropped without it.
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

async fn connections_api(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    manage(&gw, &id, method, body).await
}

async fn connections_api_staged(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    if stage != gw.config.default_stage {
        return unknown_stage(&gw, &stage);
    }
    manage(&gw, &id, method, body).await
}

/// An error as API Gateway answers it: status, `x-amzn-errortype` and a JSON `message`.
pub(crate) fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut r = (status, json!({ "message": message }).to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(error_type) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn iso8601(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `@connections/{id}` as API Gateway answers it (`stage`: the one in the path; `/@connections`
/// without one is `ripple dev`'s shorthand for any stage).
async fn manage(gw: &Gateway, id: &str, method: axum::http::Method, body: Bytes) -> Response {
    use axum::http::Method;
    if let Some(limit) = &gw.account_limit
        && limit.check().is_err()
    {
        gw.metrics.connections_throttled();
        return aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Rate exceeded",
        );
    }
    if method == Method::POST
        && let Some(fault) = gw.faults.pick().await
    {
        gw.metrics.post_faulted();
        return fault.response();
    }
    let Some(conn) = gw.registry.get(id) else {
        if method == Method::POST {
            gw.metrics.post_gone();
        }
        return aws_error(StatusCode::GONE, "GoneException", "Gone");
    };
    match method {
        Method::POST => {
            if body.len() > MAX_MESSAGE_BYTES {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    "Message too long",
                );
            }
            if conn.has_vanished() {
                // Accepted by API Gateway, lost on the way to a client that is no longer there.
                gw.metrics.post_delivered(body.len());
                return StatusCode::OK.into_response();
            }
            let out = match String::from_utf8(body.to_vec()) {
                Ok(text) => Outgoing::Text(text),
                Err(e) => Outgoing::Binary(e.into_bytes()),
            };
            match conn.tx.try_send(out) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    gw.metrics.post_backlogged();
                    return aws_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "LimitExceededException",
                        "Rate exceeded",
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return aws_error(StatusCode::GONE, "GoneException", "Gone");
                }
            }
            gw.metrics.post_delivered(body.len());
            StatusCode::OK.into_response()
        }
        Method::GET => {
            let mut identity = json!({ "sourceIp": conn.source_ip });
            if let (Some(ua), Some(obj)) = (&conn.user_agent, identity.as_object_mut()) {
                obj.insert("userAgent".into(), json!(ua));
            }
            let body = json!({
                "connectedAt": iso8601(conn.connected_at_ms),
                "lastActiveAt": iso8601(conn.last_active()),
                "identity": identity,
            });
            ([("content-type", "application/json")], body.to_string()).into_response()
        }
        Method::DELETE => {
            // Gone for @connections at once, as on API Gateway; the socket loop runs $disconnect.
            gw.registry.remove(id);
            conn.send(Outgoing::Close(
                1000,
                "Closed by @connections DELETE".into(),
            ));
            conn.closing.notify_one();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequestException",
            "use POST, GET or DELETE",
        ),
    }
}
