//! Turning DynamoDB Stream records into what fanout acts on. Pure: no I/O.

use aws_lambda_events::dynamodb::EventRecord;
use ripple_common::items::{ConnectionItem, Item, MemberItem, MessageItem, PositionItem};
use ripple_common::protocol::{Event, RawJson};

/// What one stream record asks fanout to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new connection: post it the `welcome` frame, then put its memberships in their rosters.
    Welcome(ConnectionItem),
    /// A new membership: into its channel's roster, once its connection has had its `welcome`.
    Activate(MemberItem),
    /// Something to tell a channel's members (all but the `sender` connection).
    Channel(ChannelChange),
}

/// An event for a channel, from the record at `index` in the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelChange {
    pub index: usize,
    pub channel: String,
    /// The connection that caused it; it never receives its own events.
    pub sender: String,
    pub kind: ChannelEvent,
}

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

/// Why a record was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A record fanout has nothing to do for (a TTL removal of a position, a connection removal,
    /// an event name it does not know, …).
    Ignored,
    /// An image that does not decode: logged, never retried (it would block the shard).
    Malformed(String),
}

/// Reads the record at `index`.
pub fn change_of(index: usize, record: &EventRecord) -> Result<Change, Skip> {
    let image = match record.event_name.as_str() {
        "INSERT" | "MODIFY" => &record.change.new_image,
        "REMOVE" => &record.change.old_image,
        _ => return Err(Skip::Ignored),
    };
    if image.is_empty() {
        return Err(Skip::Ignored);
    }
    let item = Item::from_image(image.clone()).map_err(|e| Skip::Malformed(e.to_string()))?;
    let channel = |channel: &str, sender: &str, kind| {
        Ok(Change::Channel(ChannelChange {
            index,
            channel: channel.to_owned(),
            sender: sender.to_owned(),
            kind,
        }))
    };
    match (record.event_name.as_str(), item) {
        ("INSERT", Item::Connection(c)) => Ok(Change::Welcome(c)),
        ("INSERT", Item::Member(m)) => Ok(Change::Activate(m)),
        ("INSERT", Item::Roster(m)) => channel(
            &m.channel.clone(),
            &m.connection_id.clone(),
            ChannelEvent::Join(m),
        ),
        ("REMOVE", Item::Roster(m)) => channel(
            &m.channel.clone(),
            &m.connection_id.clone(),
            ChannelEvent::Leave(m),
        ),
        // A MODIFY that kept the `seq` only changed the store's publisher mark (a `leave`).
        ("MODIFY", Item::Position(p)) if same_seq(record, p.seq) => Err(Skip::Ignored),
        ("INSERT" | "MODIFY", Item::Position(p)) => channel(
            &p.channel.clone(),
            &p.sender.clone(),
            ChannelEvent::Position(p),
        ),
        ("INSERT", Item::Message(m)) => channel(
            &m.channel.clone(),
            &m.sender.clone(),
            ChannelEvent::Message(m),
        ),
        _ => Err(Skip::Ignored),
    }
}

/// Whether the record's old image is a position with this `seq`.
fn same_seq(record: &EventRecord, seq: u64) -> bool {
    matches!(
        Item::from_image(record.change.old_image.clone()),
        Ok(Item::Position(old)) if old.seq == seq
    )
}

/// Keeps every position whose `seq` is above the ones before it for the same (channel, user) in
/// the batch, so a 10 Hz sender is heard at 10 Hz rather than at the poll rate: a billed message
/// is 32 KB whatever it holds. A copy (a record Lambda resent) or a late one is dropped, so a
/// user's `seq` never goes down within a frame. Everything else passes through in batch order.
pub fn in_seq_order(changes: Vec<ChannelChange>) -> Vec<ChannelChange> {
    use std::collections::HashMap;
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    changes
        .into_iter()
        .filter(|c| match &c.kind {
            ChannelEvent::Position(p) => {
                let key = (c.channel.clone(), p.user.clone());
                match last.get(&key) {
                    Some(&seq) if p.seq <= seq => false,
                    _ => {
                        last.insert(key, p.seq);
                        true
                    }
                }
            }
            _ => true,
        })
        .collect()
}

/// Keeps, per (channel, user), only the position with the highest `seq` (the later record on a
/// tie); everything else passes through in batch order. Chat messages are never coalesced. Used
/// when a batch's events for a channel would not fit one frame (one billed message).
pub fn coalesce(changes: Vec<ChannelChange>) -> Vec<ChannelChange> {
    use std::collections::HashMap;
    let mut latest: HashMap<(&str, &str), (u64, usize)> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if let ChannelEvent::Position(p) = &c.kind {
            let slot = latest
                .entry((c.channel.as_str(), p.user.as_str()))
                .or_insert((p.seq, i));
            if p.seq >= slot.0 {
                *slot = (p.seq, i);
            }
        }
    }
    let keep: std::collections::HashSet<usize> = latest.values().map(|(_, i)| *i).collect();
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| !matches!(c.kind, ChannelEvent::Position(_)) || keep.contains(i))
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ripple_common::items::Kind;

    fn position(index: usize, user: &str, seq: u64) -> ChannelChange {
        ChannelChange {
            index,
            channel: "arena".into(),
            sender: format!("conn-{user}"),
            kind: ChannelEvent::Position(PositionItem {
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
            }),
        }
    }

    #[test]
    fn data_goes_out_as_the_text_ingest_stored_and_bad_text_is_left_out() {
        // GIVEN a stored position whose data is JSON text in ingest's compact form
        let mut change = position(0, "alice", 1);
        let stored = r#"{"big":1e+300,"list":[1,{"a":null}],"s":"é"}"#;
        if let ChannelEvent::Position(p) = &mut change.kind {
            p.data = Some(stored.into());
        }
        // WHEN it becomes a wire event
        let wire = serde_json::to_string(&change.kind.to_event()).unwrap();
        // THEN the data is that text, byte for byte
        assert!(wire.contains(&format!(r#""data":{stored}"#)), "{wire}");
        // AND text that is not JSON (a backend can write anything) is left out, not posted
        if let ChannelEvent::Position(p) = &mut change.kind {
            p.data = Some("{not json".into());
        }
        let wire = serde_json::to_string(&change.kind.to_event()).unwrap();
        assert!(!wire.contains("data"), "{wire}");
    }

    fn message(index: usize, text: &str) -> ChannelChange {
        ChannelChange {
            index,
            channel: "arena".into(),
            sender: "conn-bob".into(),
            kind: ChannelEvent::Message(MessageItem {
                pk: String::new(),
                sk: String::new(),
                kind: Kind::Message,
                channel: "arena".into(),
                user: "bob".into(),
                sender: "conn-bob".into(),
                id: text.into(),
                text: text.into(),
                ts: 0,
                expires_at: 0,
            }),
        }
    }

    #[test]
    fn in_seq_order_keeps_every_rising_seq_and_drops_copies_and_late_ones() {
        // GIVEN alice's seq 1, 3, 3 (a copy), 2 (late), 4 and bob's 5, with two messages
        let batch = vec![
            position(0, "alice", 1),
            message(1, "m1"),
            position(2, "alice", 3),
            position(3, "bob", 5),
            position(4, "alice", 3),
            position(5, "alice", 2),
            message(6, "m2"),
            position(7, "alice", 4),
        ];
        // WHEN kept in seq order
        let kept: Vec<usize> = in_seq_order(batch).iter().map(|c| c.index).collect();
        // THEN alice's 1, 3, 4, bob's 5 and every message stay, in batch order
        assert_eq!(kept, vec![0, 1, 2, 3, 6, 7]);
    }

    #[test]
    fn the_highest_seq_per_user_wins_and_messages_all_stay_in_order() {
        // GIVEN alice's seq 1, 3, 2 and bob's 5, interleaved with three messages
        let batch = vec![
            position(0, "alice", 1),
            message(1, "m1"),
            position(2, "alice", 3),
            position(3, "bob", 5),
            message(4, "m2"),
            position(5, "alice", 2),
            message(6, "m3"),
        ];
        // WHEN coalesced
        let kept: Vec<usize> = coalesce(batch).iter().map(|c| c.index).collect();
        // THEN alice keeps only seq 3, bob his one, and every message in order
        assert_eq!(kept, vec![1, 2, 3, 4, 6]);
    }
}
