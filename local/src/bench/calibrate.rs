//! Handler time per invocation, for the Lambda part of `bench e2e`'s cost: the real `ingest` and
//! `fanout` handlers timed on a side table in the same DynamoDB (seeded like the run: same
//! channels, same members per channel), fanout posting to a loopback `@connections` server with
//! `ripple dev`'s pacing. Nothing here touches the run's table or players.

use std::time::{Duration, Instant};

use fanout::FanoutState;
use ingest::{IngestState, Outcome};
use ripple_common::config::{Settings, local_sdk_config};
use ripple_common::connections::Connections;
use ripple_common::store::Store;
use serde::Serialize;

use super::layout::{self, Layout};
use crate::connections_server::LoopbackConnections;

/// Position frames timed through `ingest`, at most.
const INGEST_SAMPLES: usize = 100;
/// Frames per sending connection, kept under the per-connection publish burst.
const INGEST_SAMPLES_PER_SENDER: usize = 10;
/// Batches timed through `fanout`.
const FANOUT_SAMPLES: usize = 10;

/// Mean handler time per invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HandlerTimes {
    pub ingest_ms: f64,
    pub fanout_ms: f64,
    /// Records in each timed fanout batch (the run's average batch).
    pub fanout_records: usize,
}

/// Times the handlers on a side table `{table}-calibration` at `endpoint`, with `channels`
/// channels of `members` members and fanout batches of `records` positions.
pub async fn handler_times(
    endpoint: &str,
    table: &str,
    channels: usize,
    members: usize,
    records: usize,
) -> anyhow::Result<HandlerTimes> {
    let store = super::new_table(endpoint, &format!("{table}-calibration")).await?;
    let layout = Layout::synthetic(channels.max(1), members.max(2));
    let fanout_records = records.max(1);
    let measured = async {
        layout::seed(&store, &layout).await?;
        let ingest_ms = time_ingest(&store, &layout).await?;
        let fanout_ms = time_fanout(&store, &layout, fanout_records).await?;
        anyhow::Ok(HandlerTimes {
            ingest_ms,
            fanout_ms,
            fanout_records,
        })
    }
    .await;
    super::drop_table(&store).await;
    measured
}

fn mean_ms(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / n.max(1) as f64
}

async fn time_ingest(store: &Store, layout: &Layout) -> anyhow::Result<f64> {
    let mut settings = Settings::for_table(store.table());
    // Calibration times the handler, not the per-connection publish limit.
    (settings.position_rate, settings.message_rate) = (u32::MAX, u32::MAX);
    let state = IngestState::new(store.clone(), settings);
    let senders: Vec<_> = layout.members().collect();
    anyhow::ensure!(!senders.is_empty(), "no members to publish from");
    let samples = INGEST_SAMPLES.min(senders.len() * INGEST_SAMPLES_PER_SENDER);
    let send = |k: usize, seq: usize| {
        let (channel, member) = senders[k % senders.len()];
        let body =
            format!(r#"{{"action":"position","channel":"{channel}","x":{k},"y":1.5,"seq":{seq}}}"#);
        let state = &state;
        async move {
            match ingest::ingest_frame(state, &member.connection_id, body.as_bytes()).await {
                Outcome::Accepted => Ok(()),
                Outcome::Refused(r) => anyhow::bail!("calibration frame refused: {r}"),
                Outcome::Failed(e) => {
                    Err(anyhow::Error::new(e).context("calibration frame failed"))
                }
            }
        }
    };
    // Each sender's first position proves its membership (a read and a transaction, once per
    // connection per instance: the estimate counts those apart); the run's steady state is timed.
    for k in 0..samples.min(senders.len()) {
        send(k, 1).await?;
    }
    let mut total = Duration::ZERO;
    for k in 0..samples {
        let started = Instant::now();
        send(k, k + 2).await?;
        total += started.elapsed();
    }
    Ok(mean_ms(total, samples))
}

async fn time_fanout(store: &Store, layout: &Layout, records: usize) -> anyhow::Result<f64> {
    let sink = LoopbackConnections::counting().await?;
    let connections = Connections::new(local_sdk_config(), Some(sink.url_for("calibration")));
    let state = FanoutState::new(
        store.clone(),
        connections,
        &Settings::for_table(store.table()),
    );
    let members = layout.channels.first().map_or(1, |c| c.members.len());
    let event = super::batch::build(
        layout,
        records,
        0.0,
        members,
        ripple_common::now_ms(),
        store.table(),
    )?;
    let mut total = Duration::ZERO;
    for _ in 0..FANOUT_SAMPLES {
        let started = Instant::now();
        let _ = fanout::process(&state, event.clone()).await;
        total += started.elapsed();
    }
    sink.stop().await;
    Ok(mean_ms(total, FANOUT_SAMPLES))
}
