//! API Gateway WebSocket proxy events, built in the exact JSON shape API Gateway sends to a
//! Lambda integration (`$connect`, message routes, `$disconnect`), then decoded into
//! `aws_lambda_events`' request type exactly as the Lambda runtime would.

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{Map, Value, json};

/// What API Gateway knows about a connection.
#[derive(Debug, Clone)]
pub struct WsContext {
    pub connection_id: String,
    /// `host:port` the client connected to (API Gateway's `domainName`).
    pub domain: String,
    pub stage: String,
    /// Connect time, ms since the epoch.
    pub connected_at: u64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// The routes API Gateway selects by `$request.body.action` (others go to `$default`).
pub const ROUTES: [&str; 4] = ["join", "leave", "position", "message"];

/// The route key API Gateway would pick for a message body.
pub fn route_key(body: &str) -> &'static str {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
    match action.as_deref() {
        Some(a) => ROUTES
            .iter()
            .find(|r| **r == a)
            .copied()
            .unwrap_or("$default"),
        None => "$default",
    }
}

fn request_time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S %z").to_string())
        .unwrap_or_default()
}

fn context(ctx: &WsContext, route_key: &str, event_type: &str, now_ms: u64) -> Map<String, Value> {
    let request_id = uuid_like(now_ms, &ctx.connection_id);
    let mut identity = json!({"sourceIp": ctx.source_ip});
    if let (Some(ua), Some(obj)) = (&ctx.user_agent, identity.as_object_mut()) {
        obj.insert("userAgent".into(), json!(ua));
    }
    let mut m = Map::new();
    m.insert("routeKey".into(), json!(route_key));
    m.insert("eventType".into(), json!(event_type));
    m.insert("extendedRequestId".into(), json!(request_id));
    m.insert("requestTime".into(), json!(request_time(now_ms)));
    m.insert("messageDirection".into(), json!("IN"));
    m.insert("stage".into(), json!(ctx.stage));
    m.insert("connectedAt".into(), json!(ctx.connected_at));
    m.insert("requestTimeEpoch".into(), json!(now_ms));
    m.insert("identity".into(), identity);
    m.insert("requestId".into(), json!(request_id));
    m.insert("domainName".into(), json!(ctx.domain));
    m.insert("connectionId".into(), json!(ctx.connection_id));
    m.insert("apiId".into(), json!("local"));
    m
}

fn uuid_like(now_ms: u64, seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes().chain(now_ms.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

fn decode(value: Value) -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
    serde_json::from_value(value).context("decoding an API Gateway WebSocket event")
}

/// The `$connect` event: headers and query string as API Gateway passes them.
pub fn connect_event(
    ctx: &WsContext,
    headers: &[(String, String)],
    query: &[(String, String)],
    now_ms: u64,
) -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
    let mut single_headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (k, v) in headers {
        single_headers.insert(k.clone(), json!(v));
        push_multi(&mut multi_headers, k, v);
    }
    let mut single_query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for (k, v) in query {
        single_query.insert(k.clone(), json!(v));
        push_multi(&mut multi_query, k, v);
    }
    let nullable = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    decode(json!({
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": nullable(single_query),
        "multiValueQueryStringParameters": nullable(multi_query),
        "requestContext": context(ctx, "$connect", "CONNECT", now_ms),
        "isBase64Encoded": false
    }))
}

fn push_multi(map: &mut Map<String, Value>, k: &str, v: &str) {
    match map.get_mut(k) {
        Some(Value::Array(list)) => list.push(json!(v)),
        _ => {
            map.insert(k.to_owned(), json!([v]));
        }
    }
}

/// A message event for `body`, routed by its `action`.
pub fn message_event(
    ctx: &WsContext,
    body: &str,
    now_ms: u64,
) -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
    let mut rc = context(ctx, route_key(body), "MESSAGE", now_ms);
    rc.insert(
        "messageId".into(),
        json!(uuid_like(now_ms ^ 0x5a5a, &ctx.connection_id)),
    );
    decode(json!({
        "requestContext": rc,
        "body": body,
        "isBase64Encoded": false
    }))
}

/// The `$disconnect` event.
pub fn disconnect_event(
    ctx: &WsContext,
    status: u16,
    reason: &str,
    now_ms: u64,
) -> anyhow::Result<ApiGatewayWebsocketProxyRequest> {
    let mut rc = context(ctx, "$disconnect", "DISCONNECT", now_ms);
    rc.insert("disconnectStatusCode".into(), json!(status));
    rc.insert("disconnectReason".into(), json!(reason));
    decode(json!({
        "headers": {"Host": ctx.domain, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
        "multiValueHeaders": {"Host": [ctx.domain]},
        "requestContext": rc,
        "isBase64Encoded": false
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_route_by_action_like_api_gateway() {
        assert_eq!(route_key(r#"{"action":"position"}"#), "position");
        assert_eq!(route_key(r#"{"action":"dance"}"#), "$default");
        assert_eq!(route_key("not json"), "$default");
    }

    #[test]
    fn a_connect_event_carries_every_channel() {
        let ctx = WsContext {
            connection_id: "abc=".into(),
            domain: "127.0.0.1:3001".into(),
            stage: "local".into(),
            connected_at: 1_700_000_000_000,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
        };
        let q = vec![
            ("channel".to_owned(), "a".to_owned()),
            ("channel".to_owned(), "b".to_owned()),
        ];
        let ev = connect_event(&ctx, &[], &q, 1_700_000_000_001).unwrap();
        assert_eq!(
            ev.multi_value_query_string_parameters.all("channel"),
            Some(vec!["a", "b"])
        );
        assert_eq!(ev.request_context.event_type.as_deref(), Some("CONNECT"));
        assert_eq!(ev.request_context.connected_at, 1_700_000_000_000);
    }
}
