//! Turning DynamoDB Stream records into what fanout acts on. Pure: no I/O.

use aws_lambda_events::dynamodb::EventRecord;
use ripple_common::items::{ChannelEvent, ConnectionItem, Item, MemberItem};

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
        // Another try at a `welcome` that met 410 ([`crate::welcome`]).
        ("MODIFY", Item::Connection(c)) if !c.welcomed && !c.closing && c.welcome_tries > 0 => {
            Ok(Change::Welcome(c))
        }
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
