//! The stale-connection sweep, run on a schedule (EventBridge → this function on AWS, `ripple
//! sweep` or `ripple dev` locally). `$disconnect` is best-effort, so connections can outlive
//! their sockets. The sweep pages through connections older than the idle timeout, oldest first,
//! with one Query per index shard (never a Scan), confirms each with `GET @connections/{id}`,
//! and deletes the dead ones with their memberships; the memberships' REMOVE records then
//! announce `leave` to the channels through the normal fan-out. Connections older than API
//! Gateway's 2-hour maximum are dead without asking.

use std::time::Duration;

use futures::StreamExt;
use ripple_common::items::ConnectionItem;
use ripple_common::keys::SWEEP_SHARDS;

use crate::FanoutState;

/// What counts as a candidate, and what is dead for sure.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Connections older than this are checked (API Gateway closes idle sockets after 10 min).
    pub check_after: Duration,
    /// Connections older than this are dead (API Gateway's maximum duration is 2 h).
    pub max_age: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            check_after: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(2 * 3600),
            concurrency: 16,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub examined: usize,
    pub alive: usize,
    pub deleted: usize,
    /// Checks that got no clear answer (left for the next sweep).
    pub unknown: usize,
    /// Index shards that could not be read.
    pub failed_shards: usize,
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

/// Runs one sweep at `now_ms`.
pub async fn sweep(state: &FanoutState, config: &SweepConfig, now_ms: u64) -> SweepReport {
    let mut report = SweepReport::default();
    let before = now_ms.saturating_sub(config.check_after.as_millis() as u64);
    let max_age_ms = config.max_age.as_millis() as u64;
    for shard in 0..SWEEP_SHARDS {
        let candidates = match state.store.connections_before(shard, before).await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(shard, error = %err, "sweep could not read an index shard");
                report.failed_shards += 1;
                continue;
            }
        };
        report.examined += candidates.len();
        let checks: Vec<_> = candidates
            .into_iter()
            .map(|conn| check(state, conn, now_ms, max_age_ms))
            .collect();
        let verdicts: Vec<Verdict> = futures::stream::iter(checks)
            .buffer_unordered(config.concurrency.max(1))
            .collect()
            .await;
        for verdict in verdicts {
            match verdict {
                Verdict::Alive => report.alive += 1,
                Verdict::Deleted => report.deleted += 1,
                Verdict::Unknown => report.unknown += 1,
            }
        }
    }
    tracing::info!(
        examined = report.examined,
        alive = report.alive,
        deleted = report.deleted,
        unknown = report.unknown,
        "sweep done"
    );
    report
}
