//! The stale-connection sweep, run on a schedule (EventBridge → this function on AWS, `ripple
//! sweep` or `ripple dev` locally). `$disconnect` is best-effort, so connections can outlive
//! their sockets. The sweep pages through connections older than the idle timeout, oldest first,
//! with Queries on one index shard after another (never a Scan), confirms each with
//! `GET @connections/{id}`, and deletes the dead ones with their memberships; the memberships'
//! REMOVE records then announce `leave` to the channels through the normal fan-out. Connections
//! older than API Gateway's 2-hour maximum are dead without asking.
//!
//! At scale one run cannot check everyone: a million connections at the sweep's share of the
//! account's `@connections` budget (10,000 requests/s, shared with every post fanout makes) take
//! longer than the function's timeout. So the sweep is paced ([`SweepConfig::checks_per_second`],
//! 500/s by default: 5% of the account's budget), stops starting checks
//! [`SweepConfig::reserve`] before its invocation's deadline (or after
//! [`SweepConfig::max_checks`]), and saves where it stopped in a cursor item (`sweep#cursor`,
//! [`ripple_common::items::SweepCursorItem`]); the next run resumes there. A cycle goes through
//! the 16 index shards in order, each oldest first, so every connection old enough when the
//! cycle reaches it is examined once per cycle; a run that finishes a cycle stops, and the next
//! run starts a new one. At 500 checks/s and 50 s per 5-minute run, a million connections take
//! 40 runs (about 3 h 20 min) per cycle; `check_after` connections connected since are left to
//! the next cycle.
//!
//! The cursor is read with a Query and written with a one-item BatchWriteItem, the table
//! actions fanout's role already has. If it cannot be read, the run starts a cycle from the
//! beginning (connections are examined again, never skipped); if it cannot be saved, the next
//! run repeats this run's work.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ripple_common::items::{ConnectionItem, SweepCursorItem};
use ripple_common::keys::SWEEP_SHARDS;
use tokio::time::{Instant, MissedTickBehavior};

use crate::FanoutState;

/// What counts as a candidate, what is dead for sure, and how fast and how long to go.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Connections older than this are checked (API Gateway closes idle sockets after 10 min).
    pub check_after: Duration,
    /// Connections older than this are dead (API Gateway's maximum duration is 2 h).
    pub max_age: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// `@connections` calls (GET, or DELETE for the over-age) started per second at most: the
    /// sweep's share of the account's 10,000 requests/s.
    pub checks_per_second: u32,
    /// Stop starting checks this long before the deadline, to drain and save the cursor.
    pub reserve: Duration,
    /// Checks one run starts at most (None: no limit but the deadline).
    pub max_checks: Option<usize>,
    /// Connections read per index Query.
    pub page_size: i32,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            check_after: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(2 * 3600),
            concurrency: 16,
            checks_per_second: 500,
            reserve: Duration::from_secs(5),
            max_checks: None,
            page_size: 200,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub examined: usize,
    pub alive: usize,
    pub deleted: usize,
    /// Checks that got no clear answer (left for the next cycle).
    pub unknown: usize,
    /// Index shards that could not be read (the cursor stays before them).
    pub failed_shards: usize,
    /// This run reached the end of the last shard: the next run starts a new cycle.
    pub cycle_finished: bool,
    /// This run stopped at its deadline or check budget; the next resumes from the cursor.
    pub stopped_early: bool,
    /// The cursor could not be read or saved (see the module's docs).
    pub cursor_failed: bool,
}

enum Verdict {
    Alive,
    Deleted,
    Unknown,
}

async fn check(state: &FanoutState, conn: ConnectionItem, now_ms: u64, max_age_ms: u64) -> Verdict {
    let url = state.connections.url_for(&conn.endpoint());
    let too_old = now_ms.saturating_sub(conn.connected_at) > max_age_ms;
    let dead = if too_old {
        // Make sure the socket is closed too; 410 is as good.
        let _ = state
            .connections
            .disconnect(&url, &conn.connection_id)
            .await;
        true
    } else {
        match state.connections.is_alive(&url, &conn.connection_id).await {
            Some(alive) => !alive,
            None => return Verdict::Unknown,
        }
    };
    if !dead {
        return Verdict::Alive;
    }
    match state.store.delete_connection(&conn.connection_id).await {
        Ok(_) => Verdict::Deleted,
        Err(err) => {
            tracing::warn!(connection_id = %conn.connection_id, error = %err, "sweep could not delete a dead connection");
            Verdict::Unknown
        }
    }
}

/// Runs the sweep at `now_ms` from the saved cursor to the end of the cycle, paced, with no
/// deadline (`ripple sweep`, `ripple dev`, tests); see [`sweep_until`].
pub async fn sweep(state: &FanoutState, config: &SweepConfig, now_ms: u64) -> SweepReport {
    sweep_until(state, config, now_ms, None).await
}

/// Runs the sweep at `now_ms` from the saved cursor, paced, until the cycle ends, the check
/// budget is spent, or `deadline` minus [`SweepConfig::reserve`] (the Lambda invocation's
/// deadline) is reached; then saves the cursor.
pub async fn sweep_until(
    state: &FanoutState,
    config: &SweepConfig,
    now_ms: u64,
    deadline: Option<Instant>,
) -> SweepReport {
    let mut report = SweepReport::default();
    let mut cursor = match state.store.sweep_cursor().await {
        Ok(Some(cursor)) if cursor.shard < SWEEP_SHARDS => cursor,
        Ok(_) => SweepCursorItem::start(0, now_ms),
        Err(err) => {
            tracing::warn!(error = %err, "sweep could not read its cursor: starting a cycle");
            report.cursor_failed = true;
            SweepCursorItem::start(0, now_ms)
        }
    };
    let before = now_ms.saturating_sub(config.check_after.as_millis() as u64);
    let max_age_ms = config.max_age.as_millis() as u64;
    let stop_at = deadline.map(|d| d.checked_sub(config.reserve).unwrap_or(d));
    let period = Duration::from_secs(1) / config.checks_per_second.max(1);
    let mut pacer = tokio::time::interval(period);
    pacer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let budget = config.max_checks.unwrap_or(usize::MAX);
    let concurrency = config.concurrency.max(1);
    let page_size = config.page_size.max(1);

    'shards: while cursor.shard < SWEEP_SHARDS {
        let page = match state
            .store
            .connections_page(cursor.shard, cursor.after.as_deref(), before, page_size)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(shard = cursor.shard, error = %err, "sweep could not read an index shard");
                report.failed_shards += 1;
                report.stopped_early = true;
                break;
            }
        };
        let last_page = page.len() < page_size as usize;
        let mut in_flight = FuturesUnordered::new();
        for conn in page {
            let out_of_time = stop_at.is_some_and(|t| Instant::now() >= t);
            if report.examined >= budget || out_of_time {
                report.stopped_early = true;
                break;
            }
            while in_flight.len() >= concurrency {
                if let Some(verdict) = in_flight.next().await {
                    report.count(verdict);
                }
            }
            pacer.tick().await;
            report.examined += 1;
            cursor.after = Some(conn.gsi1sk.clone());
            in_flight.push(check(state, conn, now_ms, max_age_ms));
        }
        while let Some(verdict) = in_flight.next().await {
            report.count(verdict);
        }
        if report.stopped_early {
            break 'shards;
        }
        if last_page {
            cursor.shard += 1;
            cursor.after = None;
        }
    }
    if cursor.shard >= SWEEP_SHARDS {
        report.cycle_finished = true;
        cursor = SweepCursorItem::start(cursor.cycles + 1, now_ms);
    }
    cursor.updated_at = now_ms;
    if let Err(err) = state.store.put_sweep_cursor(&cursor).await {
        tracing::warn!(error = %err, "sweep could not save its cursor: the next run repeats this one");
        report.cursor_failed = true;
    }
    tracing::info!(
        examined = report.examined,
        alive = report.alive,
        deleted = report.deleted,
        unknown = report.unknown,
        cycle_finished = report.cycle_finished,
        shard = cursor.shard,
        "sweep done"
    );
    report
}

impl SweepReport {
    fn count(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Alive => self.alive += 1,
            Verdict::Deleted => self.deleted += 1,
            Verdict::Unknown => self.unknown += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_lambda_events::dynamodb::EventRecord;
    use ripple_common::stream_record::StreamRecord;

    use super::*;
    use crate::changes::{Skip, change_of};

    #[test]
    fn saving_the_cursor_is_a_stream_record_fanout_passes_over_not_a_malformed_one() {
        // GIVEN the stream record of a cursor write, as DynamoDB Streams delivers it
        let cursor = SweepCursorItem::start(3, 1_795_000_000_000);
        let image: serde_dynamo::Item = serde_dynamo::to_item(&cursor).unwrap();
        let record = StreamRecord::write("MODIFY", "1", serde_json::to_value(&image).unwrap())
            .created_secs(1_795_000_000)
            .sequence_number("1")
            .size_bytes(80);
        let record: EventRecord = serde_json::from_value(record.to_json()).unwrap();
        // WHEN fanout reads it THEN it is ignored (no MalformedRecords, nobody hears of it)
        assert!(matches!(change_of(0, &record), Err(Skip::Ignored)));
        // AND the item decodes back as a cursor
        let decoded = ripple_common::items::Item::from_image(image).unwrap();
        assert_eq!(decoded, ripple_common::items::Item::SweepCursor(cursor));
    }
}
