//! Test harness: real parts on loopback.
//!
//! - [`TestTable`]: a fresh table (stream, TTL, index) in DynamoDB Local, reached with the real
//!   SDK client. One DynamoDB Local serves a whole run when `RIPPLE_TEST_DYNAMODB_ENDPOINT` is set
//!   (the README's test command starts it); otherwise each test starts its own.
//! - [`RecordingConnections`]: a real HTTP `@connections` server (the benchmarks' one, in its
//!   recording mode) that records every post and, as API Gateway, answers 410 to ids not marked
//!   live ([`seed_live`] seeds and marks one) or marked gone.
//! - [`fixture`]: recorded DynamoDB Streams events in the exact JSON shape Lambda delivers.
//! - [`runtime_api`]: the packaged `bootstrap` binaries behind a loopback Lambda Runtime API.

pub mod runtime_api;

use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::dynamodb::Event;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use ripple::dynamodb_local::DynamoDbLocal;
use ripple::stream::{StartAt, StreamReader, streams_client};
use ripple_common::config::{Settings, dynamodb_client, local_sdk_config};
use ripple_common::store::Store;
use serde_json::Value;

/// A fresh table in DynamoDB Local.
#[derive(Debug)]
pub struct TestTable {
    pub store: Store,
    pub endpoint: String,
    pub settings: Settings,
    pub stream: StreamReader,
    _own: Option<DynamoDbLocal>,
}

impl TestTable {
    pub async fn new() -> anyhow::Result<Self> {
        let (endpoint, own) = match std::env::var("RIPPLE_TEST_DYNAMODB_ENDPOINT") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let local = DynamoDbLocal::start().await?;
                (local.endpoint.clone(), Some(local))
            }
        };
        let sdk = local_sdk_config();
        let table = format!("ripple-test-{}", uuid_suffix());
        let store = Store::new(dynamodb_client(&sdk, Some(&endpoint)), table.clone());
        store.create_table_if_missing().await?;
        let arn = store
            .stream_arn()
            .await?
            .context("the table has no stream")?;
        let stream = StreamReader::new(
            streams_client(&sdk, Some(&endpoint)),
            arn,
            StartAt::TrimHorizon,
        );
        Ok(Self {
            store,
            endpoint,
            settings: Settings::for_table(table),
            stream,
            _own: own,
        })
    }

    /// Every stream record written since the last call, as a Lambda event.
    pub async fn take_stream_event(&mut self) -> anyhow::Result<Event> {
        let mut event = Event::default();
        // Records may take a moment to show on the stream; read until two empty polls in a row.
        let mut empty = 0;
        while empty < 2 {
            let got = self.stream.poll(1000).await?;
            if got.is_empty() {
                empty += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            } else {
                empty = 0;
                event.records.extend(got);
            }
        }
        Ok(event)
    }

    /// Number of items in a connection's partition (connection + memberships).
    pub async fn connection_item_count(&self, connection_id: &str) -> anyhow::Result<usize> {
        let out = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(ripple_common::keys::connection_pk(
                    connection_id,
                )),
            )
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.items.unwrap_or_default().len())
    }

    /// Number of items in the whole table (tests only: a Scan is fine here, never in Ripple).
    pub async fn item_count(&self) -> anyhow::Result<usize> {
        let out = self
            .store
            .client()
            .scan()
            .table_name(self.store.table())
            .send()
            .await?;
        Ok(out.items.unwrap_or_default().len())
    }
}

fn uuid_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{}", nanos, std::process::id())
}

/// The loopback `@connections` server of the benchmarks, recording every post.
pub use ripple::connections_server::LoopbackConnections as RecordingConnections;
pub(crate) use ripple::connections_server::serve_on_loopback;

/// Loads `tests/fixtures/{name}` (a Lambda DynamoDB Streams event), replacing `{{key}}`
/// placeholders so one recording serves tests with different table names or ids.
pub fn fixture(name: &str, replacements: &[(&str, &str)]) -> anyhow::Result<Event> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (k, v) in replacements {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    serde_json::from_str(&text)
        .with_context(|| format!("decoding {} as a Lambda DynamoDB event", path.display()))
}

/// A loopback HTTP proxy in front of DynamoDB Local that answers 500 `InternalServerError` to
/// every request whose body contains a chosen text (for example a channel name), and forwards
/// everything else. It makes real DynamoDB calls fail for one channel only; [`Self::slow`]
/// makes them slow instead.
#[derive(Debug, Clone)]
pub struct FaultyDynamo {
    pub endpoint: String,
    failing: Arc<std::sync::atomic::AtomicBool>,
    _shutdown: Arc<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    fail_when_contains: String,
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// Forward matching requests after this long instead of failing them.
    delay: Option<std::time::Duration>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

async fn proxy(
    State(st): State<ProxyState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let matching = st.failing.load(std::sync::atomic::Ordering::Relaxed)
        && bytes
            .windows(st.fail_when_contains.len().max(1))
            .any(|w| w == st.fail_when_contains.as_bytes());
    if let (true, Some(delay)) = (matching, st.delay) {
        tokio::time::sleep(delay).await;
    } else if matching {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test proxy"}"#;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/x-amz-json-1.0")],
            body,
        )
            .into_response();
    }
    let uri = format!(
        "{}{}",
        st.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = http::Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        forward = forward.header(k, v);
    }
    let Ok(forward) = forward.body(http_body_util::Full::new(bytes)) else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    match st.client.request(forward).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match http_body_util::BodyExt::collect(body).await {
                Ok(collected) => axum::response::Response::from_parts(
                    parts,
                    axum::body::Body::from(collected.to_bytes()),
                ),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

impl FaultyDynamo {
    pub async fn start(upstream: &str, fail_when_contains: &str) -> anyhow::Result<Self> {
        Self::serve(upstream, fail_when_contains, None).await
    }

    /// The proxy forwarding requests that contain `contains` after `delay` (a slow partition).
    pub async fn slow(
        upstream: &str,
        contains: &str,
        delay: std::time::Duration,
    ) -> anyhow::Result<Self> {
        Self::serve(upstream, contains, Some(delay)).await
    }

    async fn serve(
        upstream: &str,
        fail_when_contains: &str,
        delay: Option<std::time::Duration>,
    ) -> anyhow::Result<Self> {
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            fail_when_contains: fail_when_contains.to_owned(),
            failing: Arc::clone(&failing),
            delay,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        };
        let app = Router::new().fallback(proxy).with_state(state);
        let (endpoint, shutdown) = serve_on_loopback(app).await?;
        Ok(Self {
            endpoint,
            failing,
            _shutdown: shutdown,
        })
    }

    /// The outage is over: forward everything from now on.
    pub fn heal(&self) {
        self.failing
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// The outage is back: fail matching requests again.
    pub fn break_again(&self) {
        self.failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A store on the same table, reached through this proxy.
    pub fn store(&self, table: &TestTable) -> Store {
        Store::new(
            dynamodb_client(&local_sdk_config(), Some(&self.endpoint)),
            table.store.table(),
        )
    }
}

/// `ripple dev`'s default options with the handlers' settings changed by `change` (e.g. a JWT
/// secret, higher publish rates).
pub fn dev_options(change: impl FnOnce(&mut Settings)) -> ripple::dev::DevOptions {
    let mut opts = ripple::dev::DevOptions::default();
    change(&mut opts.settings);
    opts
}

/// `ripple dev` in-process on a free port, on the run's DynamoDB Local when there is one.
pub async fn start_dev(
    mut opts: ripple::dev::DevOptions,
) -> anyhow::Result<ripple::dev::DevServer> {
    opts.port = 0;
    opts.settings.table = format!("ripple-dev-{}", uuid_suffix());
    if opts.dynamodb_endpoint.is_none() {
        opts.dynamodb_endpoint = std::env::var("RIPPLE_TEST_DYNAMODB_ENDPOINT")
            .ok()
            .filter(|u| !u.is_empty());
    }
    ripple::dev::DevServer::start(opts).await
}

pub use ripple::wsclient::{E2E_WAIT, WsClient};

pub use ripple::loopback_http::request as http;

/// What API Gateway knows of a test connection (loopback, stage `local`).
pub fn ws_context(connection_id: &str) -> ripple::apigw::WsContext {
    ripple::apigw::WsContext {
        connection_id: connection_id.into(),
        domain: "127.0.0.1:1".into(),
        stage: "local".into(),
        connected_at: ripple_common::now_ms(),
        source_ip: "127.0.0.1".into(),
        user_agent: None,
    }
}

/// Stores a connection and its memberships as `connect` would, and as fanout leaves them once
/// the connection has had its `welcome` (marked, memberships in their rosters).
pub async fn seed(
    table: &TestTable,
    connection_id: &str,
    user: &str,
    channels: &[&str],
) -> anyhow::Result<()> {
    ripple::seed::welcomed_connection(&table.store, &seed_item(connection_id, user), channels, 1)
        .await?;
    Ok(())
}

/// [`seed`], and the connection is established on `server` (marked live): posts to it are
/// delivered. Without it the server answers 410, as API Gateway does to an id it does not have.
pub async fn seed_live(
    table: &TestTable,
    server: &RecordingConnections,
    connection_id: &str,
    user: &str,
    channels: &[&str],
) -> anyhow::Result<()> {
    seed(table, connection_id, user, channels).await?;
    server.mark_live(connection_id);
    Ok(())
}

/// [`seed_live`] for each `(connection id, user, channel)`.
pub async fn seed_members(
    table: &TestTable,
    server: &RecordingConnections,
    members: &[(&str, &str, &str)],
) -> anyhow::Result<()> {
    for (connection_id, user, channel) in members {
        seed_live(table, server, connection_id, user, &[channel]).await?;
    }
    Ok(())
}

/// alice and bob in arena, as `(connection id, user, channel)` for [`seed_members`].
pub const ALICE_AND_BOB_IN_ARENA: [(&str, &str, &str); 2] =
    [("c-alice", "alice", "arena"), ("c-bob", "bob", "arena")];

/// The members of `fixtures/stream-two-channels.json`: alice and bob in arena, carol and frank
/// in lobby.
pub const TWO_CHANNELS: [(&str, &str, &str); 4] = [
    ("c-alice", "alice", "arena"),
    ("c-bob", "bob", "arena"),
    ("c-carol", "carol", "lobby"),
    ("c-frank", "frank", "lobby"),
];

/// A fresh table and recording server, with `members` seeded live ([`seed_members`]).
pub async fn table_with_members(
    members: &[(&str, &str, &str)],
) -> anyhow::Result<(TestTable, RecordingConnections)> {
    let table = TestTable::new().await?;
    let server = RecordingConnections::start().await?;
    seed_members(&table, &server, members).await?;
    Ok((table, server))
}

/// The connection item [`seed`] and [`seed_new`] store.
fn seed_item(connection_id: &str, user: &str) -> ripple_common::items::ConnectionItem {
    let endpoint = ripple_common::items::Endpoint {
        domain: "abc.execute-api.us-east-1.amazonaws.com".into(),
        stage: "prod".into(),
    };
    ripple_common::items::ConnectionItem::new(
        connection_id,
        user,
        &endpoint,
        // Connected long ago (days): the sweep examines it, a 410 is proof it is gone.
        1_795_000_000_000,
        4_000_000_000,
    )
}

/// Stores a connection and its memberships exactly as `connect` does: not welcomed yet, in no
/// roster. A [`RecordingConnections`] answers 410 to it (not established yet) until it is
/// marked live.
pub async fn seed_new(
    table: &TestTable,
    connection_id: &str,
    user: &str,
    channels: &[&str],
) -> anyhow::Result<Vec<ripple_common::items::MemberItem>> {
    Ok(
        ripple::seed::connection(&table.store, &seed_item(connection_id, user), channels, 1)
            .await?,
    )
}

/// The value of `ripple dev`'s counter `name` (as `/metrics` names it, without `ripple_`).
pub fn dev_counter(server: &ripple::dev::DevServer, name: &str) -> u64 {
    server
        .metrics
        .snapshot()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map_or(0, |(_, _, v)| v)
}

/// A client of `server` connected with `query` (e.g. `user=alice&channel=arena`).
pub async fn connect(server: &ripple::dev::DevServer, query: &str) -> anyhow::Result<WsClient> {
    WsClient::connect(&ws_url(server, query)).await
}

/// The two-player set-up: `ripple dev` (default options) with alice and bob connected to
/// `channel` (their snapshots not yet read: wait for them when the roster must be settled).
pub async fn dev_with_alice_and_bob(
    channel: &str,
) -> anyhow::Result<(ripple::dev::DevServer, WsClient, WsClient)> {
    dev_with_alice_and_bob_on(ripple::dev::DevOptions::default(), channel).await
}

/// [`dev_with_alice_and_bob`] on a `ripple dev` started with `opts`.
pub async fn dev_with_alice_and_bob_on(
    opts: ripple::dev::DevOptions,
    channel: &str,
) -> anyhow::Result<(ripple::dev::DevServer, WsClient, WsClient)> {
    let server = start_dev(opts).await?;
    let alice = connect(&server, &format!("user=alice&channel={channel}")).await?;
    let bob = connect(&server, &format!("user=bob&channel={channel}")).await?;
    Ok((server, alice, bob))
}

/// The WebSocket URL of a `ripple dev` with a query string, e.g. `user=alice&channel=arena`.
pub fn ws_url(server: &ripple::dev::DevServer, query: &str) -> String {
    format!("{}/?{query}", server.ws_url())
}

/// A JSON document (a JWKS) served by plain HTTP on loopback, the way an identity provider
/// publishes its keys; stops when dropped.
#[derive(Debug)]
pub struct JsonServer {
    /// The document's URL.
    pub url: String,
    _shutdown: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl JsonServer {
    /// Serves `doc` at `/.well-known/jwks.json`.
    pub async fn start(doc: Value) -> anyhow::Result<Self> {
        let app = Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        );
        let (base, shutdown) = serve_on_loopback(app).await?;
        Ok(Self {
            url: format!("{base}/.well-known/jwks.json"),
            _shutdown: shutdown,
        })
    }
}

/// A message item's INSERT record in Lambda's shape: bob (`c-bob`) in arena, written at `ts`.
pub fn message_record(seq: &str, id: &str, text: &str, ts: u64) -> Value {
    let image = serde_json::json!({
        "pk": {"S": "msg#arena"}, "sk": {"S": format!("{ts:013}#{id}")}, "kind": {"S": "message"},
        "channel": {"S": "arena"}, "user": {"S": "bob"}, "sender": {"S": "c-bob"},
        "id": {"S": id}, "text": {"S": text}, "ts": {"N": ts.to_string()},
        "expires_at": {"N": "4000000000"}
    });
    ripple_common::stream_record::StreamRecord::write("INSERT", seq, image)
        .created_secs(1_795_000_000)
        .sequence_number(seq)
        .size_bytes(200)
        .to_json()
}

/// A stream batch of `records`, as Lambda delivers it.
pub fn batch(records: Vec<Value>) -> anyhow::Result<Event> {
    serde_json::from_value(serde_json::json!({ "Records": records }))
        .context("records not in the shape Lambda delivers")
}

/// Bob's chat message number `i` in arena (id `m{i}`, written at `1000 + i` ms), as the store
/// writes it: one partition key, a sort key per message.
pub fn chat_message(i: u64, text: &str) -> ripple_common::items::MessageItem {
    ripple_common::items::MessageItem {
        pk: ripple_common::keys::message_pk("arena"),
        sk: ripple_common::keys::message_sk(1_000 + i, &format!("m{i}")),
        kind: ripple_common::items::Kind::Message,
        channel: "arena".into(),
        user: "bob".into(),
        sender: "c-bob".into(),
        id: format!("m{i}"),
        text: text.into(),
        ts: 1_000 + i,
        expires_at: 4_000_000_000,
    }
}

/// The `text` of each record of `event` that has one (a message's new image).
pub fn texts(event: &Event) -> Vec<String> {
    event
        .records
        .iter()
        .filter_map(|r| match r.change.new_image.get("text") {
            Some(serde_dynamo::AttributeValue::S(t)) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// `ripple dev`'s stream mapping over a [`TestTable`]'s stream from its start, with a test's
/// closure as the function; runs until [`Mapping::stop`].
#[derive(Debug)]
pub struct Mapping {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Mapping {
    pub async fn start<F, Fut>(
        table: &TestTable,
        config: ripple::dev::mapping::MappingConfig,
        handler: F,
    ) -> anyhow::Result<Self>
    where
        F: Fn(Event, tokio::time::Instant) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = ripple::dev::mapping::Invocation> + Send + 'static,
    {
        let arn = table
            .store
            .stream_arn()
            .await?
            .context("the table has no stream")?;
        let reader = StreamReader::new(
            streams_client(&local_sdk_config(), Some(&table.endpoint)),
            arn,
            StartAt::TrimHorizon,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(ripple::dev::mapping::run(reader, config, handler, stopped));
        Ok(Self { stop, task })
    }

    /// Stops the mapping and waits for it to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Waits (checking every 50 ms) until `done` holds, for at most `within`; the error names `what`.
pub async fn eventually(
    what: &str,
    within: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(within, async {
        while !done() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .with_context(|| format!("not within {within:?}: {what}"))
}

/// The first file to appear in `dir` (e.g. an on-failure destination folder), within `within`.
pub async fn first_file_in(
    dir: &std::path::Path,
    within: std::time::Duration,
) -> anyhow::Result<std::path::PathBuf> {
    let mut file = None;
    eventually(&format!("a file in {}", dir.display()), within, || {
        file = std::fs::read_dir(dir)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(Result::ok)
            .map(|entry| entry.path());
        file.is_some()
    })
    .await?;
    file.context("no file")
}
