//! New connections and new memberships: `welcome` first, then the rosters.
//!
//! API Gateway answers 410 to a post for a connection whose `$connect` has not completed (AWS
//! knowledge center, "How do I troubleshoot 410 GoneException errors with API Gateway WebSocket
//! APIs": "a message was posted to the WebSocket API before the connection was established"), and
//! the stream may well deliver the connection's record before that. A client that opens and drops
//! at once (a reload, a bot) leaves a connection that answers 410 for ever, and its `$disconnect`
//! may never come (it is best effort). Neither may hold anyone else back, so:
//!
//! - `welcome` is posted once per greeting, never waited for inside the invocation. A 410 queues
//!   another try through the stream ([`Store::queue_welcome_try`]: a MODIFY of the connection
//!   item, read by a later poll), up to [`WELCOME_TRIES`] tries (a few seconds at the stream's
//!   four polls a second). The record itself is done with: nothing after it waits.
//! - A 410 more than [`ESTABLISH_GRACE_MS`] after its `$connect` (API Gateway's integration
//!   timeout bounds `$connect`), or out of tries and still 410: the connection is gone, deleted
//!   with its memberships. A 429 or 5xx that outlasts the tries makes it a slow consumer:
//!   disconnected ([`crate::slow`]).
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
//! [`Store::queue_welcome_try`]: ripple_common::store::Store::queue_welcome_try

use std::time::Instant;

use ripple_common::connections::PostOutcome;
use ripple_common::error::StoreError;
use ripple_common::items::{ConnectionItem, MemberItem};
use ripple_common::now_ms;
use ripple_common::protocol::ServerFrame;

use crate::FanoutState;

/// Tries at a `welcome` that meets 410 (the first included), each through the stream: about
/// 0.3 s apart at the stream's cadence, so several seconds in all, far more than API Gateway
/// needs to finish a handshake once `$connect` has returned.
pub const WELCOME_TRIES: u32 = 16;

/// How long after its `$connect` a connection may still be unestablished: API Gateway's
/// integration timeout (29 s) bounds how long `$connect` may run. Past it, a 410 is proof of
/// gone at the first try.
pub const ESTABLISH_GRACE_MS: u64 = 30_000;

/// Whether a 410 may mean "not established yet" rather than "gone".
pub fn may_be_unestablished(connected_at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(connected_at_ms) < ESTABLISH_GRACE_MS
}

/// What greeting a new connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// `welcome` delivered now, memberships in their rosters.
    Welcomed,
    /// Delivered by an earlier invocation; the rosters are (re)checked.
    AlreadyWelcomed,
    /// The connection is gone (disconnected, or still 410 after its tries: deleted here).
    Gone,
    /// Not delivered now; another try is queued through the stream.
    TryAgain,
    /// Could not take its `welcome` after its tries (429, 5xx): to be disconnected.
    Slow,
    /// The deadline came before the post: Lambda must retry the record.
    Deferred,
}

impl Greeting {
    /// Whether the record is done with (no retry by Lambda needed).
    pub fn settled(self) -> bool {
        !matches!(self, Greeting::Deferred)
    }
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
        if stop_at.is_some_and(|t| Instant::now() >= t) {
            return Ok(Greeting::Deferred);
        }
        match post_welcome(state, &current).await {
            PostOutcome::Delivered => {}
            PostOutcome::Gone if !may_be_unestablished(current.connected_at, now_ms()) => {
                // Long after its `$connect`: a 410 is proof it is gone.
                state.store.delete_connection(id).await?;
                return Ok(Greeting::Gone);
            }
            outcome => {
                if state.store.queue_welcome_try(id, WELCOME_TRIES - 1).await? {
                    tracing::info!(connection_id = %id, ?outcome, tries = current.welcome_tries + 1, "welcome not delivered; another try through the stream");
                    return Ok(Greeting::TryAgain);
                }
                if outcome == PostOutcome::Gone {
                    tracing::info!(connection_id = %id, "welcome still 410 after its tries: gone");
                    state.store.delete_connection(id).await?;
                    return Ok(Greeting::Gone);
                }
                tracing::warn!(connection_id = %id, ?outcome, "welcome not delivered after its tries: a slow consumer");
                return Ok(Greeting::Slow);
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

/// One post of `welcome`, with the usual bounded retries for 429 / 5xx (never for 410).
async fn post_welcome(state: &FanoutState, connection: &ConnectionItem) -> PostOutcome {
    let frame = ServerFrame::Welcome {
        connection_id: connection.connection_id.clone(),
        user: connection.user.clone(),
    }
    .to_json()
    .into_bytes();
    let url = state.connections.url_for(&connection.endpoint());
    let mut attempt = 0;
    loop {
        attempt += 1;
        state.pacer.ready().await;
        let outcome = state
            .connections
            .post(&url, &connection.connection_id, frame.clone())
            .await;
        match &outcome {
            PostOutcome::Delivered => {
                state.pacer.succeeded();
                return outcome;
            }
            retryable if retryable.is_retryable() && attempt < state.policy.max_attempts => {
                tokio::time::sleep(state.policy.base_backoff * (1 << attempt)).await;
            }
            _ => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deadline_hands_a_greeting_back_to_lambda() {
        for g in [
            Greeting::Welcomed,
            Greeting::AlreadyWelcomed,
            Greeting::Gone,
            Greeting::TryAgain,
            Greeting::Slow,
        ] {
            assert!(g.settled(), "{g:?}");
        }
        assert!(!Greeting::Deferred.settled());
    }

    #[test]
    fn a_410_is_proof_of_gone_only_after_the_grace() {
        assert!(may_be_unestablished(1_000, 1_500));
        assert!(may_be_unestablished(1_000, 1_000 + ESTABLISH_GRACE_MS - 1));
        assert!(!may_be_unestablished(1_000, 1_000 + ESTABLISH_GRACE_MS));
        // A clock behind the connect time is young, not gone.
        assert!(may_be_unestablished(5_000, 1_000));
    }
}
