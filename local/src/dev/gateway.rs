//! API Gateway, played locally: WebSocket upgrades at `/` and `/{stage}` become `$connect`,
//! message and `$disconnect` events (in API Gateway's JSON shape) for the very handlers Lambda
//! runs; `@connections` POST / GET / DELETE act on the live sockets; API Gateway's limits apply
//! (128 KB messages, idle timeout, maximum duration).
//!
//! Strict as API Gateway is, by default:
//! - A connection exists for `@connections` only once its `$connect` integration has returned
//!   200 *and* the upgrade has completed; until then POST and GET answer 410 GoneException, and
//!   nothing is queued for later. AWS knowledge center, "How do I troubleshoot 410 GoneException
//!   errors with API Gateway WebSocket APIs": "a message was posted to the WebSocket API before the
//!   connection was established". `--connect-delay MS` holds the upgrade that much longer after
//!   `$connect` returns (a slow handshake or network), posts still answered 410 meanwhile.
//! - Left out: the 29 s integration timeout, route selection expressions other than `action`,
//!   API keys and usage plans, the `@connections` account-wide 10,000 posts/s bucket (see
//!   `--fault throttle=` for 429s), and client-side buffering limits.

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

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Stage used for connections made at `/`.
    pub default_stage: String,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    /// How long the upgrade is held after `$connect` returned 200 (posts answer 410 meanwhile).
    pub connect_delay: Duration,
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
        .with_state(Arc::new(gateway))
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
    upgrade(gw, stage, peer, headers, query, ws).await
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
        .max_frame_size(8 * MAX_MESSAGE_BYTES);
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
        let (tx, rx) = mpsc::unbounded_channel();
        gw.registry.insert(
            ctx.connection_id.clone(),
            Conn {
                tx,
                connected_at_ms: ctx.connected_at,
                last_active_ms: ripple_common::now_ms().into(),
                source_ip: ctx.source_ip.clone(),
                user_agent: ctx.user_agent.clone(),
                closing: Arc::default(),
            },
        );
        serve_socket(gw, ctx, socket, rx).await;
    })
}

async fn disconnect(gw: &Gateway, ctx: &WsContext, status: u16, reason: &str) {
    gw.registry.remove(&ctx.connection_id);
    match disconnect_event(ctx, status, reason, ripple_common::now_ms()) {
        Ok(event) => {
            connect::handle(&gw.connect, event).await;
        }
        Err(err) => tracing::error!(error = %err, "could not build the $disconnect event"),
    }
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
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let closing = matches!(out, Outgoing::Close(..));
            if sink.send(to_message(out)).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let reply = |out: Outgoing| {
        if let Some(conn) = gw.registry.get(&ctx.connection_id) {
            let _ = conn.tx.send(out);
        }
    };
    let closing = gw
        .registry
        .get(&ctx.connection_id)
        .map(|c| Arc::clone(&c.closing))
        .unwrap_or_default();
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
            Ok(Some(Err(_))) => break (1006, "connection error"),
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
        let event = match body {
            Some(text) => message_event(&ctx, &text, now),
            None => message_event(&ctx, "", now).map(|mut e| {
                e.is_base64_encoded = true;
                e
            }),
        };
        let event = match event {
            Ok(e) => e,
            Err(err) => {
                tracing::error!(error = %err, "could not build the message event");
                continue;
            }
        };
        let response = ingest::handle(&gw.ingest, event).await;
        match response.body {
            Some(Body::Text(t)) => {
                gw.metrics.frame_refused(&t);
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
    };
    disconnect(&gw, &ctx, status, reason).await;
    gw.metrics.disconnected();
    // Dropping the registry entry closed the queue; the writer flushes the close frame and ends.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
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
    Path((_stage, id)): Path<(String, String)>,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    manage(&gw, &id, method, body).await
}

fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
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

/// `@connections/{id}` as API Gateway answers it.
async fn manage(gw: &Gateway, id: &str, method: axum::http::Method, body: Bytes) -> Response {
    use axum::http::Method;
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
            let out = match String::from_utf8(body.to_vec()) {
                Ok(text) => Outgoing::Text(text),
                Err(e) => Outgoing::Binary(e.into_bytes()),
            };
            if conn.tx.send(out).is_err() {
                return aws_error(StatusCode::GONE, "GoneException", "Gone");
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
            let _ = conn.tx.send(Outgoing::Close(
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
