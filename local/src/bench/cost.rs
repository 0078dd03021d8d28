//! The cost model: what a `bench e2e` run would have used on AWS (DynamoDB requests and capacity
//! units, Lambda invocations and billed time, API Gateway messages, CloudWatch Logs bytes) from
//! `ripple dev`'s counters, the players' counts, item sizes and handler times, billed at on-demand
//! prices (us-east-1, as `../shared/DESIGN.md` lists them). DynamoDB bills 1 KB per write unit and
//! 4 KB per strongly consistent read unit; API Gateway's 32 KB messages are
//! `ripple_common::protocol::billed_messages`. Pure arithmetic.
//!
//! The logs are what the functions would print: Lambda's `START`/`END`/`REPORT` lines per
//! invocation only at system log level `INFO`/`DEBUG` (`terraform/` deploys `WARN`:
//! `ripple_common::deploy::LAMBDA_SYSTEM_LOG_LEVEL`); each function's metrics windows
//! ([`Aggregator`]: about one a second per instance, or per 100 invocations), rendered with the
//! functions' own line builders; and the `info` lines per fanout batch, refusal and connect.

use fanout::metrics::{BatchMetrics, Lag};
use ripple_common::emf::{Aggregator, FlushPolicy, MetricLine};
use ripple_common::items::{ConnectionItem, Endpoint, MemberItem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::batch::Member;
use super::ratio;

// Prices in US dollars: API Gateway WebSocket per million messages (in and out alike) and per
// million connection-minutes; DynamoDB on demand per million write / read units; Lambda arm64
// per GB-second and per million requests, every function at 128 MB; CloudWatch Logs per GB.
pub const APIGW_MESSAGES: f64 = 1.00;
pub const APIGW_MINUTES: f64 = 0.25;
pub const DYNAMODB_WRITE_UNITS: f64 = 0.625;
pub const DYNAMODB_READ_UNITS: f64 = 0.125;
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_REQUESTS: f64 = 0.20;
pub const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;
pub const LOGS_GB: f64 = 0.50;

/// What `ripple dev`'s counters said at the end of the run (`membership_reads`: ingest's strongly
/// consistent reads, one instance in `ripple dev`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerCounts {
    pub connects: u64,
    pub disconnects: u64,
    pub frames_accepted: u64,
    pub membership_reads: u64,
    pub frames_refused: u64,
    pub frames_failed: u64,
    pub fanout_batches: u64,
    pub fanout_records: u64,
}

/// What the players counted over the whole run (warm-up included): positions sent, updates
/// delivered, billed 32 KB messages over every frame received, time connected summed over
/// players, and the run's wall time (connects to closes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCounts {
    pub sent: u64,
    pub delivered: u64,
    pub messages_out: u64,
    pub connection_minutes: f64,
    pub seconds: f64,
}

/// Item sizes (bytes, as DynamoDB counts them) of the run's items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemSizes {
    pub connection: u64,
    pub member: u64,
    pub position: u64,
}

impl ItemSizes {
    /// Sizes of items shaped like the run's: `sender` in `channel`, connected through `endpoint`.
    pub fn sample(channel: &str, sender: &Member, endpoint: &Endpoint) -> Self {
        let now = ripple_common::now_ms();
        let (id, user) = (&sender.connection_id, &sender.user);
        let connection = ConnectionItem::new(id, user, endpoint, now, now / 1000);
        let member = MemberItem::new(&connection, channel, now);
        let seq = super::players::MEASURE_SEQ_BASE + 100;
        let position = super::batch::position_item(channel, sender, seq, -12.34, 45.67, now);
        let size = |item: Result<serde_dynamo::Item, _>| item.map_or(0, |i| item_bytes(&i));
        Self {
            connection: size(serde_dynamo::to_item(&connection)),
            member: size(serde_dynamo::to_item(&member)),
            position: size(serde_dynamo::to_item(&position)),
        }
    }
}

/// What a run used, in billing units: client → server frames and `@connections` posts in 32 KB
/// messages, …, invocations of all three functions and their billed time (each rounded up to the
/// ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub inbound_messages: u64,
    pub outbound_messages: u64,
    pub connection_minutes: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub lambda_requests: u64,
    pub lambda_billed_ms: f64,
    pub log_bytes: u64,
}

/// How the estimate is made (printed with it, and in the README).
pub const ASSUMPTIONS: [&str; 8] = [
    "prices: us-east-1 on demand, as listed in ../shared/DESIGN.md",
    "API Gateway: each client frame is one inbound message (all < 32 KB); outbound = every frame the players received (welcome, join, events), per started 32 KB",
    "connection-minutes: time each player was connected, pro-rated",
    "DynamoDB writes: 1 conditional PutItem per accepted position (its condition proves membership); a connect writes the connection (table + sweep index), its welcomed mark, its membership and its roster entry (a 2-item transaction), and its first position proves the membership in a 2-item transaction; a disconnect deletes them; units from item sizes",
    "DynamoDB reads: ingest's strongly consistent membership GetItems as counted by ripple dev (one instance), times the ingest instances AWS would run (invocations per second × handler time, at least 1), at most one per frame; fanout: 1 strongly consistent roster Query per channel per batch (batches × expected channels touched per batch); 1 partition Query per disconnect; stream reads by Lambda are free",
    "Lambda: arm64 at 128 MB; ingest and fanout time per invocation measured here (x86, DynamoDB Local), rounded up to 1 ms; connect/disconnect billed like ingest",
    "the whole run counts (warm-up, connects, disconnects): cost per delivered update over everything delivered",
    "CloudWatch Logs: Lambda's START/END/REPORT lines per invocation only at system log level INFO/DEBUG (deployed: WARN, none), the metrics windows (about one per second per instance, or per 100 invocations; instances by Little's law) and the info-level lines per fanout batch, refusal and connect/disconnect, at $0.50 per GB (10^9 bytes)",
];

/// Estimates DynamoDB, Lambda, logs and the bill of a run (`times`: the ingest and fanout
/// handlers' ms per invocation): `dynamodb`, `lambda`, `usage`, `logs`, `lines`, `total_usd`,
/// `per_million_delivered_usd` and the `assumptions`.
pub fn estimate(
    s: &ServerCounts,
    client: &ClientCounts,
    channels: usize,
    members_per_channel: f64,
    sizes: ItemSizes,
    (ingest_ms, fanout_ms): (f64, f64),
) -> Value {
    let (member_wru, position_wru) = (write_units(sizes.member), write_units(sizes.position));
    // A session: the connection (table and sweep index), its `welcomed` mark (table and index),
    // the membership, and the roster entry fanout activates in a transaction (TransactWriteItems
    // bills 2 units per item, the membership's ConditionCheck included).
    let session_wru = 4.0 * write_units(sizes.connection) + member_wru + 4.0 * member_wru;
    // A connection's first position: a transaction (2 units per item) instead of a plain write.
    let proof_wru = 2.0 * (member_wru + position_wru) - position_wru;
    let avg_records = ratio(s.fanout_records as f64, s.fanout_batches as f64);
    let touched = expected_distinct_channels(channels, avg_records);
    let fanout_queries = (s.fanout_batches as f64 * touched).round() as u64;
    let query_bytes = (members_per_channel * sizes.member as f64).ceil() as u64;
    // Each AWS instance learns a connection's user once (one membership read); ripple dev runs
    // one instance, AWS about invocations per second × handler time (Little's law).
    let ingest = s.frames_accepted + s.frames_refused + s.frames_failed;
    let ingest_instances = ratio(ingest as f64, client.seconds) * ingest_ms / 1000.0;
    let member_reads = ((s.membership_reads as f64 * ingest_instances.ceil().max(1.0)) as u64)
        .min(ingest.max(s.membership_reads));
    let write_units = s.frames_accepted as f64 * position_wru
        + (s.connects + s.disconnects) as f64 * session_wru
        + s.connects as f64 * proof_wru;
    let read_units = member_reads as f64 * strong_read_units(sizes.member)
        + fanout_queries as f64 * strong_read_units(query_bytes)
        + s.disconnects as f64 * strong_read_units(sizes.connection + sizes.member);
    let calls = [(ingest, ingest_ms), (s.connects + s.disconnects, ingest_ms)];
    let calls = [calls[0], calls[1], (s.fanout_batches, fanout_ms)];
    let billed = |(n, ms): (u64, f64)| n as f64 * ms.ceil().max(1.0);
    let billed_ms = billed(calls[0]) + billed(calls[1]) + billed(calls[2]);
    let platform_lines = ripple_common::deploy::LAMBDA_SYSTEM_LOG_LEVEL != "WARN";
    let batch = (
        avg_records,
        ratio(client.messages_out as f64, s.fanout_batches as f64),
    );
    let logs = log_bytes(
        client.seconds,
        calls,
        s.frames_refused,
        platform_lines,
        batch,
    );
    let usage = Usage {
        inbound_messages: client.sent,
        outbound_messages: client.messages_out,
        connection_minutes: client.connection_minutes,
        write_units,
        read_units,
        lambda_requests: calls.iter().map(|c| c.0).sum(),
        lambda_billed_ms: billed_ms,
        log_bytes: logs["total"].as_u64().unwrap_or(0),
    };
    let lines = bill(&usage);
    let total_usd = total(&lines);
    json!({
        "dynamodb": {
            "write_requests": s.frames_accepted + 2 * s.connects + s.disconnects,
            "write_units": write_units,
            "read_requests": member_reads + fanout_queries + s.disconnects,
            "read_units": read_units,
            // a conditional PutItem per accepted position; connection PutItem + membership
            // BatchWriteItem per connect; a BatchWriteItem deleting them per disconnect
            "position_writes": s.frames_accepted,
            "connect_writes": 2 * s.connects,
            "disconnect_writes": s.disconnects,
            // ingest's membership GetItems (instances as on AWS), fanout's roster Queries (one
            // per channel per batch), a partition Query per disconnect
            "member_reads": member_reads,
            "fanout_queries": fanout_queries,
            "disconnect_queries": s.disconnects,
        },
        "lambda": {
            "ingest_invocations": calls[0].0, "connect_invocations": calls[1].0,
            "fanout_invocations": calls[2].0, "ingest_ms": ingest_ms, "fanout_ms": fanout_ms,
            "avg_records_per_batch": avg_records, "billed_ms": billed_ms,
        },
        "usage": usage,
        "logs": logs,
        "lines": lines,
        "total_usd": total_usd,
        "per_million_delivered_usd": per_million(total_usd, client.delivered),
        "assumptions": ASSUMPTIONS,
    })
}

/// The floor of this architecture for a room of `members` at `hz`, per million delivered
/// updates: every update billed once in (one message, one position write, one ingest request and
/// its time) and shared by the other `members − 1`, and each recipient billed one outbound
/// message per 100 ms (perfect batching). Reads and logs are left out: no design of this shape
/// can go under it.
pub fn floor_per_million_delivered(
    members: f64,
    hz: f64,
    sizes: ItemSizes,
    ingest_ms: f64,
) -> Option<f64> {
    let recipients = members - 1.0;
    if recipients <= 0.0 || hz <= 0.0 {
        return None;
    }
    let frames_per_update = hz.min(10.0) / hz / recipients;
    let per_update_in = (APIGW_MESSAGES
        + DYNAMODB_WRITE_UNITS * write_units(sizes.position)
        + LAMBDA_REQUESTS
        + LAMBDA_GB_SECOND * LAMBDA_MEMORY_GB * ingest_ms.ceil().max(1.0) / 1000.0 * 1e6)
        / recipients;
    Some(per_update_in + APIGW_MESSAGES * frames_per_update)
}

/// The bill for `u`, line by line: `item`, `quantity`, `unit`, `usd`.
pub fn bill(u: &Usage) -> Vec<Value> {
    let m = |quantity: f64, price: f64| quantity * price / 1e6;
    let (inbound, outbound) = (u.inbound_messages as f64, u.outbound_messages as f64);
    let (minutes, requests, logs) = (u.connection_minutes, u.lambda_requests as f64, u.log_bytes);
    let gb_s = u.lambda_billed_ms / 1000.0 * LAMBDA_MEMORY_GB;
    #[rustfmt::skip] // a table
    let lines = [
        ("API Gateway messages in", inbound, "messages", m(inbound, APIGW_MESSAGES)),
        ("API Gateway messages out", outbound, "messages", m(outbound, APIGW_MESSAGES)),
        ("API Gateway connection-minutes", minutes, "minutes", m(minutes, APIGW_MINUTES)),
        ("DynamoDB writes", u.write_units, "WRU", m(u.write_units, DYNAMODB_WRITE_UNITS)),
        ("DynamoDB reads", u.read_units, "RRU", m(u.read_units, DYNAMODB_READ_UNITS)),
        ("Lambda requests", requests, "requests", m(requests, LAMBDA_REQUESTS)),
        ("Lambda compute (arm64, 128 MB)", gb_s, "GB-s", gb_s * LAMBDA_GB_SECOND),
        ("CloudWatch Logs ingestion", logs as f64 / 1e6, "MB", logs as f64 / 1e9 * LOGS_GB),
    ];
    let line = |(item, quantity, unit, usd)| json!({"item": item, "quantity": quantity, "unit": unit, "usd": usd});
    lines.into_iter().map(line).collect()
}

/// The bill's total.
pub fn total(lines: &[Value]) -> f64 {
    lines.iter().filter_map(|l| l["usd"].as_f64()).sum()
}

/// Dollars per million delivered updates (`None` when nothing was delivered).
pub fn per_million(total_usd: f64, delivered: u64) -> Option<f64> {
    (delivered > 0).then(|| total_usd / delivered as f64 * 1e6)
}

/// Write units for writing (or deleting) one item of `bytes`: one per started KB, at least one.
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for a strongly consistent read of `bytes` (GetItem, or one Query page).
pub fn strong_read_units(bytes: u64) -> f64 {
    bytes.div_ceil(4 * 1024).max(1) as f64
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings by UTF-8 length,
/// numbers by about one byte per two significant digits plus one).
pub fn item_bytes(item: &serde_dynamo::Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_bytes(value))
        .sum()
}

fn value_bytes(value: &serde_dynamo::AttributeValue) -> u64 {
    use serde_dynamo::AttributeValue as V;
    let number = |n: &str| (n.chars().filter(char::is_ascii_digit).count() as u64).div_ceil(2) + 1;
    match value {
        V::S(s) => s.len() as u64,
        V::N(n) => number(n),
        V::B(b) => b.len() as u64,
        V::Bool(_) | V::Null(_) => 1,
        V::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
        V::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) as u64 + 1).sum(),
        V::Bs(v) => v.iter().map(|b| b.len() as u64).sum(),
        V::L(v) => 3 + v.iter().map(|x| 1 + value_bytes(x)).sum::<u64>(),
        V::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() as u64 + value_bytes(x))
                .sum::<u64>()
        }
    }
}

/// Expected number of distinct channels touched by `records` records spread uniformly over
/// `channels` channels: `m · (1 − (1 − 1/m)^r)` (fanout's Queries per batch).
pub fn expected_distinct_channels(channels: usize, records: f64) -> f64 {
    if channels == 0 || records <= 0.0 {
        return 0.0;
    }
    let m = channels as f64;
    m * (1.0 - (1.0 - 1.0 / m).powf(records))
}

/// Lambda's platform lines for one invocation (text format), with a real-length request id.
const PLATFORM_LINES: &str = "START RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718 Version: $LATEST\n\
END RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718\n\
REPORT RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718\tDuration: 2.48 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB\t\n";
/// The `info` lines per fanout batch, per refused frame and per `$connect`/`$disconnect`, as the
/// JSON subscriber prints them.
const FANOUT_BATCH_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"batch fanned out","records":12,"events":12,"recipients":49,"posts":49,"delivered":49,"gone":0,"failed_from":"None"},"target":"fanout","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;
const INGEST_REFUSAL_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"frame refused","connection_id":"AbCdEfGhIjKlM=","code":"rate_limited","reason":"too many positions: at most 20 per second"},"target":"ingest","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;
const CONNECT_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"connected","connection_id":"AbCdEfGhIjKlM=","user":"p0001","channels":1},"target":"connect","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;

/// What the functions would print over `seconds`, given each function's (invocations, ms per
/// invocation) as `[ingest, connect, fanout]`, the refusals, whether Lambda prints its platform
/// lines, and an average batch's (records, posts) for fanout's sample metrics line.
fn log_bytes(
    seconds: f64,
    [ingest, connect, fanout]: [(u64, f64); 3],
    refused: u64,
    platform_lines: bool,
    (records_per_batch, posts_per_batch): (f64, f64),
) -> Value {
    let all = ingest.0 + connect.0 + fanout.0;
    let platform = all * PLATFORM_LINES.len() as u64 * u64::from(platform_lines);
    let ts = 1_795_000_000_000;
    let (records, posts) = (records_per_batch.round(), posts_per_batch.round() as u64);
    let batch = BatchMetrics {
        records_in: records as u64,
        events_delivered: posts,
        posts,
        billed_messages: posts,
        batch_duration: std::time::Duration::from_secs_f64(fanout.1.max(0.0) / 1000.0),
        lag: Some(Lag {
            events: records as usize,
            average_ms: 43.7,
            max_ms: 88,
        }),
        ..BatchMetrics::default()
    };
    let metrics = [
        metrics_bytes(seconds, ingest, |i| {
            ingest::metrics::frame_line("ripple-ingest", ts + i, &ingest::Outcome::Accepted)
        }),
        metrics_bytes(seconds, connect, |i| {
            connect::metrics::event_line("ripple-connect", ts + i, "CONNECT", 200)
                .unwrap_or_else(|| MetricLine::new("ripple-connect", ts + i))
        }),
        metrics_bytes(seconds, fanout, |i| batch.line("ripple-fanout", ts + i)),
    ];
    let application = fanout.0 * FANOUT_BATCH_LOG.len() as u64
        + refused * INGEST_REFUSAL_LOG.len() as u64
        + connect.0 * CONNECT_LOG.len() as u64;
    let metrics_lines: u64 = metrics.iter().map(|m| m.1).sum();
    let metrics: u64 = metrics.iter().map(|m| m.0).sum();
    let total = platform + metrics + application;
    json!({"platform": platform, "metrics": metrics, "metrics_lines": metrics_lines, "application": application, "total": total})
}

/// Bytes and lines of the metrics windows one function prints for `count` invocations of `ms`
/// each, each event's line made by `line`: a window about once a second per instance
/// (instances by Little's law, at least one), or every 100 invocations.
fn metrics_bytes(
    seconds: f64,
    (count, ms): (u64, f64),
    line: impl Fn(u64) -> MetricLine,
) -> (u64, u64) {
    if count == 0 || seconds <= 0.0 {
        return (0, 0);
    }
    let instances = ((count as f64 / seconds) * ms / 1000.0).ceil().max(1.0) as u64;
    let policy = FlushPolicy::default();
    let by_time = (seconds.max(1.0).ceil() as u64).saturating_mul(instances);
    let windows = by_time
        .max(count.div_ceil(policy.max_events as u64))
        .min(count)
        .max(1);
    // One window, rendered for real, times the number of windows.
    let sample = Aggregator::new(std::io::sink(), policy);
    (0..count.div_ceil(windows).max(1)).for_each(|i| sample.record(&line(i), false));
    sample.flush();
    let printed = sample.printed();
    (
        printed.bytes.saturating_mul(windows),
        printed.lines.saturating_mul(windows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// `T` from JSON written in the test.
    fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn positions_connects_and_batches_become_requests_units_and_dollars() {
        // GIVEN 1,000 accepted positions from 10 players in 2 channels, 100 fanout batches of
        // 10 records, small items, and handlers of 2.5 ms (ingest) and 7.2 ms (fanout)
        let server: ServerCounts = from(json!({"connects": 10, "disconnects": 10,
            "frames_accepted": 1_000, "membership_reads": 10, "fanout_batches": 100, "fanout_records": 1_000}));
        let client: ClientCounts = from(
            json!({"sent": 1_000, "delivered": 4_000, "messages_out": 500,
            "connection_minutes": 2.0, "seconds": 12.0}),
        );
        let sizes = ItemSizes {
            connection: 200,
            member: 300,
            position: 250,
        };
        // WHEN estimated
        let e = estimate(&server, &client, 2, 5.0, sizes, (2.5, 7.2));
        let (db, logs) = (&e["dynamodb"], &e["logs"]);
        // THEN writes: 1,000 positions + 2 per connect + 1 per disconnect; 9 WRU per session end
        // (connection and its welcomed mark with the index, membership, roster transaction),
        // and 3 more per connect for the first position's proving transaction
        assert_eq!(db["write_requests"], 1_000 + 20 + 10);
        assert_eq!(db["write_units"], 1_000.0 + 20.0 * 9.0 + 10.0 * 3.0);
        // AND reads: one membership GetItem per player (83 frames/s × 2.5 ms: one instance), ~2
        // strongly consistent roster Queries per batch at 1 RRU, 1 per disconnect
        assert_eq!(db["member_reads"], 10);
        assert_eq!(db["fanout_queries"], 200);
        assert_eq!(db["read_units"], 10.0 + 200.0 * 1.0 + 10.0);
        // AND Lambda: 1,000 ingest + 20 connect invocations at 3 ms, 100 fanout at 8 ms
        assert_eq!(e["lambda"]["billed_ms"], 1_020.0 * 3.0 + 100.0 * 8.0);
        assert_eq!(e["usage"]["lambda_requests"], 1_120);
        // AND the per-million price is the total over 4,000 updates
        let [per_million, total] =
            [&e["per_million_delivered_usd"], &e["total_usd"]].map(|v| v.as_f64().unwrap());
        assert!(close(per_million, total / 4_000.0 * 1e6));
        // AND the logs: no platform lines at the deployed system log level (WARN), the
        // functions' own lines billed on their own line
        assert_eq!(logs["platform"], 0, "{logs}");
        assert!(logs["total"].as_u64().unwrap() > 0, "{logs}");
        assert_eq!(e["usage"]["log_bytes"], logs["total"]);
        assert_eq!(e["lines"].as_array().unwrap().len(), 8);
        assert_eq!(e["lines"][7]["item"], "CloudWatch Logs ingestion");
    }

    #[test]
    fn each_line_is_quantity_times_the_listed_price() {
        // GIVEN a million of everything countable and 1,000 s of Lambda time
        let usage: Usage = from(
            json!({"inbound_messages": 1_000_000, "outbound_messages": 2_000_000,
            "connection_minutes": 1e6, "write_units": 1e6, "read_units": 1e6, "lambda_requests": 1_000_000,
            "lambda_billed_ms": 1e6, "log_bytes": 2_000_000_000u64}),
        );
        // WHEN billed THEN every line matches the price list, 1,000 s at 128 MB is 125 GB-s, and
        // 2 GB of logs cost $1
        let lines = bill(&usage);
        let compute = 125.0 * 0.000_013_333_4;
        let expected = [1.00, 2.00, 0.25, 0.625, 0.125, 0.20, compute, 1.00];
        for (line, want) in lines.iter().zip(expected) {
            let got = line["usd"].as_f64().unwrap();
            assert!(close(got, want), "{got} != {want}");
        }
        assert!(close(total(&lines), expected.iter().sum()));
        // AND $0.50 spent on 250,000 delivered updates is $2.00 per million; nothing delivered
        // has no price
        assert!(per_million(0.5, 250_000).is_some_and(|v| close(v, 2.0)));
        assert_eq!(per_million(0.5, 0), None);
    }

    #[test]
    fn units_sizes_and_channels_touched() {
        // GIVEN items around the unit boundaries WHEN costed THEN units round up, never to zero
        assert_eq!([200, 1025].map(write_units), [1.0, 2.0]);
        assert_eq!([4096, 4097].map(strong_read_units), [1.0, 2.0]);
        assert_eq!(strong_read_units(300) / 2.0, 0.5);
        assert_eq!(strong_read_units(30 * 1024) / 2.0, 4.0);
        // GIVEN an item with a string and a number WHEN sized THEN 2 + 8 for the string, 3 +
        // (2 + 1) for the number
        use serde_dynamo::AttributeValue as V;
        let item = serde_dynamo::Item::from(std::collections::HashMap::from([
            ("pk".to_owned(), V::S("conn#abc".into())),
            ("seq".to_owned(), V::N("1234".into())),
        ]));
        assert_eq!(item_bytes(&item), 10 + 6);
        // GIVEN items shaped like a run's WHEN sized THEN each is well under 1 KB and not empty
        let domain = "127.0.0.1:40000".into();
        let endpoint = Endpoint {
            domain,
            stage: "local".into(),
        };
        let sender = Member::new("AbCdEfGhIjK=", "p0001");
        let s = ItemSizes::sample("bench-0", &sender, &endpoint);
        for size in [s.connection, s.member, s.position] {
            assert!((50..1024).contains(&size), "{s:?}");
        }
        // GIVEN two channels WHEN one record arrives THEN one channel is touched; with many, both
        assert!(close(expected_distinct_channels(2, 1.0), 1.0));
        assert!(close(expected_distinct_channels(2, 50.0), 2.0));
        assert!(close(expected_distinct_channels(1, 7.0), 1.0));
        assert_eq!(expected_distinct_channels(3, 0.0), 0.0);
    }

    #[test]
    fn logs_print_a_metrics_window_per_second_per_instance_or_per_100_invocations() {
        let logs = |frames: u64, platform| {
            let calls = [(frames, 3.0), (100, 3.0), (frames / 10, 8.0)];
            let l = log_bytes(20.0, calls, 0, platform, (10.0, 49.0));
            let keys = [
                "platform",
                "metrics",
                "metrics_lines",
                "application",
                "total",
            ];
            keys.map(|k| l[k].as_u64().unwrap())
        };
        // GIVEN 20 s of 500 frames/s (10,000 ingest invocations on 2 instances), 1,000 fanout
        // batches (1 instance) and 100 connects
        let [platform, metrics, lines, application, total] = logs(10_000, true);
        // THEN ingest prints 100 windows (100 frames each), fanout 20 (one a second), connect 20:
        // 140 lines where one per invocation would be 11,100
        assert_eq!(lines, 100 + 20 + 20);
        // AND the platform lines are one set per invocation
        assert_eq!(platform, 11_100 * PLATFORM_LINES.len() as u64);
        assert_eq!(total, platform + metrics + application);
        // AND a quiet run (10 frames/s) prints one ingest window a second, not one per frame
        assert_eq!(logs(200, true)[2], 20 + 20 + 20);
        // AND at the deployed system log level (WARN) only the functions' own lines are billed
        let [platform, metrics, _, application, total] = logs(10_000, false);
        assert_eq!((platform, total), (0, metrics + application));
        assert!(total > 0);
        // AND nothing run prints nothing
        let nothing = log_bytes(0.0, [(0, 0.0); 3], 0, false, (0.0, 0.0));
        assert!(
            nothing.as_object().unwrap().values().all(|v| v == 0),
            "{nothing}"
        );
    }
}
