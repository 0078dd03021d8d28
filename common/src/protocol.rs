//! The wire protocol (`docs/protocol.md`): client frames, parsed and validated, and the frames
//! the server sends. Parsing never panics; every refusal maps to one [`ErrorCode`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod strict;

/// Largest client message API Gateway accepts (bigger closes the socket with 1009).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 128 * 1024;
/// Largest chat message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest `data` object riding on a position, serialized.
pub const MAX_DATA_BYTES: usize = 1024;
/// Channel names are 1..=64 characters.
pub const MAX_CHANNEL_CHARS: usize = 64;
/// Largest user id, in bytes.
pub const MAX_USER_BYTES: usize = 128;
/// API Gateway bills WebSocket messages in units of 32 KB.
pub const BILLED_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest frame fanout posts: one billed API Gateway message.
pub const MAX_FRAME_BYTES: usize = BILLED_MESSAGE_BYTES;

/// API Gateway messages billed for one frame of `bytes`: one per 32 KB started, at least one.
/// The one billing formula (fanout's report, the benchmarks, the test servers).
pub fn billed_messages(bytes: usize) -> u64 {
    bytes.div_ceil(BILLED_MESSAGE_BYTES).max(1) as u64
}

/// Most channels one connection may be in (at connect, and by `join`).
pub const MAX_CHANNELS_PER_CONNECTION: usize = 16;

/// Error codes of the `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownAction,
    TooLarge,
    NotMember,
    RateLimited,
    /// The token's grant does not allow this `join` or publish.
    Forbidden,
    /// A `join` beyond the most channels one connection may be in.
    TooManyChannels,
    /// A `join` to a channel that has its most members (`RIPPLE_MAX_MEMBERS_PER_CHANNEL`).
    ChannelFull,
    /// Sent before fanout disconnects a connection that could not take its frames; reconnect
    /// and catch up (`resume`, `since`).
    SlowConsumer,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::NotMember => "not_member",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::ChannelFull => "channel_full",
            ErrorCode::SlowConsumer => "slow_consumer",
        }
    }
}

/// A refused frame: the code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    /// The refusal of a `join` (or a channel at connect) to a channel that has `cap` members.
    pub fn channel_full(channel: &str, cap: usize) -> Self {
        Self::new(
            ErrorCode::ChannelFull,
            format!("{channel} has its most members ({cap}): try again later"),
        )
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The `error` frame sent back to the sender.
    pub fn to_frame(&self) -> String {
        ServerFrame::Error {
            code: self.code,
            message: self.message.clone(),
        }
        .to_json()
    }
}

/// A validated client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `since`: also send the chat messages written after this time (ms), in the snapshot.
    Join {
        channel: String,
        since: Option<u64>,
    },
    Leave {
        channel: String,
    },
    Position(PositionUpdate),
    Message {
        channel: String,
        text: String,
    },
}

impl ClientFrame {
    pub fn channel(&self) -> &str {
        match self {
            ClientFrame::Join { channel, .. }
            | ClientFrame::Leave { channel }
            | ClientFrame::Message { channel, .. } => channel,
            ClientFrame::Position(p) => &p.channel,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PositionUpdate {
    pub channel: String,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub seq: u64,
    /// The optional `data` object, re-serialized compactly.
    pub data: Option<String>,
}

/// Checks a channel name: 1–64 characters of `A-Z a-z 0-9 _ . : -`.
pub fn validate_channel(channel: &str) -> Result<(), Refusal> {
    let ok_chars = channel
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if channel.is_empty() || channel.len() > MAX_CHANNEL_CHARS || !ok_chars {
        return Err(Refusal::bad(format!(
            "bad channel name {:?}: use 1-{MAX_CHANNEL_CHARS} characters of A-Z a-z 0-9 _ . : -",
            truncate(channel, 80)
        )));
    }
    Ok(())
}

/// Checks a user id: 1–128 bytes, no control characters.
pub fn validate_user(user: &str) -> Result<(), Refusal> {
    if user.is_empty() || user.len() > MAX_USER_BYTES || user.chars().any(char::is_control) {
        return Err(Refusal::bad(format!(
            "bad user id: use 1-{MAX_USER_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// The sender name of events a backend publishes ([`crate::publish`]); no client may connect as it.
pub const SERVER_USER: &str = "server";
/// Names starting with this are reserved for backends too (`server:matchmaker`, …).
pub const SERVER_USER_PREFIX: &str = "server:";

/// Whether `user` is reserved for server-side publishing: `server` or `server:…`.
pub fn is_reserved_user(user: &str) -> bool {
    user == SERVER_USER || user.starts_with(SERVER_USER_PREFIX)
}

/// Checks a client's identity (the `user` parameter or a token's `sub`): a valid user id that
/// is not reserved for server-side publishing.
pub fn validate_client_user(user: &str) -> Result<(), Refusal> {
    validate_user(user)?;
    if is_reserved_user(user) {
        return Err(Refusal::bad(format!(
            "user {:?} is reserved for server-side publishing: `{SERVER_USER}` and `{SERVER_USER_PREFIX}…` cannot connect",
            truncate(user, 80)
        )));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Result<&'a Value, Refusal> {
    obj.get(name)
        .ok_or_else(|| Refusal::bad(format!("missing field `{name}`")))
}

fn string_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<String, Refusal> {
    match field(obj, name)? {
        Value::String(s) => Ok(s.clone()),
        other => Err(Refusal::bad(format!(
            "`{name}` must be a string, got {}",
            json_type(other)
        ))),
    }
}

fn number_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<f64, Refusal> {
    match field(obj, name)? {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| Refusal::bad(format!("`{name}` must be a finite number")))
            .and_then(|f| storable_number(name, f)),
        other => Err(Refusal::bad(format!(
            "`{name}` must be a finite number, got {}",
            json_type(other)
        ))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn channel_field(obj: &serde_json::Map<String, Value>) -> Result<String, Refusal> {
    let channel = string_field(obj, "channel")?;
    validate_channel(&channel)?;
    Ok(channel)
}

/// Parses the frame's JSON, refusing a key repeated in one object at any depth
/// (`{"seq":1,"seq":2}`): JSON parsers disagree on which value wins, so the frame is ambiguous.
fn parse_json(text: &str) -> Result<Value, Refusal> {
    strict::parse_unique_keys(text).map_err(|e| match e.classify() {
        // Data errors come only from the duplicate-key check; the rest are syntax/EOF.
        serde_json::error::Category::Data => Refusal::bad(format!("ambiguous frame: {e}")),
        _ => Refusal::bad(format!("frame is not JSON: {e}")),
    })
}

/// Refuses a number DynamoDB cannot store (see [`strict::dynamodb_can_store`]). Only `x`, `y`
/// and `z` need it: `seq` is a u64 (at most 20 digits, always storable) and `data` is stored as
/// JSON text (`PositionItem::data` is a string attribute), so the numbers inside it never
/// become DynamoDB numbers.
fn storable_number(name: &str, f: f64) -> Result<f64, Refusal> {
    if strict::dynamodb_can_store(f) {
        Ok(f)
    } else {
        Err(Refusal::bad(format!(
            "`{name}` is {f:e}: DynamoDB stores 0 or magnitudes from 1e-130 to 9.99e125"
        )))
    }
}

/// Parses and validates one client frame (the WebSocket message body).
pub fn parse_client_frame(body: &[u8]) -> Result<ClientFrame, Refusal> {
    if body.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "frame is {} bytes, the limit is {MAX_CLIENT_MESSAGE_BYTES}",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| Refusal::bad("frame is not valid UTF-8"))?;
    let value = parse_json(text)?;
    let Value::Object(obj) = value else {
        return Err(Refusal::bad("frame must be a JSON object"));
    };
    let action = match obj.get("action") {
        Some(Value::String(a)) => a.as_str(),
        Some(other) => {
            return Err(Refusal::bad(format!(
                "`action` must be a string, got {}",
                json_type(other)
            )));
        }
        None => {
            return Err(Refusal::new(
                ErrorCode::UnknownAction,
                "missing `action`: use join, leave, position or message",
            ));
        }
    };
    match action {
        "join" => Ok(ClientFrame::Join {
            channel: channel_field(&obj)?,
            since: match obj.get("since") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
                    Refusal::bad("`since` must be a non-negative integer (ms since the epoch)")
                })?),
                Some(other) => {
                    return Err(Refusal::bad(format!(
                        "`since` must be a number, got {}",
                        json_type(other)
                    )));
                }
            },
        }),
        "leave" => Ok(ClientFrame::Leave {
            channel: channel_field(&obj)?,
        }),
        "position" => parse_position(&obj).map(ClientFrame::Position),
        "message" => {
            let channel = channel_field(&obj)?;
            let text = string_field(&obj, "text")?;
            if text.is_empty() {
                return Err(Refusal::bad("`text` must not be empty"));
            }
            if text.len() > MAX_TEXT_BYTES {
                return Err(Refusal::new(
                    ErrorCode::TooLarge,
                    format!(
                        "`text` is {} bytes, the limit is {MAX_TEXT_BYTES}",
                        text.len()
                    ),
                ));
            }
            Ok(ClientFrame::Message { channel, text })
        }
        other => Err(Refusal::new(
            ErrorCode::UnknownAction,
            format!(
                "unknown action {:?}: use join, leave, position or message",
                truncate(other, 40)
            ),
        )),
    }
}

fn parse_position(obj: &serde_json::Map<String, Value>) -> Result<PositionUpdate, Refusal> {
    let channel = channel_field(obj)?;
    let x = number_field(obj, "x")?;
    let y = number_field(obj, "y")?;
    let z = if obj.contains_key("z") {
        number_field(obj, "z")?
    } else {
        0.0
    };
    let seq = match field(obj, "seq")? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| Refusal::bad("`seq` must be a non-negative integer below 2^64"))?,
        other => {
            return Err(Refusal::bad(format!(
                "`seq` must be a non-negative integer, got {}",
                json_type(other)
            )));
        }
    };
    let data = match obj.get("data") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > MAX_DATA_BYTES {
                return Err(Refusal::new(
                    ErrorCode::TooLarge,
                    format!(
                        "`data` is {} bytes, the limit is {MAX_DATA_BYTES}",
                        text.len()
                    ),
                ));
            }
            Some(text)
        }
        Some(other) => {
            return Err(Refusal::bad(format!(
                "`data` must be an object, got {}",
                json_type(other)
            )));
        }
    };
    Ok(PositionUpdate {
        channel,
        x,
        y,
        z,
        seq,
        data,
    })
}

/// A position's `data` object on its way out: the JSON text ingest validated and stored, written
/// into the frame as it is (no tree is rebuilt between the parse at ingest and the post).
#[derive(Debug, Clone)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The stored text, if it is JSON (a backend may have written anything).
    pub fn new(text: String) -> Option<Self> {
        serde_json::value::RawValue::from_string(text)
            .ok()
            .map(Self)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    // Readers of frames (tests, the bench's players) go through a tree: an internally tagged
    // enum cannot hand a raw value to its fields.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::new(value.to_string()).ok_or_else(|| serde::de::Error::custom("not JSON"))
    }
}

/// One event inside an `events` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Position {
        channel: String,
        user: String,
        x: f64,
        y: f64,
        z: f64,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<RawJson>,
        /// Write time at ingest (ms since the epoch), for latency measurement.
        ts: u64,
    },
    Message {
        channel: String,
        user: String,
        text: String,
        id: String,
        ts: u64,
    },
    Join {
        channel: String,
        user: String,
    },
    Leave {
        channel: String,
        user: String,
    },
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        #[serde(rename = "connectionId")]
        connection_id: String,
        user: String,
    },
    Events {
        events: Vec<Event>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The route response to a `join`: the membership is written, publishing to the channel is
    /// allowed from now on (its `snapshot` follows through the stream).
    Joined {
        channel: String,
    },
    /// The route response to a `leave`: the membership is gone.
    Left {
        channel: String,
    },
    /// The route response to a `message`: it is written (`id`, `ts` as its event will carry).
    Ack {
        channel: String,
        id: String,
        ts: u64,
    },
    /// Sent to a connection when it joins a channel: who is there and where they are, and the
    /// chat messages written since it joined (or since `since`, when the join asked).
    Snapshot {
        channel: String,
        members: Vec<String>,
        positions: Vec<Event>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        messages: Option<Vec<Event>>,
        /// Set when the frame was cut to fit 128 KB (oldest chat, then oldest positions, then
        /// members beyond what fits).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail; fall back to an empty object rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// Opening and closing bytes of an `events` frame; the events go between, comma-separated.
pub const EVENTS_FRAME_HEAD: &[u8] = br#"{"type":"events","events":["#;
pub const EVENTS_FRAME_TAIL: &[u8] = b"]}";

/// One `events` frame ready to post, and how many events it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedFrame {
    pub bytes: Vec<u8>,
    pub events: usize,
}

/// Packs pre-serialized events into `events` frames of at most `max_bytes` each, keeping order.
/// An event too big for a frame on its own still gets a frame of its own.
pub fn pack_events<'a>(
    events: impl IntoIterator<Item = &'a [u8]>,
    max_bytes: usize,
) -> Vec<PackedFrame> {
    let mut frames = Vec::new();
    let mut current = PackedFrame {
        bytes: Vec::new(),
        events: 0,
    };
    for event in events {
        let extra = event.len() + usize::from(current.events > 0);
        if current.events > 0 && current.bytes.len() + extra + EVENTS_FRAME_TAIL.len() > max_bytes {
            current.bytes.extend_from_slice(EVENTS_FRAME_TAIL);
            frames.push(std::mem::replace(
                &mut current,
                PackedFrame {
                    bytes: Vec::new(),
                    events: 0,
                },
            ));
        }
        if current.events == 0 {
            current
                .bytes
                .reserve(EVENTS_FRAME_HEAD.len() + event.len() + EVENTS_FRAME_TAIL.len());
            current.bytes.extend_from_slice(EVENTS_FRAME_HEAD);
        } else {
            current.bytes.push(b',');
        }
        current.bytes.extend_from_slice(event);
        current.events += 1;
    }
    if current.events > 0 {
        current.bytes.extend_from_slice(EVENTS_FRAME_TAIL);
        frames.push(current);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_bills_one_message_per_started_32_kb() {
        // GIVEN frames of 0 B, 1 B, exactly 32 KB, and one byte more
        // WHEN billed THEN empty and small frames are one message, 32 KB + 1 is two
        assert_eq!(billed_messages(0), 1);
        assert_eq!(billed_messages(1), 1);
        assert_eq!(billed_messages(32_768), 1);
        assert_eq!(billed_messages(32_769), 2);
        assert_eq!(billed_messages(128 * 1024), 4);
    }

    #[test]
    fn a_position_frame_parses_with_defaults() {
        let frame = parse_client_frame(
            br#"{"action":"position","channel":"arena","x":1.5,"y":-2,"seq":7}"#,
        )
        .unwrap();
        assert_eq!(
            frame,
            ClientFrame::Position(PositionUpdate {
                channel: "arena".into(),
                x: 1.5,
                y: -2.0,
                z: 0.0,
                seq: 7,
                data: None
            })
        );
    }

    #[test]
    fn refusals_carry_the_right_code() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"not json", ErrorCode::BadRequest),
            (br#"{"action":"dance"}"#, ErrorCode::UnknownAction),
            (br#"{"channel":"a"}"#, ErrorCode::UnknownAction),
            (
                br#"{"action":"join","channel":"bad name"}"#,
                ErrorCode::BadRequest,
            ),
            (
                br#"{"action":"position","channel":"a","x":"NaN","y":0,"seq":1}"#,
                ErrorCode::BadRequest,
            ),
            (
                br#"{"action":"position","channel":"a","x":1e999,"y":0,"seq":1}"#,
                ErrorCode::BadRequest,
            ),
            (
                br#"{"action":"position","channel":"a","x":0,"y":0,"seq":-1}"#,
                ErrorCode::BadRequest,
            ),
            (
                br#"{"action":"message","channel":"a","text":""}"#,
                ErrorCode::BadRequest,
            ),
        ];
        for (body, code) in cases {
            let got = parse_client_frame(body).unwrap_err();
            assert_eq!(got.code, *code, "{}", String::from_utf8_lossy(body));
        }
        let long = format!(
            r#"{{"action":"message","channel":"a","text":"{}"}}"#,
            "x".repeat(4097)
        );
        assert_eq!(
            parse_client_frame(long.as_bytes()).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn numbers_dynamodb_cannot_store_are_bad_requests_naming_the_field() {
        for (frame, field) in [
            (r#""x":1e300,"y":0"#, "`x`"),
            (r#""x":0,"y":-1e126"#, "`y`"),
            (r#""x":1e-200,"y":0"#, "`x`"),
            (r#""x":0,"y":0,"z":5e-324"#, "`z`"),
        ] {
            let body = format!(r#"{{"action":"position","channel":"a",{frame},"seq":1}}"#);
            let got = parse_client_frame(body.as_bytes()).unwrap_err();
            assert_eq!(got.code, ErrorCode::BadRequest, "{body}");
            assert!(got.message.starts_with(field), "{body}: {}", got.message);
            assert!(got.message.contains("DynamoDB"), "{}", got.message);
        }
        // The bounds themselves (parsed to the nearest f64: `float_roundtrip`), 0, and numbers
        // inside `data` (stored as text) are accepted.
        let ok = br#"{"action":"position","channel":"a","x":1e125,"y":-1e-130,"z":-0,"seq":1,"data":{"big":1e300,"tiny":1e-300}}"#;
        let p = match parse_client_frame(ok) {
            Ok(ClientFrame::Position(p)) => p,
            other => panic!("refused a storable position: {other:?}"),
        };
        assert_eq!((p.x, p.y), (1e125, -1e-130));
        assert_eq!(p.data.as_deref(), Some(r#"{"big":1e+300,"tiny":1e-300}"#));
    }

    #[test]
    fn a_repeated_key_is_a_bad_request_naming_it() {
        for (body, key) in [
            (
                r#"{"action":"position","channel":"a","x":0,"y":0,"seq":1,"seq":2}"#,
                "`seq`",
            ),
            (
                r#"{"action":"position","channel":"a","x":0,"y":0,"seq":1,"data":{"k":1,"k":2}}"#,
                "`data.k`",
            ),
            (
                r#"{"action":"join","action":"leave","channel":"a"}"#,
                "`action`",
            ),
            (
                r#"{"action":"message","channel":"a","channel":"b","text":"hi"}"#,
                "`channel`",
            ),
        ] {
            let got = parse_client_frame(body.as_bytes()).unwrap_err();
            assert_eq!(got.code, ErrorCode::BadRequest, "{body}");
            assert!(
                got.message.starts_with(&format!(
                    "ambiguous frame: key {key} appears more than once"
                )),
                "{body}: {}",
                got.message
            );
        }
    }

    #[test]
    fn packing_keeps_order_and_splits_under_the_limit() {
        let events: Vec<Vec<u8>> = (0..100)
            .map(|i| format!(r#"{{"n":{i},"pad":"xx"}}"#).into_bytes())
            .collect();
        let frames = pack_events(events.iter().map(Vec::as_slice), 200);
        assert!(frames.len() > 1);
        let mut seen = Vec::new();
        for frame in &frames {
            assert!(
                frame.bytes.len() <= 200,
                "frame of {} bytes",
                frame.bytes.len()
            );
            let v: Value = serde_json::from_slice(&frame.bytes).unwrap();
            let events = v["events"].as_array().unwrap();
            assert_eq!(events.len(), frame.events);
            for e in events {
                seen.push(e["n"].as_u64().unwrap());
            }
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn server_frames_match_the_contract() {
        let welcome = ServerFrame::Welcome {
            connection_id: "c1".into(),
            user: "alice".into(),
        };
        assert_eq!(
            welcome.to_json(),
            r#"{"type":"welcome","connectionId":"c1","user":"alice"}"#
        );
        let err = Refusal::new(ErrorCode::NotMember, "join first").to_frame();
        assert_eq!(
            err,
            r#"{"type":"error","code":"not_member","message":"join first"}"#
        );
    }
}
