//! Slow consumers: a connection that could not take a frame after its retries (a client that
//! does not read its socket answers 429 once API Gateway's buffer for it is full; a dead network
//! times out) is told why, when it can still hear it, and disconnected with
//! `DELETE @connections/{id}`. Its socket closes, its `$disconnect` saves the session as for any
//! close, and it catches up from the table when it reconnects (`resume=1`, or `since`): chat is
//! in DynamoDB, positions are superseded by the next ones. Nobody else waits for it or gets
//! copies because of it.

use futures::StreamExt;
use ripple_common::connections::{Connections, PostOutcome};
use ripple_common::protocol::{ErrorCode, ServerFrame};

use crate::deliver::Lagging;

/// Disconnects at once, per invocation.
const IN_FLIGHT: usize = 16;

/// The `error` frame a slow consumer gets before its socket is closed.
pub fn farewell() -> Vec<u8> {
    ServerFrame::Error {
        code: ErrorCode::SlowConsumer,
        message: "this connection could not take its frames and is being closed; reconnect with resume=1 (or since) to catch up".into(),
    }
    .to_json()
    .into_bytes()
}

/// How the closes went.
#[derive(Debug, Default)]
pub struct Closed {
    /// Closed now (`$disconnect` follows, best effort).
    pub closed: usize,
    /// Answered 410: already gone, to be deleted like any gone connection.
    pub gone: Vec<String>,
}

/// One try at the `error` frame (it may well fail: that is why it is here), then the close.
pub async fn disconnect_all(connections: &Connections, lagging: &[Lagging]) -> Closed {
    let closes: Vec<_> = lagging
        .iter()
        .map(|l| async move {
            let _ = connections
                .post(&l.url, &l.connection_id, farewell())
                .await;
            let outcome = connections.disconnect(&l.url, &l.connection_id).await;
            if !matches!(outcome, PostOutcome::Delivered | PostOutcome::Gone) {
                tracing::warn!(connection_id = %l.connection_id, ?outcome, "could not disconnect a slow consumer; the next post to it tries again");
            }
            (l.connection_id.clone(), outcome)
        })
        .collect();
    let outcomes: Vec<(String, PostOutcome)> = futures::stream::iter(closes)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut closed = Closed::default();
    for (id, outcome) in outcomes {
        match outcome {
            PostOutcome::Delivered => closed.closed += 1,
            PostOutcome::Gone => closed.gone.push(id),
            _ => {}
        }
    }
    closed
}
