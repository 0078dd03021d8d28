//! `bench e2e`'s estimate of what the run would have used and cost on AWS: DynamoDB requests and
//! capacity units, Lambda invocations and billed time, API Gateway messages, from `ripple dev`'s
//! counters, the players' own counts, item sizes and the measured handler times. Pure.

use ripple_common::items::{ConnectionItem, Endpoint, MemberItem};
use serde::{Deserialize, Serialize};

use super::calibrate::HandlerTimes;
use super::cost::{
    CostLine, Prices, Usage, bill, expected_distinct_channels, item_bytes, per_million,
    strong_read_units, total, write_units,
};
use super::logs::{Invocations, LogBytes, RunShape};

/// What `ripple dev`'s counters said at the end of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerCounts {
    pub connects: u64,
    pub disconnects: u64,
    pub frames_accepted: u64,
    /// Strongly consistent membership reads ingest made (one state in `ripple dev`).
    #[serde(default)]
    pub membership_reads: u64,
    pub frames_refused: u64,
    pub frames_failed: u64,
    pub fanout_batches: u64,
    pub fanout_records: u64,
}

/// What the players counted over the whole run (warm-up included).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientCounts {
    pub sent: u64,
    pub delivered: u64,
    /// Billed 32 KB messages over every frame received.
    pub messages_out: u64,
    /// Time connected, summed over players.
    pub connection_minutes: f64,
    /// Wall time of the run, connects to closes (for the instances' metrics windows).
    #[serde(default)]
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
    /// Sizes of items shaped like the run's.
    pub fn sample(channel: &str, user: &str, connection_id: &str, endpoint: &Endpoint) -> Self {
        let now = ripple_common::now_ms();
        let connection = ConnectionItem::new(connection_id, user, endpoint, now, now / 1000);
        let member = MemberItem::new(&connection, channel, now);
        let seq = super::players::MEASURE_SEQ_BASE + 100;
        let position =
            super::batch::position_item(channel, user, connection_id, seq, -12.34, 45.67, now);
        let size = |item: Result<serde_dynamo::Item, _>| item.map_or(0, |i| item_bytes(&i));
        Self {
            connection: size(serde_dynamo::to_item(&connection)),
            member: size(serde_dynamo::to_item(&member)),
            position: size(serde_dynamo::to_item(&position)),
        }
    }
}

/// DynamoDB requests and capacity units.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DynamoUsage {
    pub write_requests: u64,
    pub write_units: f64,
    pub read_requests: u64,
    pub read_units: f64,
    /// Conditional PutItem per accepted position.
    pub position_writes: u64,
    /// Connection PutItem + membership BatchWriteItem per connect.
    pub connect_writes: u64,
    /// BatchWriteItem deleting the connection and its membership per disconnect.
    pub disconnect_writes: u64,
    /// Strongly consistent membership GetItems by ingest: a connection's first position (and
    /// chat messages) per ingest instance, instances as on AWS (Little's law).
    pub member_reads: u64,
    /// Index Queries by fanout (one per channel per batch; estimated).
    pub fanout_queries: u64,
    /// Strongly consistent partition Query per disconnect.
    pub disconnect_queries: u64,
}

/// Lambda invocations and billed time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LambdaUsage {
    pub ingest_invocations: u64,
    pub connect_invocations: u64,
    pub fanout_invocations: u64,
    pub ingest_ms: f64,
    pub fanout_ms: f64,
    pub avg_records_per_batch: f64,
    pub billed_ms: f64,
}

/// The whole estimate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub dynamodb: DynamoUsage,
    pub lambda: LambdaUsage,
    pub usage: Usage,
    /// What the functions would print to CloudWatch Logs.
    pub logs: LogBytes,
    pub lines: Vec<CostLine>,
    pub total_usd: f64,
    pub per_million_delivered_usd: Option<f64>,
    pub assumptions: Vec<&'static str>,
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

/// The floor of this architecture for a room of `members` at `hz`, per million delivered
/// updates: every update billed once in (one message, one position write, one ingest request and
/// its measured time) and shared by the other `members − 1`, and each recipient billed one
/// outbound message per 100 ms (perfect batching: at most 10 frames a second, at most one per
/// update). Reads and logs are left out: the floor is what no design of this shape can go under.
pub fn floor_per_million_delivered(
    members: f64,
    hz: f64,
    sizes: ItemSizes,
    times: &HandlerTimes,
    p: &Prices,
) -> Option<f64> {
    let recipients = members - 1.0;
    if recipients <= 0.0 || hz <= 0.0 {
        return None;
    }
    let frames_per_update = hz.min(10.0) / hz / recipients;
    let per_update_in = (p.apigw_per_million_messages
        + p.dynamodb_per_million_write_units * write_units(sizes.position) as f64
        + p.lambda_per_million_requests
        + p.lambda_per_gb_second * p.lambda_memory_gb * times.ingest_ms.ceil().max(1.0) / 1000.0
            * 1e6)
        / recipients;
    Some(per_update_in + p.apigw_per_million_messages * frames_per_update)
}

/// Estimates DynamoDB, Lambda and the bill for a run.
pub fn estimate(
    server: &ServerCounts,
    client: &ClientCounts,
    channels: usize,
    members_per_channel: f64,
    sizes: ItemSizes,
    times: &HandlerTimes,
    prices: &Prices,
) -> Estimate {
    let s = server;
    let member_wru = write_units(sizes.member) as f64;
    // A session: the connection (table and sweep index), its `welcomed` mark (table and index),
    // the membership, and the roster entry fanout activates in a transaction (TransactWriteItems
    // bills 2 units per item, the membership's ConditionCheck included).
    let session_wru = 4.0 * write_units(sizes.connection) as f64 + member_wru + 4.0 * member_wru;
    let avg_records = super::ratio(s.fanout_records as f64, s.fanout_batches as f64);
    let fanout_queries = (s.fanout_batches as f64
        * expected_distinct_channels(channels, avg_records))
    .round() as u64;
    let query_bytes = (members_per_channel * sizes.member as f64).ceil() as u64;
    // A connection's first position: a transaction (2 units per item, the membership's
    // ConditionCheck included) instead of the plain write counted with the positions.
    let proof_wru = 2.0 * (member_wru + write_units(sizes.position) as f64)
        - write_units(sizes.position) as f64;
    // Each AWS instance learns a connection's user once (one membership read); ripple dev runs
    // one instance, AWS about invocations per second × handler time (Little's law).
    let ingest_invocations = s.frames_accepted + s.frames_refused + s.frames_failed;
    let ingest_instances =
        super::ratio(ingest_invocations as f64, client.seconds) * times.ingest_ms / 1000.0;
    let member_reads = ((s.membership_reads as f64 * ingest_instances.ceil().max(1.0)) as u64)
        .min(ingest_invocations.max(s.membership_reads));
    let dynamodb = DynamoUsage {
        position_writes: s.frames_accepted,
        connect_writes: 2 * s.connects,
        disconnect_writes: s.disconnects,
        member_reads,
        fanout_queries,
        disconnect_queries: s.disconnects,
        write_requests: s.frames_accepted + 2 * s.connects + s.disconnects,
        write_units: s.frames_accepted as f64 * write_units(sizes.position) as f64
            + (s.connects + s.disconnects) as f64 * session_wru
            + s.connects as f64 * proof_wru,
        read_requests: member_reads + fanout_queries + s.disconnects,
        read_units: member_reads as f64 * strong_read_units(sizes.member)
            + fanout_queries as f64 * strong_read_units(query_bytes)
            + s.disconnects as f64 * strong_read_units(sizes.connection + sizes.member),
    };
    let ingest = Invocations {
        count: s.frames_accepted + s.frames_refused + s.frames_failed,
        ms: times.ingest_ms,
    };
    let connect = Invocations {
        count: s.connects + s.disconnects,
        ms: times.ingest_ms,
    };
    let fanout = Invocations {
        count: s.fanout_batches,
        ms: times.fanout_ms,
    };
    let billed = |f: Invocations| f.count as f64 * f.ms.ceil().max(1.0);
    let lambda = LambdaUsage {
        ingest_invocations: ingest.count,
        connect_invocations: connect.count,
        fanout_invocations: fanout.count,
        ingest_ms: times.ingest_ms,
        fanout_ms: times.fanout_ms,
        avg_records_per_batch: avg_records,
        billed_ms: billed(ingest) + billed(connect) + billed(fanout),
    };
    let logs = super::logs::estimate(&RunShape {
        seconds: client.seconds,
        ingest,
        connect,
        fanout,
        frames_refused: s.frames_refused,
        platform_lines: ripple_common::deploy::LAMBDA_SYSTEM_LOG_LEVEL != "WARN",
        records_per_batch: avg_records,
        posts_per_batch: super::ratio(client.messages_out as f64, s.fanout_batches as f64),
    });
    let usage = Usage {
        inbound_messages: client.sent,
        outbound_messages: client.messages_out,
        connection_minutes: client.connection_minutes,
        write_units: dynamodb.write_units,
        read_units: dynamodb.read_units,
        lambda_requests: ingest.count + connect.count + fanout.count,
        lambda_billed_ms: lambda.billed_ms,
        log_bytes: logs.total,
    };
    let lines = bill(&usage, prices);
    let total_usd = total(&lines);
    Estimate {
        per_million_delivered_usd: per_million(total_usd, client.delivered),
        dynamodb,
        lambda,
        usage,
        logs,
        lines,
        total_usd,
        assumptions: ASSUMPTIONS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cost::PRICES;

    #[test]
    fn positions_connects_and_batches_become_requests_units_and_dollars() {
        // GIVEN 1,000 accepted positions from 10 players in 2 channels, 100 fanout batches of
        // 10 records, small items, and handlers of 2.5 ms (ingest) and 7.2 ms (fanout)
        let server = ServerCounts {
            connects: 10,
            disconnects: 10,
            frames_accepted: 1_000,
            membership_reads: 10,
            fanout_batches: 100,
            fanout_records: 1_000,
            ..ServerCounts::default()
        };
        let client = ClientCounts {
            sent: 1_000,
            delivered: 4_000,
            messages_out: 500,
            connection_minutes: 2.0,
            seconds: 12.0,
        };
        let sizes = ItemSizes {
            connection: 200,
            member: 300,
            position: 250,
        };
        let times = HandlerTimes {
            ingest_ms: 2.5,
            fanout_ms: 7.2,
            fanout_records: 10,
        };
        // WHEN estimated
        let e = estimate(&server, &client, 2, 5.0, sizes, &times, &PRICES);
        // THEN writes: 1,000 positions + 2 per connect + 1 per disconnect; 9 WRU per session end
        // (connection and its welcomed mark with the index, membership, roster transaction),
        // and 3 more per connect for the first position's proving transaction
        assert_eq!(e.dynamodb.write_requests, 1_000 + 20 + 10);
        assert_eq!(e.dynamodb.write_units, 1_000.0 + 20.0 * 9.0 + 10.0 * 3.0);
        // AND reads: one membership GetItem per player (83 frames/s × 2.5 ms: one instance), ~2
        // strongly consistent roster Queries per batch at 1 RRU, 1 per disconnect
        assert_eq!(e.dynamodb.member_reads, 10);
        assert_eq!(e.dynamodb.fanout_queries, 200);
        assert_eq!(e.dynamodb.read_units, 10.0 + 200.0 * 1.0 + 10.0);
        // AND Lambda: 1,000 ingest + 20 connect invocations at 3 ms, 100 fanout at 8 ms
        assert_eq!(e.lambda.billed_ms, 1_020.0 * 3.0 + 100.0 * 8.0);
        assert_eq!(e.usage.lambda_requests, 1_120);
        // AND the per-million price is the total over 4,000 updates
        let per_million = e.per_million_delivered_usd.unwrap();
        assert!((per_million - e.total_usd / 4_000.0 * 1e6).abs() < 1e-9);
        // AND the logs: no platform lines at the deployed system log level (WARN), the
        // functions' own lines billed on their own line
        assert_eq!(e.logs.platform, 0, "{:?}", e.logs);
        assert!(e.logs.total > 0, "{:?}", e.logs);
        assert_eq!(e.usage.log_bytes, e.logs.total);
        assert_eq!(e.lines.len(), 8);
        assert_eq!(e.lines[7].item, "CloudWatch Logs ingestion");
    }

    #[test]
    fn sample_items_are_a_few_hundred_bytes() {
        // GIVEN items shaped like a run's WHEN sized THEN each is well under 1 KB and not empty
        let endpoint = Endpoint {
            domain: "127.0.0.1:40000".into(),
            stage: "local".into(),
        };
        let s = ItemSizes::sample("bench-0", "p0001", "AbCdEfGhIjK=", &endpoint);
        for size in [s.connection, s.member, s.position] {
            assert!((50..1024).contains(&size), "{s:?}");
        }
    }
}
