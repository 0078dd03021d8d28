//! Operating Ripple: the CloudWatch Embedded Metric Format lines each function prints (summed per
//! instance by `ripple_common::emf::Aggregator`), checked against the EMF specification, the
//! metric catalog (`ripple_common::emf::CATALOG`) and what really happened (the recording `@connections` server, DynamoDB Local); the JSON logs' request
//! id; and `ripple dev`'s `GET /metrics` counters moving when clients talk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::encodings::Body;
use connect::ConnectState;
use fanout::FanoutState;
use ingest::IngestState;
use ripple::apigw::{connect_event, disconnect_event, message_event};
use ripple::dev::DevOptions;
use ripple_common::emf;
use ripple_tests::{
    ALICE_AND_BOB_IN_ARENA, FaultyDynamo, RecordingConnections, TWO_CHANNELS, TestTable, WsClient,
    fixture, seed_live, seed_members, start_dev, table_with_members, ws_context as ctx,
};
use serde_json::Value;
use tracing::Instrument;

// ------------------------------------------------------------------------------------------------
// Reading EMF lines.
// ------------------------------------------------------------------------------------------------

/// One EMF line, checked against the specification and the catalog.
#[derive(Debug)]
struct Emf(Value);

impl Emf {
    /// A metric's value (the sum of its values, for an array); panics when the line does not
    /// carry it.
    fn n(&self, name: &str) -> f64 {
        self.get(name)
            .unwrap_or_else(|| panic!("no metric {name} in {}", self.0))
    }

    fn get(&self, name: &str) -> Option<f64> {
        match self.0.get(name)? {
            Value::Array(values) => Some(values.iter().filter_map(Value::as_f64).sum()),
            value => value.as_f64(),
        }
    }

    /// Whether the line publishes under `Function` alone (not a per-`Code`/`Status` line).
    fn is_total(&self) -> bool {
        self.0["_aws"]["CloudWatchMetrics"]
            .as_array()
            .is_some_and(|d| {
                d.iter()
                    .all(|d| d["Dimensions"][0].as_array().map(Vec::len) == Some(1))
            })
    }

    fn dimension(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

/// Every line `out` holds, each checked: the EMF shape (namespace, dimensions present as
/// strings, every declared metric a number in the root, a known unit), the metric in the
/// catalog for `package` with its unit and breakdown, and the `Function` dimension.
fn emf_lines(out: &[u8], package: &str) -> Vec<Emf> {
    let text = std::str::from_utf8(out).expect("EMF output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "lines end with a newline"
    );
    let now = ripple_common::now_ms();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let aws = &v["_aws"];
            let ts = aws["Timestamp"].as_u64().expect("_aws.Timestamp in ms");
            assert!(
                ts <= now + 60_000 && ts + 3_600_000 >= now,
                "timestamp {ts} is not now"
            );
            let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
            assert!(!directives.is_empty());
            for d in directives {
                assert_eq!(d["Namespace"], emf::NAMESPACE, "{line}");
                let sets = d["Dimensions"].as_array().expect("Dimensions");
                assert_eq!(sets.len(), 1, "{line}");
                let set: Vec<&str> = sets[0]
                    .as_array()
                    .expect("a dimension set")
                    .iter()
                    .map(|d| d.as_str().expect("dimension names are strings"))
                    .collect();
                assert_eq!(set[0], emf::FUNCTION_DIMENSION);
                assert!(set.len() <= 2);
                for dim in &set {
                    assert!(
                        v[*dim].is_string(),
                        "dimension {dim} has no string value: {line}"
                    );
                }
                let metrics = d["Metrics"].as_array().expect("Metrics");
                assert!(!metrics.is_empty() && metrics.len() <= 100);
                for m in metrics {
                    let name = m["Name"].as_str().expect("Name");
                    // A number, or EMF's array of up to 100 numbers (one per invocation).
                    let numeric = v[name].is_number()
                        || v[name].as_array().is_some_and(|a| {
                            !a.is_empty() && a.len() <= 100 && a.iter().all(Value::is_number)
                        });
                    assert!(numeric, "{name} has no numeric value: {line}");
                    let spec = emf::lookup(package, name)
                        .unwrap_or_else(|| panic!("{package} metric {name} is not in the catalog"));
                    assert_eq!(m["Unit"], spec.unit.as_str(), "{name}");
                    if let Some(extra) = set.get(1) {
                        assert_eq!(
                            spec.breakdown,
                            Some(*extra),
                            "{name} broken down by {extra}"
                        );
                    }
                }
            }
            assert_eq!(
                v[emf::FUNCTION_DIMENSION],
                emf::function_name(package).as_str()
            );
            Emf(v)
        })
        .collect()
}

/// The sum of a metric over the lines published under `Function` alone.
fn total(lines: &[Emf], name: &str) -> f64 {
    lines
        .iter()
        .filter(|l| l.is_total())
        .filter_map(|l| l.get(name))
        .sum()
}

/// An instance's aggregator that prints only when told to (or on a failure), into a buffer.
fn aggregator() -> emf::Aggregator<Vec<u8>> {
    emf::Aggregator::new(
        Vec::new(),
        emf::FlushPolicy {
            interval_ms: 3_600_000,
            max_events: emf::MAX_VALUES,
        },
    )
}

// ------------------------------------------------------------------------------------------------
// fanout: a replayed batch.
// ------------------------------------------------------------------------------------------------

const SEEDED: [&str; 5] = ["c-alice", "c-bob", "c-erin", "c-carol", "c-frank"];

/// alice, bob and erin in arena (erin's connection gone), carol and frank in lobby.
async fn two_channels(table: &TestTable, server: &RecordingConnections) {
    seed_members(table, server, &TWO_CHANNELS).await.unwrap();
    // (erin's socket closed after she connected)
    seed_live(table, server, "c-erin", "erin", &["arena"])
        .await
        .unwrap();
    server.mark_gone("c-erin");
}

/// The `ts` ingest stamped on the positions and messages of stream-two-channels.json.
const TWO_CHANNELS_WRITES: [u64; 5] = [
    1_795_000_000_000,
    1_795_000_000_050,
    1_795_000_000_060,
    1_795_000_000_070,
    1_795_000_000_080,
];

#[tokio::test]
async fn a_replayed_batch_adds_one_emf_line_whose_numbers_match_what_connections_received() {
    // GIVEN the two-channel batch, erin's connection gone
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    two_channels(&table, &server).await;
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    let event = fixture("stream-two-channels.json", &[]).unwrap();
    let records = event.records.len();

    // WHEN the Lambda entry point handles it, adding to an instance's aggregator
    let metrics = aggregator();
    let started = ripple_common::now_ms();
    let clock = std::time::Instant::now();
    let response = fanout::handle_with_metrics(&state, event, &metrics).await;
    let elapsed = clock.elapsed();
    let finished = ripple_common::now_ms();

    // THEN nothing is printed until the window is due; then exactly one valid EMF line
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.printed().lines, 0);
    let out = metrics.into_inner();
    let lines = emf_lines(&out, "fanout");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let m = &lines[0];
    // AND its numbers are what the @connections server saw
    let events: usize = SEEDED.iter().map(|id| server.events(id).len()).sum();
    let billed: u64 = SEEDED
        .iter()
        .flat_map(|id| server.raw_frames(id))
        .map(|frame| ripple_common::protocol::billed_messages(frame.len()))
        .sum();
    assert_eq!(m.n("RecordsIn"), records as f64);
    assert_eq!(m.n("EventsDelivered"), events as f64);
    assert_eq!(
        events, 5,
        "bob 2 (both of alice's positions), alice 2, frank 1"
    );
    assert_eq!(
        m.n("Posts"),
        server.attempts() as f64,
        "every POST, the 410 included"
    );
    assert_eq!(server.attempts(), server.post_count() + 1);
    assert_eq!(m.n("BilledMessages"), billed as f64);
    assert_eq!(billed, server.post_count() as u64, "small frames: one each");
    // AND erin, who answered 410, was removed
    assert_eq!(m.n("GoneRemoved"), 1.0);
    assert_eq!(table.connection_item_count("c-erin").await.unwrap(), 0);
    // AND nothing was throttled, retried, given up on or failed
    for zero in [
        "ThrottledPosts",
        "Retries",
        "FailedPosts",
        "FailedRecords",
        "MalformedRecords",
    ] {
        assert_eq!(m.n(zero), 0.0, "{zero}");
    }
    // AND the duration and the write→post lag are measured against the clock
    assert!(m.n("BatchDurationMs") <= elapsed.as_secs_f64() * 1000.0 + 1.0);
    let oldest = TWO_CHANNELS_WRITES[0];
    let mean = TWO_CHANNELS_WRITES.iter().sum::<u64>() as f64 / 5.0;
    let max = m.n("WriteToPostLagMaxMs");
    assert!(
        ((started - oldest) as f64..=(finished - oldest) as f64).contains(&max),
        "max lag {max}"
    );
    let avg = m.n("WriteToPostLagMs");
    assert!(
        (started as f64 - mean - 0.1..=finished as f64 - mean + 0.1).contains(&avg),
        "average lag {avg}"
    );
}

#[tokio::test]
async fn when_every_post_is_throttled_the_line_counts_each_429_as_a_retry_or_a_failure() {
    // GIVEN the same batch, and an @connections server that answers 429 to everything
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    two_channels(&table, &server).await;
    server.inject("throttle=1".parse().unwrap());
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    let event = fixture("stream-two-channels.json", &[]).unwrap();

    // WHEN fanout handles it
    let metrics = aggregator();
    fanout::handle_with_metrics(&state, event, &metrics).await;

    // THEN the line is printed at once (frames were given up on: an alarm reads that)
    assert_eq!(metrics.printed().lines, 1);
    // AND every POST the server got is a throttled post
    let lines = emf_lines(&metrics.into_inner(), "fanout");
    let m = &lines[0];
    assert_eq!(m.n("Posts"), server.attempts() as f64);
    assert_eq!(m.n("ThrottledPosts"), server.attempts() as f64);
    // AND each 429 was either retried or ended its frame: one given-up frame per recipient
    assert_eq!(m.n("Retries") + m.n("FailedPosts"), m.n("ThrottledPosts"));
    assert_eq!(
        m.n("FailedPosts"),
        4.0,
        "bob, alice, frank and erin each had one frame"
    );
    // AND nothing was delivered, so there is no lag to report and nothing billed
    assert_eq!(server.post_count(), 0);
    assert_eq!(m.n("EventsDelivered"), 0.0);
    assert_eq!(m.n("BilledMessages"), 0.0);
    assert!(m.get("WriteToPostLagMs").is_none());
}

#[tokio::test]
async fn a_batch_that_fails_from_a_record_reports_a_failed_record_and_the_lag_of_what_went_out() {
    // GIVEN bob and alice in arena, and DynamoDB failing for channel `broken` (record 1)
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, "chan#broken")
        .await
        .unwrap();
    let state = FanoutState::new(faulty.store(&table), server.client(), &table.settings);
    let event = fixture("stream-query-failure.json", &[]).unwrap();

    // WHEN fanout handles it
    let metrics = aggregator();
    let response = fanout::handle_with_metrics(&state, event, &metrics).await;

    // THEN the line is printed at once and says the batch failed from a record
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(metrics.printed().lines, 1);
    let lines = emf_lines(&metrics.into_inner(), "fanout");
    let m = &lines[0];
    assert_eq!(m.n("FailedRecords"), 1.0);
    // AND counts only the one event that went out before it
    assert_eq!(server.events("c-alice").len(), 1);
    assert_eq!(m.n("EventsDelivered"), 1.0);
    // AND the lag is that record's alone (the two later ones, 10 and 20 ms younger, were not
    // posted), so its average is its maximum
    assert_eq!(m.n("WriteToPostLagMs"), m.n("WriteToPostLagMaxMs"));
}

// ------------------------------------------------------------------------------------------------
// ingest and connect.
// ------------------------------------------------------------------------------------------------

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn ingest_sums_its_frames_accepted_or_refused_under_the_code_the_sender_got() {
    // GIVEN alice connected to arena
    let table = TestTable::new().await.unwrap();
    let connect = ConnectState::new(table.store.clone(), table.settings.clone());
    let ingest = IngestState::new(table.store.clone(), table.settings.clone());
    let q = query(&[("user", "alice"), ("channel", "arena")]);
    let ev = connect_event(&ctx("A"), &[], &q, 1).unwrap();
    assert_eq!(connect::handle(&connect, ev).await.status_code, 200);
    let frames = [
        r#"{"action":"position","channel":"arena","x":1,"y":2,"seq":1}"#,
        r#"{"action":"message","channel":"arena","text":"hi"}"#,
        "hello",
        r#"{"action":"message","channel":"nowhere","text":"hi"}"#,
        r#"{"action":"dance","channel":"arena"}"#,
        r#"{"action":"join","channel":"lobby"}"#,
        r#"{"action":"position","channel":"lobby","x":"far","y":2,"seq":1}"#,
    ];

    // WHEN she sends good and bad frames through the Lambda entry point
    let metrics = aggregator();
    let mut accepted = 0;
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for frame in frames {
        let ev = message_event(&ctx("A"), frame, 2).unwrap();
        let response = ingest::handle_with_metrics(&ingest, ev, &metrics).await;
        assert_eq!(response.status_code, 200, "{frame}");
        match response.body {
            Some(Body::Text(reply)) if reply.contains(r#""type":"error""#) => {
                let reply: Value = serde_json::from_str(&reply).unwrap();
                *codes
                    .entry(reply["code"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            _ => accepted += 1,
        }
    }

    // THEN nothing is printed per frame: the window prints one line of sums and one per code
    assert_eq!(metrics.printed().lines, 0);
    let lines = emf_lines(&metrics.into_inner(), "ingest");
    assert_eq!(lines.iter().filter(|l| l.is_total()).count(), 1);
    assert_eq!(lines.len(), 1 + 3);
    // AND accepted frames are counted as such
    assert_eq!(accepted, 3);
    assert_eq!(total(&lines, "Accepted"), accepted as f64);
    assert_eq!(total(&lines, "Failed"), 0.0);
    // AND each refusal is counted under the code the sender got
    assert_eq!(total(&lines, "Refused"), 4.0);
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines.iter().filter(|l| !l.is_total()) {
        *by_code
            .entry(line.dimension("Code").unwrap().to_owned())
            .or_default() += line.n("Refused") as usize;
        assert!(line.get("Accepted").is_none(), "{line:?}");
    }
    assert_eq!(by_code, codes);
    assert_eq!(
        codes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["bad_request", "not_member", "unknown_action"]
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.is_total())
            .all(|l| l.dimension("Code").is_none())
    );
}

#[tokio::test]
async fn connect_counts_connects_rejections_by_status_and_disconnects() {
    // GIVEN connect without auth, and connect with auth on
    let table = TestTable::new().await.unwrap();
    let open = ConnectState::new(table.store.clone(), table.settings.clone());
    let mut secured = table.settings.clone();
    secured.jwt_secret = Some("s3cret-for-the-test".into());
    let guarded = ConnectState::new(table.store.clone(), secured);
    let metrics = aggregator();

    // WHEN alice connects, someone sends a bad channel, someone comes without a token,
    // and alice leaves
    let ok = connect_event(&ctx("A"), &[], &query(&[("user", "alice")]), 1).unwrap();
    let bad = connect_event(&ctx("B"), &[], &query(&[("channel", "no spaces!")]), 1).unwrap();
    let anonymous = connect_event(&ctx("C"), &[], &query(&[("user", "mallory")]), 1).unwrap();
    let bye = disconnect_event(&ctx("A"), 1000, "client closed", 2).unwrap();
    let statuses = [
        connect::handle_with_metrics(&open, ok, &metrics)
            .await
            .status_code,
        connect::handle_with_metrics(&open, bad, &metrics)
            .await
            .status_code,
        connect::handle_with_metrics(&guarded, anonymous, &metrics)
            .await
            .status_code,
        connect::handle_with_metrics(&open, bye, &metrics)
            .await
            .status_code,
    ];

    // THEN the lines count one connect, two rejections (400 and 401), one disconnect
    assert_eq!(statuses, [200, 400, 401, 200]);
    let lines = emf_lines(&metrics.into_inner(), "connect");
    assert_eq!(
        lines.len(),
        1 + 2,
        "the sums, and one line per rejected status"
    );
    assert_eq!(total(&lines, "Connects"), 1.0);
    assert_eq!(total(&lines, "RejectedConnects"), 2.0);
    assert_eq!(total(&lines, "Disconnects"), 1.0);
    assert_eq!(total(&lines, "Failed"), 0.0);
    let statuses: Vec<(&str, f64)> = lines
        .iter()
        .filter_map(|l| Some((l.dimension("Status")?, l.n("RejectedConnects"))))
        .collect();
    assert_eq!(statuses, [("400", 1.0), ("401", 1.0)]);
}

// ------------------------------------------------------------------------------------------------
// Structured logs: the request id of lambda_runtime's invocation span on every line.
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_handlers_json_logs_carry_the_request_id_of_lambda_runtimes_invocation_span() {
    // GIVEN the Lambda log subscriber, and an ingest state (a refusal never reaches DynamoDB)
    let logs = Capture::default();
    let writer = logs.clone();
    let _default = tracing::subscriber::set_default(ripple_common::telemetry::lambda_subscriber(
        "info",
        move || writer.clone(),
    ));
    let store = ripple_common::store::Store::new(
        ripple_common::config::dynamodb_client(
            &ripple_common::config::local_sdk_config(),
            Some("http://127.0.0.1:9"),
        ),
        "unused".to_owned(),
    );
    let ingest = IngestState::new(store, ripple_common::config::Settings::for_table("unused"));
    let mut invocation = lambda_runtime::Context::default();
    invocation.request_id = "8f5c2b1e-request".into();
    invocation.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793".into());

    // WHEN ingest refuses a frame inside the span lambda_runtime opens for the invocation
    let ev = message_event(&ctx("A"), "not json", 1).unwrap();
    let metrics = aggregator();
    ingest::handle_with_metrics(&ingest, ev, &metrics)
        .instrument(lambda_runtime::layers::trace::request_span(&invocation))
        .await;

    // THEN its log line is JSON with the request id and trace id at the top level
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refused = lines
        .iter()
        .find(|l| l["message"] == "frame refused")
        .unwrap_or_else(|| panic!("no refusal logged: {text}"));
    assert_eq!(refused["level"], "INFO");
    assert_eq!(refused["requestId"], "8f5c2b1e-request");
    assert_eq!(
        refused["xrayTraceId"],
        "Root=1-5759e988-bd862e3fe1be46a994272793"
    );
    assert_eq!(refused["code"], "bad_request");
    assert!(lines.iter().all(|l| l["requestId"] == "8f5c2b1e-request"));
    // AND the metrics line went to its own writer, not into the logs
    assert_eq!(emf_lines(&metrics.into_inner(), "ingest").len(), 2);
    assert!(!text.contains("CloudWatchMetrics"));
}

// ------------------------------------------------------------------------------------------------
// ripple dev: GET /metrics.
// ------------------------------------------------------------------------------------------------

/// `GET /metrics`, as series → value.
async fn scrape(server: &ripple::dev::DevServer) -> BTreeMap<String, f64> {
    let (status, body) = ripple_tests::http("GET", &format!("{}/metrics", server.http_url()), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn ripple_devs_metrics_move_when_clients_connect_talk_and_get_refused() {
    // GIVEN ripple dev, scraped before anyone connects
    let server = start_dev(DevOptions::default()).await.unwrap();
    let before = scrape(&server).await;
    assert_eq!(before["ripple_connects_total"], 0.0);
    assert_eq!(before["ripple_fanout_updates_delivered_total"], 0.0);
    let url = |q: &str| format!("{}/?{q}", server.ws_url());

    // WHEN alice and bob connect to arena, alice says hi and bob hears it,
    // and alice posts to a channel she is not in
    let mut alice = WsClient::connect(&url("user=alice&channel=arena"))
        .await
        .unwrap();
    let mut bob = WsClient::connect(&url("user=bob&channel=arena"))
        .await
        .unwrap();
    alice
        .send(r#"{"action":"message","channel":"arena","text":"hi bob"}"#)
        .await
        .unwrap();
    bob.wait_for_event(|e| e["text"] == "hi bob").await.unwrap();
    alice
        .send(r#"{"action":"message","channel":"nowhere","text":"hello?"}"#)
        .await
        .unwrap();
    loop {
        let frame = alice
            .next_frame()
            .await
            .unwrap()
            .expect("alice's socket open");
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "not_member");
            break;
        }
    }

    // THEN GET /metrics shows it (fanout's counters are added once its batch returns)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = scrape(&server).await;
        if now["ripple_fanout_updates_delivered_total"] >= 1.0
            && now["ripple_fanout_lag_events_total"] >= 1.0
            || tokio::time::Instant::now() > deadline
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after["ripple_connects_total"], 2.0);
    assert_eq!(after["ripple_connections_open"], 2.0);
    assert!(after["ripple_frames_accepted_total"] >= 1.0);
    assert_eq!(after["ripple_frames_refused_total"], 1.0);
    assert_eq!(
        after[r#"ripple_frames_refused_by_code_total{code="not_member"}"#],
        1.0
    );
    assert!(
        after["ripple_posts_delivered_total"] >= 3.0,
        "two welcomes and the message"
    );
    for moved in [
        "ripple_fanout_batches_total",
        "ripple_fanout_records_total",
        "ripple_fanout_updates_delivered_total",
        "ripple_fanout_posts_total",
        "ripple_fanout_billed_messages_total",
        "ripple_fanout_lag_events_total",
    ] {
        assert!(after[moved] >= 1.0, "{moved} did not move: {after:?}");
    }
    // AND the --stats summary line reads the same counters
    let summary = server.metrics.summary(2);
    assert!(summary.contains("connects=2"), "{summary}");
    assert!(summary.contains("refused=1(not_member:1)"), "{summary}");

    alice.close().await;
    bob.close().await;
    server.shutdown().await;
}
