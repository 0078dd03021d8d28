//! One serde type per DynamoDB item. The same types are written with the SDK (through
//! `serde_dynamo`) and decoded from DynamoDB Stream images, so what fanout reads is exactly what
//! connect and ingest wrote. Every item carries what fanout needs (channel, user, sender
//! connection, a millisecond write timestamp) so fanout never reads an item back.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::protocol::{Event, RawJson};

/// The `kind` attribute every item carries. Its stored names are spelled once, in
/// [`Kind::as_str`]: serde, stream decoding and the fanout filter criteria use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Kind {
    Connection,
    Member,
    Position,
    Message,
    Session,
    /// A channel's member as fanout reads it: one item per (channel, connection) in the
    /// channel's own partition, written once the connection has its `welcome`.
    Roster,
    SweepCursor,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Connection,
        Kind::Member,
        Kind::Position,
        Kind::Message,
        Kind::Session,
        Kind::Roster,
        Kind::SweepCursor,
    ];

    /// The stored name (the `kind` attribute's value).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Connection => "connection",
            Kind::Member => "member",
            Kind::Position => "position",
            Kind::Message => "message",
            Kind::Session => "session",
            Kind::Roster => "roster",
            Kind::SweepCursor => "sweep_cursor",
        }
    }
}

impl From<Kind> for &'static str {
    fn from(kind: Kind) -> Self {
        kind.as_str()
    }
}

impl TryFrom<String> for Kind {
    type Error = DecodeError;

    fn try_from(name: String) -> Result<Self, DecodeError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or(DecodeError::UnknownKind(name))
    }
}

/// A WebSocket connection, written at `$connect`, deleted at `$disconnect` or on 410.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    pub connection_id: String,
    pub user: String,
    /// API Gateway domain to call `@connections` on.
    pub domain: String,
    /// API Gateway stage.
    pub stage: String,
    /// Connect time, ms since the epoch.
    pub connected_at: u64,
    /// TTL, seconds since the epoch.
    pub expires_at: u64,
    /// Sweep index: `conns#{shard}`, so the sweep pages connections by age without a Scan.
    #[serde(default)]
    pub gsi1pk: String,
    /// Sweep index sort key: `{connected_at:013}#{id}`.
    #[serde(default)]
    pub gsi1sk: String,
    /// Set by fanout once `welcome` was delivered; from then on the connection's memberships are
    /// in their channels' rosters and it receives events.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub welcomed: bool,
    /// Times fanout's `welcome` met 410 and was tried again through the stream (each try a
    /// MODIFY of this item, so no batch waits for a connection that may never be established).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub welcome_tries: u32,
    /// Set when its removal has begun ([`crate::store::Store::delete_connection`]): no
    /// membership may be written for it any more (a `join` racing `$disconnect` would be a ghost).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closing: bool,
    /// The token's channel permissions (`channels`, `publish` claims); absent: every channel.
    /// Ingest reads it with the connection on every `join`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::auth::Grant>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ConnectionItem {
    pub fn new(
        connection_id: &str,
        user: &str,
        endpoint: &Endpoint,
        connected_at: u64,
        expires_at: u64,
    ) -> Self {
        Self {
            pk: keys::connection_pk(connection_id),
            sk: keys::CONNECTION_SK.to_owned(),
            kind: Kind::Connection,
            connection_id: connection_id.to_owned(),
            user: user.to_owned(),
            domain: endpoint.domain.clone(),
            stage: endpoint.stage.clone(),
            connected_at,
            expires_at,
            gsi1pk: keys::sweep_pk(connection_id),
            gsi1sk: keys::sweep_sk(connected_at, connection_id),
            welcomed: false,
            welcome_tries: 0,
            closing: false,
            grant: None,
        }
    }

    /// Whether the connection may join `channel`.
    pub fn may_join(&self, channel: &str) -> bool {
        self.grant.as_ref().is_none_or(|g| g.may_join(channel))
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            domain: self.domain.clone(),
            stage: self.stage.clone(),
        }
    }
}

/// A connection's membership of a channel, in two places: the *membership* (kind `member`) in the
/// connection's partition, written by connect and ingest, and the *roster entry* (kind `roster`)
/// in the channel's partition, written by fanout once the connection has its `welcome`
/// ([`MemberItem::roster`]). Fanout reads a channel's roster with one strongly consistent Query.
/// Carries the endpoint so fanout can post directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    pub channel: String,
    pub connection_id: String,
    pub user: String,
    pub domain: String,
    pub stage: String,
    /// Join time, ms since the epoch.
    pub ts: u64,
    pub expires_at: u64,
    /// When set, the joiner asked for the chat messages written after this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// The connection's grant does not let it publish here (`publish` claim): ingest refuses its
    /// positions and messages with `forbidden`. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

impl MemberItem {
    pub fn new(connection: &ConnectionItem, channel: &str, ts: u64) -> Self {
        Self {
            pk: keys::connection_pk(&connection.connection_id),
            sk: keys::member_sk(channel),
            kind: Kind::Member,
            channel: channel.to_owned(),
            connection_id: connection.connection_id.clone(),
            user: connection.user.clone(),
            domain: connection.domain.clone(),
            stage: connection.stage.clone(),
            ts,
            // A membership never outlives its connection.
            expires_at: connection.expires_at,
            since: None,
            read_only: connection
                .grant
                .as_ref()
                .is_some_and(|g| !g.may_publish(channel)),
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            domain: self.domain.clone(),
            stage: self.stage.clone(),
        }
    }

    /// The roster entry of this membership: same fields, in the channel's partition.
    pub fn roster(&self) -> MemberItem {
        MemberItem {
            pk: keys::channel_members_pk(&self.channel),
            sk: keys::roster_sk(&self.connection_id),
            kind: Kind::Roster,
            ..self.clone()
        }
    }
}

/// A user's latest position in a channel: one item per (channel, user), overwritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    pub channel: String,
    pub user: String,
    /// The connection that wrote it (excluded from the fan-out).
    pub sender: String,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub seq: u64,
    /// The optional client `data` object, kept as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Write time at ingest, ms since the epoch.
    pub ts: u64,
    pub expires_at: u64,
}

impl PositionItem {
    /// `user`'s position `update`, written by connection `sender` at `now` (ms), kept `ttl_secs`.
    pub fn new(
        user: &str,
        sender: &str,
        update: crate::protocol::PositionUpdate,
        now: u64,
        ttl_secs: u64,
    ) -> Self {
        Self {
            pk: keys::position_pk(&update.channel, user),
            sk: keys::position_sk(user),
            kind: Kind::Position,
            channel: update.channel,
            user: user.to_owned(),
            sender: sender.to_owned(),
            x: update.x,
            y: update.y,
            z: update.z,
            seq: update.seq,
            data: update.data,
            ts: now,
            expires_at: now / 1000 + ttl_secs,
        }
    }
}

/// One chat message: a new item per message, never overwritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    pub channel: String,
    pub user: String,
    pub sender: String,
    pub id: String,
    pub text: String,
    pub ts: u64,
    pub expires_at: u64,
}

impl MessageItem {
    /// A new message (fresh `id`) from `user` in `channel`, written by connection `sender` at
    /// `now` (ms), kept `ttl_secs`.
    pub fn new(
        channel: String,
        user: &str,
        sender: &str,
        text: String,
        now: u64,
        ttl_secs: u64,
    ) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            pk: keys::message_pk(&channel),
            sk: keys::message_sk(now, &id),
            kind: Kind::Message,
            channel,
            user: user.to_owned(),
            sender: sender.to_owned(),
            id,
            text,
            ts: now,
            expires_at: now / 1000 + ttl_secs,
        }
    }
}

/// An item as news for its channel's members. [`ChannelEvent::to_event`] is the one conversion
/// from a stored item to its wire event (fanout's frames and the joiner's snapshot).
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    Position(PositionItem),
    Message(MessageItem),
    Join(MemberItem),
    Leave(MemberItem),
}

impl ChannelEvent {
    /// When it was written (ms); a `leave` counts as news to everyone still there.
    pub fn written_at(&self) -> u64 {
        match self {
            ChannelEvent::Position(p) => p.ts,
            ChannelEvent::Message(m) => m.ts,
            ChannelEvent::Join(m) => m.ts,
            ChannelEvent::Leave(_) => u64::MAX,
        }
    }

    /// The wire event.
    pub fn to_event(&self) -> Event {
        match self {
            ChannelEvent::Position(p) => Event::Position {
                channel: p.channel.clone(),
                user: p.user.clone(),
                x: p.x,
                y: p.y,
                z: p.z,
                seq: p.seq,
                data: p.data.clone().and_then(RawJson::new),
                ts: p.ts,
            },
            ChannelEvent::Message(m) => Event::Message {
                channel: m.channel.clone(),
                user: m.user.clone(),
                text: m.text.clone(),
                id: m.id.clone(),
                ts: m.ts,
            },
            ChannelEvent::Join(m) => Event::Join {
                channel: m.channel.clone(),
                user: m.user.clone(),
            },
            ChannelEvent::Leave(m) => Event::Leave {
                channel: m.channel.clone(),
                user: m.user.clone(),
            },
        }
    }
}

/// What a user was in when its last connection closed, kept for the resume window so a
/// reconnect (`?resume=1`) gets its channels back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    pub user: String,
    pub channels: Vec<String>,
    /// When the connection closed, ms since the epoch.
    pub ended_at: u64,
    pub expires_at: u64,
}

impl SessionItem {
    pub fn new(user: &str, channels: Vec<String>, ended_at: u64, window_secs: u64) -> Self {
        Self {
            pk: keys::session_pk(user),
            sk: keys::SESSION_SK.to_owned(),
            kind: Kind::Session,
            user: user.to_owned(),
            channels,
            ended_at,
            expires_at: ended_at / 1000 + window_secs,
        }
    }
}

/// Where the paced sweep stopped (`fanout/src/sweep.rs`): one item, rewritten after each run.
/// Within a cycle the sweep reads the index shards in order, each oldest first; `after` is the
/// index sort key of the last connection it examined in `shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepCursorItem {
    pub pk: String,
    pub sk: String,
    pub kind: Kind,
    /// The index shard to resume in.
    pub shard: u32,
    /// The `gsi1sk` of the last connection examined in `shard` (None: from its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Cycles finished so far.
    pub cycles: u64,
    /// When the current cycle started, ms since the epoch.
    pub cycle_started_at: u64,
    /// When the cursor was saved, ms since the epoch.
    pub updated_at: u64,
}

impl SweepCursorItem {
    /// The start of a cycle.
    pub fn start(cycles: u64, now_ms: u64) -> Self {
        Self {
            pk: keys::SWEEP_CURSOR_PK.to_owned(),
            sk: keys::SWEEP_CURSOR_PK.to_owned(),
            kind: Kind::SweepCursor,
            shard: 0,
            after: None,
            cycles,
            cycle_started_at: now_ms,
            updated_at: now_ms,
        }
    }
}

/// Where to reach a connection: the API Gateway domain and stage it connected through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub domain: String,
    pub stage: String,
}

impl Endpoint {
    /// The `@connections` base URL API Gateway serves for this domain and stage.
    pub fn url(&self) -> String {
        let scheme = if is_loopback(&self.domain) {
            "http"
        } else {
            "https"
        };
        if self.stage.is_empty() {
            format!("{scheme}://{}", self.domain)
        } else {
            format!("{scheme}://{}/{}", self.domain, self.stage)
        }
    }
}

fn is_loopback(domain: &str) -> bool {
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// Any item of the table, decoded by its `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Connection(ConnectionItem),
    Member(MemberItem),
    Position(PositionItem),
    Message(MessageItem),
    Session(SessionItem),
    Roster(MemberItem),
    SweepCursor(SweepCursorItem),
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("item has no string `kind` attribute")]
    NoKind,
    #[error("unknown item kind `{0}`")]
    UnknownKind(String),
    #[error("malformed {kind:?} item: {source}")]
    Malformed {
        kind: Kind,
        source: serde_dynamo::Error,
    },
}

impl Item {
    /// Decodes a stream image (the `NewImage` / `OldImage` Lambda delivers).
    pub fn from_image(image: serde_dynamo::Item) -> Result<Self, DecodeError> {
        let kind = match image.get(keys::KIND) {
            Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
            _ => return Err(DecodeError::NoKind),
        };
        let kind = Kind::try_from(kind)?;
        fn decode<T: DeserializeOwned>(
            kind: Kind,
            image: serde_dynamo::Item,
        ) -> Result<T, DecodeError> {
            serde_dynamo::from_item(image).map_err(|source| DecodeError::Malformed { kind, source })
        }
        Ok(match kind {
            Kind::Connection => Item::Connection(decode(kind, image)?),
            Kind::Member => Item::Member(decode(kind, image)?),
            Kind::Position => Item::Position(decode(kind, image)?),
            Kind::Message => Item::Message(decode(kind, image)?),
            Kind::Session => Item::Session(decode(kind, image)?),
            Kind::Roster => Item::Roster(decode(kind, image)?),
            Kind::SweepCursor => Item::SweepCursor(decode(kind, image)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position_item(user: &str, seq: u64) -> PositionItem {
        PositionItem {
            pk: String::new(),
            sk: String::new(),
            kind: Kind::Position,
            channel: "arena".into(),
            user: user.into(),
            sender: format!("conn-{user}"),
            x: seq as f64,
            y: 0.0,
            z: 0.0,
            seq,
            data: None,
            ts: 0,
            expires_at: 0,
        }
    }

    #[test]
    fn data_goes_out_as_the_text_ingest_stored_and_bad_text_is_left_out() {
        // GIVEN a stored position whose data is JSON text in ingest's compact form
        let mut event = ChannelEvent::Position(position_item("alice", 1));
        let stored = r#"{"big":1e+300,"list":[1,{"a":null}],"s":"é"}"#;
        if let ChannelEvent::Position(p) = &mut event {
            p.data = Some(stored.into());
        }
        // WHEN it becomes a wire event
        let wire = serde_json::to_string(&event.to_event()).unwrap();
        // THEN the data is that text, byte for byte
        assert!(wire.contains(&format!(r#""data":{stored}"#)), "{wire}");
        // AND text that is not JSON (a backend can write anything) is left out, not posted
        if let ChannelEvent::Position(p) = &mut event {
            p.data = Some("{not json".into());
        }
        let wire = serde_json::to_string(&event.to_event()).unwrap();
        assert!(!wire.contains("data"), "{wire}");
    }

    fn connection() -> ConnectionItem {
        let endpoint = Endpoint {
            domain: "abc.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
        };
        ConnectionItem::new("L0SM9cOFvHcCIhw=", "alice", &endpoint, 1_000, 8_800)
    }

    #[test]
    fn a_member_item_round_trips_through_a_stream_image() {
        // GIVEN a membership as the SDK path writes it
        let member = MemberItem::new(&connection(), "arena", 1_234);
        let image: serde_dynamo::Item = serde_dynamo::to_item(&member).unwrap();
        // WHEN fanout decodes the stream image
        let decoded = Item::from_image(image).unwrap();
        // THEN it is the same item
        assert_eq!(decoded, Item::Member(member));
    }

    #[test]
    fn every_kind_is_stored_under_its_one_name() {
        for kind in Kind::ALL {
            let stored = serde_json::to_value(kind).unwrap();
            assert_eq!(stored, kind.as_str());
            assert_eq!(serde_json::from_value::<Kind>(stored).unwrap(), kind);
        }
    }

    #[test]
    fn an_image_of_unknown_kind_is_reported_not_guessed() {
        let mut image: serde_dynamo::Item = serde_dynamo::to_item(connection()).unwrap();
        image.insert(
            "kind".into(),
            serde_dynamo::AttributeValue::S("mystery".into()),
        );
        assert!(
            matches!(Item::from_image(image), Err(DecodeError::UnknownKind(k)) if k == "mystery")
        );
    }

    #[test]
    fn endpoints_use_https_except_on_loopback() {
        let aws = connection().endpoint();
        assert_eq!(
            aws.url(),
            "https://abc.execute-api.us-east-1.amazonaws.com/prod"
        );
        let local = Endpoint {
            domain: "127.0.0.1:3001".into(),
            stage: "local".into(),
        };
        assert_eq!(local.url(), "http://127.0.0.1:3001/local");
    }
}
