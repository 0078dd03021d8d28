//! Server-side publish: a backend (game server, moderation bot, match-maker) writes a chat message
//! or a position into a channel without a WebSocket. It writes the same item `ingest` writes for
//! a client frame, so the stream delivers it to every member of the channel as one event.
//!
//! - The sender is a reserved name ([`SERVER_USER`] or [`SERVER_USER_PREFIX`]`…`) that `connect`
//!   refuses, so no client can claim it and `ingest` (which publishes as the connection's user)
//!   can never write it.
//! - The item's `sender` attribute (the connection left out of the fan-out) is that name, which is
//!   never a connection id: every member receives the event.
//! - What is published is validated exactly like a client frame ([`parse_client_frame`]); a
//!   refused publish writes nothing.
//!
//! The item format, for writing it with any DynamoDB client, is in `docs/protocol.md`
//! ("Server-side publish").

use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::error::StoreError;
use crate::items::{MessageItem, PositionItem};
use crate::protocol::{
    ClientFrame, Refusal, SERVER_USER, SERVER_USER_PREFIX, is_reserved_user, parse_client_frame,
    validate_user,
};
use crate::store::Store;

/// What a backend publishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// A chat message.
    Message { text: String },
    /// A position. `seq` defaults to the current time in ms (it must increase per sender per
    /// channel, like a client's); `data` is an optional JSON object.
    Position {
        x: f64,
        y: f64,
        z: Option<f64>,
        seq: Option<u64>,
        data: Option<Map<String, Value>>,
    },
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// The message with its new `id` and write time.
    Message { id: String, ts: u64 },
    /// The position; `written` is false when a position with a `seq` at least as high was
    /// already stored (then nothing is sent to anyone).
    Position { seq: u64, ts: u64, written: bool },
}

/// Why nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "sender {sender:?} is not reserved for server-side publishing: use `{SERVER_USER}` or `{SERVER_USER_PREFIX}NAME`"
    )]
    NotReserved { sender: String },
    #[error("refused like a client frame would be: {0}")]
    Refused(#[source] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates `what` like a client frame and writes it into `channel` as `sender` (a reserved
/// name, see the module docs). Nothing is written when it is refused.
pub async fn publish(
    store: &Store,
    settings: &Settings,
    sender: &str,
    channel: &str,
    what: Publication,
) -> Result<Published, PublishError> {
    let now = crate::now_ms();
    match validate(sender, channel, what, now)? {
        ClientFrame::Message { channel, text } => {
            let item = MessageItem::new(
                channel,
                sender,
                sender,
                text,
                now,
                settings.message_ttl_secs,
            );
            store.put_message(&item).await?;
            Ok(Published::Message {
                id: item.id,
                ts: now,
            })
        }
        ClientFrame::Position(update) => {
            let item = PositionItem::new(sender, sender, update, now, settings.position_ttl_secs);
            let written = store.put_position(&item).await?;
            Ok(Published::Position {
                seq: item.seq,
                ts: now,
                written,
            })
        }
        // `validate` only builds message and position frames.
        ClientFrame::Join { .. } | ClientFrame::Leave { .. } => {
            Err(PublishError::Refused(Refusal::new(
                crate::protocol::ErrorCode::UnknownAction,
                "publish a message or a position",
            )))
        }
    }
}

/// The client frame `what` would be, parsed and validated by the client-frame parser; the sender
/// must be a valid, reserved name.
pub fn validate(
    sender: &str,
    channel: &str,
    what: Publication,
    now: u64,
) -> Result<ClientFrame, PublishError> {
    validate_user(sender).map_err(PublishError::Refused)?;
    if !is_reserved_user(sender) {
        return Err(PublishError::NotReserved {
            sender: sender.to_owned(),
        });
    }
    // JSON has no NaN or infinity: serde_json writes them as `null`, which the parser refuses.
    let frame = match what {
        Publication::Message { text } => {
            json!({"action": "message", "channel": channel, "text": text})
        }
        Publication::Position { x, y, z, seq, data } => {
            let mut frame = json!({
                "action": "position", "channel": channel,
                "x": x, "y": y, "seq": seq.unwrap_or(now),
            });
            if let Some(z) = z {
                frame["z"] = json!(z);
            }
            if let Some(data) = data {
                frame["data"] = Value::Object(data);
            }
            frame
        }
    };
    parse_client_frame(frame.to_string().as_bytes()).map_err(PublishError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn message(text: &str) -> Publication {
        Publication::Message { text: text.into() }
    }

    #[test]
    fn a_message_from_the_reserved_name_becomes_a_message_frame() {
        let frame = validate("server", "arena", message("hello"), 1).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Message {
                channel: "arena".into(),
                text: "hello".into()
            }
        );
        assert!(validate("server:matchmaker", "arena", message("go"), 1).is_ok());
    }

    #[test]
    fn a_client_name_cannot_be_published_under() {
        for sender in ["alice", "Server", "servers", ""] {
            assert!(
                validate(sender, "arena", message("hi"), 1).is_err(),
                "{sender:?} accepted"
            );
        }
    }

    #[test]
    fn bad_frames_are_refused_like_client_frames() {
        let refused = |r: Result<ClientFrame, PublishError>| match r {
            Err(PublishError::Refused(refusal)) => refusal.code,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            refused(validate("server", "bad channel!", message("x"), 1)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            refused(validate("server", "arena", message(""), 1)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            refused(validate("server", "arena", message(&"x".repeat(4097)), 1)),
            ErrorCode::TooLarge
        );
        let nan = Publication::Position {
            x: f64::NAN,
            y: 0.0,
            z: None,
            seq: None,
            data: None,
        };
        assert_eq!(
            refused(validate("server", "arena", nan, 1)),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn a_position_without_seq_gets_the_clock() {
        let pos = Publication::Position {
            x: 1.0,
            y: 2.0,
            z: None,
            seq: None,
            data: None,
        };
        match validate("server", "arena", pos, 1_795_000_000_000).unwrap() {
            ClientFrame::Position(p) => {
                assert_eq!((p.x, p.y, p.z, p.seq), (1.0, 2.0, 0.0, 1_795_000_000_000));
            }
            other => panic!("not a position: {other:?}"),
        }
    }
}
