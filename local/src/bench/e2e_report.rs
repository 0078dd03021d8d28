//! The results of `ripple bench e2e`: the JSON line's shape and the readable report. Pure.

use serde::Serialize;

use super::estimate::{ClientCounts, Estimate, ItemSizes, ServerCounts};
use super::latency::Latencies;
use super::report::{round, text_table, thousands};

/// Latency percentiles of the measured updates, in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
}

impl From<&Latencies> for LatencySummary {
    fn from(l: &Latencies) -> Self {
        Self {
            p50: l.percentile(50.0),
            p95: l.percentile(95.0),
            p99: l.percentile(99.0),
            max: l.max(),
            mean: l.mean().map(|m| round(m, 2)),
        }
    }
}

/// Everything `ripple bench e2e --json` prints, on one line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct E2eResults {
    pub players: usize,
    pub channels: usize,
    pub hz: f64,
    pub seconds: f64,
    pub warmup_seconds: f64,
    /// The emulated stream: shards, concurrent batches per shard, poll interval.
    pub shards: usize,
    pub parallelization_factor: usize,
    pub poll_interval_ms: u64,
    /// Measured positions sent.
    pub sent: u64,
    /// Measured updates delivered, summed over receivers.
    pub delivered: u64,
    /// `sent × (channel size − 1)`: what delivery without coalescing would be.
    pub expected: u64,
    /// Frames carrying measured updates.
    pub frames: u64,
    /// (receiver, sender) pairs in a channel where the receiver did not end with the sender's
    /// last position: lost updates (coalescing never causes this). Should be 0.
    pub final_positions_missed: u64,
    /// `frames / delivered` (outbound, measured updates only).
    pub messages_per_update: f64,
    /// Billed API Gateway messages, in and out, per delivered update over the whole run.
    pub billed_messages_per_update: f64,
    /// What this load would cost at this architecture's floor (perfect 100 ms batching, no reads,
    /// no logs), per million delivered updates, and this run's cost over it.
    pub floor_per_million_delivered_usd: Option<f64>,
    pub vs_floor: Option<f64>,
    pub latency_ms: LatencySummary,
    /// Publishes refused with an `error` frame.
    pub refused: u64,
    pub server: ServerCounts,
    pub client: ClientCounts,
    pub item_bytes: ItemSizes,
    pub estimate: Estimate,
    pub histogram: Option<String>,
}

fn ms(v: Option<u64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v} ms"))
}

/// The readable report.
pub fn render(r: &E2eResults) -> String {
    let e = &r.estimate;
    let d = &e.dynamodb;
    let l = &e.lambda;
    let mut out = format!(
        "ripple bench e2e: {} players in {} channel(s) at {} Hz for {} s (after {} s warm-up), ripple dev on loopback\nstream: {} shards, parallelization factor {}, poll every {} ms\n\n",
        r.players,
        r.channels,
        r.hz,
        r.seconds,
        r.warmup_seconds,
        r.shards,
        r.parallelization_factor,
        r.poll_interval_ms
    );
    let rows = vec![
        vec![
            "sent".to_owned(),
            format!("{} positions", thousands(r.sent)),
        ],
        vec![
            "delivered".to_owned(),
            format!(
                "{} updates (sent × recipients: {})",
                thousands(r.delivered),
                thousands(r.expected)
            ),
        ],
        vec![
            "latency write→receive".to_owned(),
            format!(
                "p50 {}  p95 {}  p99 {}  max {}",
                ms(r.latency_ms.p50),
                ms(r.latency_ms.p95),
                ms(r.latency_ms.p99),
                ms(r.latency_ms.max)
            ),
        ],
        vec![
            "messages_per_update".to_owned(),
            format!(
                "{:.4} ({} frames for {} updates)",
                r.messages_per_update,
                thousands(r.frames),
                thousands(r.delivered)
            ),
        ],
        vec![
            "billed messages / update".to_owned(),
            format!(
                "{:.4} (in and out, whole run: {} + {} for {} updates)",
                r.billed_messages_per_update,
                thousands(r.client.sent),
                thousands(r.client.messages_out),
                thousands(r.client.delivered)
            ),
        ],
        vec!["refused publishes".to_owned(), thousands(r.refused)],
        vec![
            "final positions missed".to_owned(),
            format!(
                "{} (receivers without a peer's last position: lost updates)",
                thousands(r.final_positions_missed)
            ),
        ],
        vec![
            "DynamoDB writes".to_owned(),
            format!(
                "{} requests, {} WRU ({} positions, {} on connect, {} on disconnect)",
                thousands(d.write_requests),
                thousands(d.write_units.round() as u64),
                thousands(d.position_writes),
                thousands(d.connect_writes),
                thousands(d.disconnect_writes)
            ),
        ],
        vec![
            "DynamoDB reads".to_owned(),
            format!(
                "{} requests, {} RRU ({} membership GetItem, ~{} fanout Query, {} on disconnect)",
                thousands(d.read_requests),
                thousands(d.read_units.round() as u64),
                thousands(d.member_reads),
                thousands(d.fanout_queries),
                thousands(d.disconnect_queries)
            ),
        ],
        vec![
            "Lambda".to_owned(),
            format!(
                "{} ingest, {} connect, {} fanout invocations ({:.1} records/batch); {:.2} ms ingest, {:.2} ms fanout each (measured)",
                thousands(l.ingest_invocations),
                thousands(l.connect_invocations),
                thousands(l.fanout_invocations),
                l.avg_records_per_batch,
                l.ingest_ms,
                l.fanout_ms
            ),
        ],
        vec![
            "cost per million delivered".to_owned(),
            e.per_million_delivered_usd
                .map_or("–".to_owned(), |c| format!("${c:.4}")),
        ],
        vec![
            "floor for this load".to_owned(),
            match (r.floor_per_million_delivered_usd, r.vs_floor) {
                (Some(f), Some(x)) => format!("${f:.4} per million delivered; this run {x:.2}× it"),
                _ => "–".to_owned(),
            },
        ],
    ];
    let key_width = rows
        .iter()
        .map(|r| r.first().map_or(0, |k| k.chars().count()))
        .max()
        .unwrap_or(0);
    for row in &rows {
        if let [key, value] = row.as_slice() {
            out.push_str(&format!("  {key:<key_width$}  {value}\n"));
        }
    }
    out.push_str("\n  the bill for this run (whole run, over ");
    out.push_str(&thousands(r.client.delivered));
    out.push_str(" delivered updates):\n");
    let lines: Vec<Vec<String>> = e
        .lines
        .iter()
        .map(|c| {
            vec![
                c.item.to_owned(),
                format!("{:.3}", c.quantity),
                c.unit.to_owned(),
                format!("${:.8}", c.usd),
                e.per_million_delivered_usd.map_or("–".to_owned(), |_| {
                    format!("${:.4}", c.usd / r.client.delivered.max(1) as f64 * 1e6)
                }),
            ]
        })
        .collect();
    for line in text_table(
        &["item", "quantity", "unit", "cost", "per M updates"],
        &lines,
    )
    .lines()
    {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\n  assumptions:\n");
    for a in &e.assumptions {
        out.push_str("    - ");
        out.push_str(a);
        out.push('\n');
    }
    if let Some(h) = &r.histogram {
        out.push_str(&format!("\n  histogram: {h}\n"));
    }
    out
}
