//! The `ingest` function: API Gateway's `join`, `leave`, `position`, `message` and `$default`
//! routes. It parses and validates the client frame, checks membership, and writes the item (a
//! membership for `join`, its deletion for `leave`, the position or the message). The fan-out
//! happens later, from the table's stream.
//!
//! A position, the hot write, proves membership without a read: the position item names the
//! connection that may publish it (`publisher`), set by a transaction that checked the membership
//! on the connection's first position in the channel and taken back at its `leave`; every later
//! position is one conditional PutItem. The instance remembers each connection's user ([`users`])
//! to find the item's key. Chat messages (human rate) read the membership. A refused frame writes nothing and answers an
//! `error` frame in the route response body, which API Gateway sends to the sender only.
//! Publishing faster than the per-connection limit is refused with `rate_limited`. A `join` outside
//! the connection's grant (the token's `channels` claim, stored on the connection item at
//! `$connect`) and a publish to a channel the grant does not let it publish to (`publish`, carried
//! on the membership as `read_only`) are refused with `forbidden`; the socket stays open.

mod limits;
pub mod metrics;
mod users;

use std::sync::Arc;

pub use limits::PublishLimits;
pub use users::Users;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use ripple_common::apigw::response;
use ripple_common::config::Settings;
use ripple_common::error::StoreError;
use ripple_common::items::{MemberItem, MessageItem, PositionItem};
use ripple_common::protocol::{
    ClientFrame, ErrorCode, MAX_CHANNELS_PER_CONNECTION, Refusal, ServerFrame, parse_client_frame,
};
use ripple_common::store::{PositionWrite, Store};

/// What the handler needs, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct IngestState {
    pub store: Store,
    pub settings: Settings,
    pub limits: Arc<PublishLimits>,
    /// Connection → user, so a member's position is written without a read ([`users`]).
    pub users: Arc<Users>,
    /// Strongly consistent membership reads made (what a DynamoDB bill counts as reads).
    pub membership_reads: Arc<std::sync::atomic::AtomicU64>,
}

impl IngestState {
    pub fn new(store: Store, settings: Settings) -> Self {
        let limits = Arc::new(PublishLimits::new(
            settings.position_rate,
            settings.message_rate,
        ));
        Self {
            store,
            settings,
            limits,
            users: Arc::default(),
            membership_reads: Arc::default(),
        }
    }
}

/// What became of a frame.
#[derive(Debug)]
pub enum Outcome {
    /// Written (or, for a stale position, deliberately dropped).
    Accepted,
    /// Written, and the sender is told so: `joined`, `left`, `ack` (the route response).
    Answered(ServerFrame),
    /// Refused: nothing written; the sender gets an `error` frame.
    Refused(Refusal),
    /// The store failed; the sender gets API Gateway's internal error.
    Failed(StoreError),
}

/// Handles one client frame, without metrics (`ripple dev`, tests).
pub async fn handle(
    state: &IngestState,
    req: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    handle_measured(state, req).await.0
}

/// Handles one client frame and adds its metrics line ([`metrics`]) to the instance's
/// aggregator (stdout in Lambda); a store failure prints at once.
pub async fn handle_with_metrics(
    state: &IngestState,
    req: ApiGatewayWebsocketProxyRequest,
    metrics: &ripple_common::emf::Aggregator<impl std::io::Write>,
) -> ApiGatewayProxyResponse {
    let (response, line, failed) = handle_measured(state, req).await;
    metrics.record(&line, failed);
    response
}

/// Handles one client frame: the response, its metrics line, and whether the store failed.
async fn handle_measured(
    state: &IngestState,
    req: ApiGatewayWebsocketProxyRequest,
) -> (
    ApiGatewayProxyResponse,
    ripple_common::emf::MetricLine,
    bool,
) {
    let connection_id = req
        .request_context
        .connection_id
        .clone()
        .unwrap_or_default();
    let outcome = if req.is_base64_encoded {
        Outcome::Refused(Refusal::new(
            ErrorCode::BadRequest,
            "binary frames are not supported: send JSON text",
        ))
    } else {
        let body = req.body.as_deref().unwrap_or_default();
        ingest_frame(state, &connection_id, body.as_bytes()).await
    };
    let function = ripple_common::emf::function_name(ripple_common::emf::ingest::FUNCTION);
    let line = metrics::frame_line(&function, ripple_common::now_ms(), &outcome);
    let failed = matches!(outcome, Outcome::Failed(_));
    let reply = match outcome {
        Outcome::Accepted => response(200, None),
        Outcome::Answered(frame) => response(200, Some(&frame.to_json())),
        Outcome::Refused(refusal) => {
            tracing::info!(connection_id, code = refusal.code.as_str(), reason = %refusal.message, "frame refused");
            response(200, Some(&refusal.to_frame()))
        }
        Outcome::Failed(err) => {
            tracing::error!(connection_id, error = %err, "frame not written");
            response(500, None)
        }
    };
    (reply, line, failed)
}

/// Validates and writes one frame from `connection_id`.
pub async fn ingest_frame(state: &IngestState, connection_id: &str, body: &[u8]) -> Outcome {
    let frame = match parse_client_frame(body) {
        Ok(frame) => frame,
        Err(refusal) => return Outcome::Refused(refusal),
    };
    if let Err(refusal) = state.limits.check(connection_id, &frame) {
        return Outcome::Refused(refusal);
    }
    match write(state, connection_id, frame).await {
        Ok(Ok(None)) => Outcome::Accepted,
        Ok(Ok(Some(answer))) => Outcome::Answered(answer),
        Ok(Err(refusal)) => Outcome::Refused(refusal),
        Err(err) => Outcome::Failed(err),
    }
}

fn forbidden(what: &str, channel: &str) -> Refusal {
    Refusal::new(
        ErrorCode::Forbidden,
        format!("your token does not allow you to {what} {channel:?}"),
    )
}

fn not_member(channel: &str) -> Refusal {
    Refusal::new(
        ErrorCode::NotMember,
        format!("join {channel:?} before publishing to it"),
    )
}

/// The membership of `connection_id` in `channel` that lets it publish (one strongly consistent
/// read), or the refusal: `not_member`, or `forbidden` for a read-only membership.
async fn publishing_member(
    state: &IngestState,
    connection_id: &str,
    channel: &str,
) -> Result<Result<MemberItem, Refusal>, StoreError> {
    state
        .membership_reads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(member) = state.store.get_member(connection_id, channel).await? else {
        return Ok(Err(not_member(channel)));
    };
    if member.read_only {
        return Ok(Err(forbidden("publish to", channel)));
    }
    state.users.remember(connection_id, &member.user);
    Ok(Ok(member))
}

/// Writes `frame`: its answer to the sender (if any), or why it was refused.
async fn write(
    state: &IngestState,
    connection_id: &str,
    frame: ClientFrame,
) -> Result<Result<Option<ServerFrame>, Refusal>, StoreError> {
    let store = &state.store;
    let now = ripple_common::now_ms();
    match frame {
        ClientFrame::Join { channel, since } => {
            let Some(connection) = store.get_connection(connection_id).await? else {
                return Ok(Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "unknown connection: reconnect",
                )));
            };
            if !connection.may_join(&channel) {
                return Ok(Err(forbidden("join", &channel)));
            }
            let joined = store.connection_members(connection_id).await?;
            if joined.len() >= MAX_CHANNELS_PER_CONNECTION
                && !joined.iter().any(|m| m.channel == channel)
            {
                return Ok(Err(Refusal::new(
                    ErrorCode::TooManyChannels,
                    format!(
                        "a connection may be in at most {MAX_CHANNELS_PER_CONNECTION} channels: leave one first"
                    ),
                )));
            }
            let cap = state.settings.max_members_per_channel as usize;
            if !joined.iter().any(|m| m.channel == channel)
                && store.count_channel_members(&channel, cap).await? >= cap
            {
                return Ok(Err(Refusal::channel_full(&channel, cap)));
            }
            let mut member = MemberItem::new(&connection, &channel, now);
            member.since = since;
            if !store.put_member_of_open_connection(&member).await? {
                return Ok(Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "unknown connection: reconnect",
                )));
            }
            Ok(Ok(Some(ServerFrame::Joined { channel })))
        }
        ClientFrame::Leave { channel } => {
            let left = store.delete_member(connection_id, &channel).await?;
            // The leaver's positions stop at once: its publisher mark goes with the membership
            // (after it, so a position racing the leave cannot prove the membership again). A
            // mark left by a leave that failed half-way is taken back by the retry, on any
            // instance: one that never saw the connection reads its user from the connection
            // item (a leave runs at human rate).
            let user = match left.as_ref().map(|m| m.user.clone()) {
                Some(user) => Some(user),
                None => match state.users.get(connection_id) {
                    Some(user) => Some(user),
                    None => store.get_connection(connection_id).await?.map(|c| c.user),
                },
            };
            if let Some(user) = user {
                store
                    .revoke_publisher(&channel, &user, connection_id)
                    .await?;
            }
            if left.is_none() {
                return Ok(Err(not_member(&channel)));
            }
            Ok(Ok(Some(ServerFrame::Left { channel })))
        }
        ClientFrame::Position(update) => {
            let channel = update.channel.clone();
            // A known connection writes with the membership proof in the write's condition and
            // no read; the first position (or one after another connection of the user
            // published) reads the membership and proves it in a transaction.
            let (user, proven) = match state.users.get(connection_id) {
                Some(user) => (user, false),
                None => match publishing_member(state, connection_id, &channel).await? {
                    Ok(member) => (member.user, true),
                    Err(refusal) => return Ok(Err(refusal)),
                },
            };
            let item = PositionItem::new(
                &user,
                connection_id,
                update,
                now,
                state.settings.position_ttl_secs,
            );
            let mut written = if proven {
                PositionWrite::NotPublisher
            } else {
                store.put_position_as_publisher(&item).await?
            };
            if written == PositionWrite::NotPublisher {
                if !proven
                    && let Err(refusal) = publishing_member(state, connection_id, &channel).await?
                {
                    return Ok(Err(refusal));
                }
                written = store.put_position_for_member(&item).await?;
            }
            match written {
                PositionWrite::Written => {}
                PositionWrite::Stale => {
                    tracing::debug!(connection_id, seq = item.seq, "stale position dropped");
                }
                PositionWrite::NotMember | PositionWrite::NotPublisher => {
                    return Ok(Err(not_member(&channel)));
                }
            }
            // Positions are not answered: 10 a second, ordered by `seq`, superseded anyway.
            Ok(Ok(None))
        }
        ClientFrame::Message { channel, text } => {
            let member = match publishing_member(state, connection_id, &channel).await? {
                Ok(member) => member,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let item = MessageItem::new(
                channel,
                &member.user,
                connection_id,
                text,
                now,
                state.settings.message_ttl_secs,
            );
            store.put_message(&item).await?;
            Ok(Ok(Some(ServerFrame::Ack {
                channel: item.channel,
                id: item.id,
                ts: item.ts,
            })))
        }
    }
}
