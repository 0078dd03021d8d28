//! New connections and new memberships: `welcome` first, then the rosters.
//!
//! API Gateway answers 410 to a post for a connection whose `$connect` has not completed (AWS
//! knowledge center, "How do I troubleshoot 410 GoneException errors with API Gateway WebSocket
//! APIs": "a message was posted to the WebSocket API before the connection was established"), and
//! the stream may well deliver the connection's record before that. So:
//!
//! - A 410 to the `welcome` of a connection younger than [`ESTABLISH_GRACE_MS`] is not proof it
//!   is gone: the post is retried with backoff for a moment, then the record is handed back to
//!   Lambda (`batchItemFailures`), never deleted. A connection whose item is gone was
//!   disconnected: nothing to do.
//! - Only once `welcome` is delivered is the connection marked `welcomed` and are its memberships
//!   put in their channels' rosters ([`Store::put_roster`]). Events go to roster entries only, so
//!   no event can overtake the `welcome`, whatever shard or concurrent batch carries it.
//! - A membership written later (`join`) reaches the roster through its own stream record, once
//!   its connection is `welcomed`. If the `welcome` is still under way, the welcome step puts it
//!   there: it marks the connection first and reads the memberships after, so one of the two
//!   always sees the other (both reads are strongly consistent).
//! - A retried batch never re-sends a `welcome`: `welcomed` is read first.
//!
//! [`Store::put_roster`]: ripple_common::store::Store::put_roster

use std::time::{Duration, Instant};

use ripple_common::connections::PostOutcome;
use ripple_common::error::StoreError;
use ripple_common::items::{ConnectionItem, MemberItem};
use ripple_common::protocol::ServerFrame;

use crate::FanoutState;

/// How long after its `$connect` a connection may still be unestablished: API Gateway's
/// integration timeout (29 s) bounds how long `$connect` may run.
pub const ESTABLISH_GRACE_MS: u64 = 30_000;

/// Waits between posts of a `welcome` that met 410 while the connection may not be established
/// yet (about 3 s in all), within one invocation.
const PATIENCE_MS: [u64; 6] = [50, 100, 200, 400, 800, 1600];

/// What greeting a new connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// `welcome` delivered now, memberships in their rosters.
    Welcomed,
    /// Delivered by an earlier invocation; the rosters are (re)checked.
    AlreadyWelcomed,
    /// The connection is gone (disconnected, or 410 long after its connect: deleted here).
    Gone,
    /// Still 410 while young: Lambda must retry the record.
    NotEstablished,
    /// The post kept failing (429, 5xx) or the deadline came: Lambda must retry the record.
    Failed,
}

impl Greeting {
    /// Whether the record is done with (no retry needed).
    pub fn settled(self) -> bool {
        matches!(
            self,
            Greeting::Welcomed | Greeting::AlreadyWelcomed | Greeting::Gone
        )
    }
}

/// Whether a 410 may mean "not established yet" rather than "gone".
pub fn may_be_unestablished(connected_at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(connected_at_ms) < ESTABLISH_GRACE_MS
}

/// Posts `welcome` to a new connection, then puts its memberships in their rosters.
pub async fn greet(
    state: &FanoutState,
    connection: &ConnectionItem,
    stop_at: Option<Instant>,
) -> Result<Greeting, StoreError> {
    let id = &connection.connection_id;
    let Some(current) = state.store.get_connection(id).await? else {
        return Ok(Greeting::Gone);
    };
    if !current.welcomed {
        match post_welcome(state, &current, stop_at).await {
            PostOutcome::Delivered => {}
            PostOutcome::Gone
                if may_be_unestablished(current.connected_at, ripple_common::now_ms()) =>
            {
                tracing::info!(connection_id = %id, "welcome answered 410 before the connection is established; Lambda will retry");
                return Ok(Greeting::NotEstablished);
            }
            PostOutcome::Gone => {
                state.store.delete_connection(id).await?;
                return Ok(Greeting::Gone);
            }
            other => {
                tracing::warn!(connection_id = %id, outcome = ?other, "welcome not delivered; Lambda will retry");
                return Ok(Greeting::Failed);
            }
        }
        if !state.store.mark_welcomed(id).await? {
            return Ok(Greeting::Gone);
        }
    }
    for member in state.store.connection_members(id).await? {
        state.store.put_roster(&member).await?;
    }
    Ok(if current.welcomed {
        Greeting::AlreadyWelcomed
    } else {
        Greeting::Welcomed
    })
}

/// Puts a new membership in its channel's roster if its connection has had its `welcome` (else
/// [`greet`] will). Returns whether the roster entry was written now.
pub async fn activate(state: &FanoutState, member: &MemberItem) -> Result<bool, StoreError> {
    match state.store.get_connection(&member.connection_id).await? {
        Some(connection) if connection.welcomed => state.store.put_roster(member).await,
        _ => Ok(false),
    }
}

async fn post_welcome(
    state: &FanoutState,
    connection: &ConnectionItem,
    stop_at: Option<Instant>,
) -> PostOutcome {
    let frame = ServerFrame::Welcome {
        connection_id: connection.connection_id.clone(),
        user: connection.user.clone(),
    }
    .to_json()
    .into_bytes();
    let url = state.connections.url_for(&connection.endpoint());
    let mut patience = PATIENCE_MS.iter();
    let mut retries = 0;
    loop {
        state.pacer.ready().await;
        let outcome = state
            .connections
            .post(&url, &connection.connection_id, frame.clone())
            .await;
        let wait = match &outcome {
            PostOutcome::Delivered => {
                state.pacer.succeeded();
                return outcome;
            }
            PostOutcome::Gone
                if may_be_unestablished(connection.connected_at, ripple_common::now_ms()) =>
            {
                match patience.next() {
                    Some(ms) => Duration::from_millis(*ms),
                    None => return outcome,
                }
            }
            retryable if retryable.is_retryable() && retries + 1 < state.policy.max_attempts => {
                if *retryable == PostOutcome::Throttled {
                    state.pacer.throttled();
                }
                retries += 1;
                state.policy.base_backoff * (1 << retries)
            }
            _ => return outcome,
        };
        if stop_at.is_some_and(|t| Instant::now() + wait >= t) {
            return outcome;
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_410_is_proof_of_gone_only_after_the_grace() {
        assert!(may_be_unestablished(1_000, 1_500));
        assert!(may_be_unestablished(1_000, 1_000 + ESTABLISH_GRACE_MS - 1));
        assert!(!may_be_unestablished(1_000, 1_000 + ESTABLISH_GRACE_MS));
        // A clock behind the connect time is young, not gone.
        assert!(may_be_unestablished(5_000, 1_000));
    }
}
