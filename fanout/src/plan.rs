//! Who gets what. Pure: from the channel changes and the channels' members, one ordered list of
//! frames per recipient connection, the sender of each event left out. Every event is serialized
//! once, however many recipients it has.

use std::collections::{BTreeMap, HashMap};

use ripple_common::items::MemberItem;
use ripple_common::protocol::{MAX_FRAME_BYTES, pack_events};

use crate::changes::{ChannelChange, ChannelEvent, coalesce};
use crate::deliver::Delivery;

/// The deliveries of one invocation.
#[derive(Debug, Default)]
pub struct Plan {
    /// Events after coalescing (each counted once, however many recipients).
    pub events: usize,
    pub deliveries: Vec<Delivery>,
}

/// An event serialized once for all its recipients.
struct Encoded {
    index: usize,
    sender: String,
    /// Write time; a member who joined later does not get it.
    ts: u64,
    bytes: Vec<u8>,
}

/// Plans the posts: only records before `cutoff` (the first failed record) are included, and
/// only members whose TTL (`expires_at`) is after `now_secs`.
pub fn plan(
    by_channel: BTreeMap<String, Vec<ChannelChange>>,
    members: &BTreeMap<String, Vec<MemberItem>>,
    cutoff: usize,
    now_secs: u64,
    url_for: impl Fn(&MemberItem) -> String,
) -> Plan {
    struct Recipient<'a> {
        url: String,
        events: Vec<(usize, &'a [u8])>,
    }
    let mut serialized: Vec<(String, Vec<Encoded>)> = Vec::new();
    let mut events = 0;
    for (channel, changes) in by_channel {
        let Some(list) = members.get(&channel) else {
            continue;
        };
        // Presence is per user: a connection joining or leaving while another connection of the
        // same user stays in the channel (a second tab, a reload) changes nothing for the others.
        let still_there = |user: &str, connection_id: &str| {
            list.iter().any(|m| {
                m.user == user && m.connection_id != connection_id && m.expires_at > now_secs
            })
        };
        let changes: Vec<ChannelChange> = changes
            .into_iter()
            .filter(|c| c.index < cutoff)
            .filter(|c| match &c.kind {
                ChannelEvent::Join(m) | ChannelEvent::Leave(m) => {
                    !still_there(&m.user, &m.connection_id)
                }
                _ => true,
            })
            .collect();
        let encoded: Vec<Encoded> = coalesce(changes)
            .into_iter()
            .filter_map(|c| {
                serde_json::to_vec(&c.kind.to_event())
                    .ok()
                    .map(|bytes| Encoded {
                        index: c.index,
                        ts: c.kind.written_at(),
                        sender: c.sender,
                        bytes,
                    })
            })
            .collect();
        events += encoded.len();
        serialized.push((channel, encoded));
    }

    let mut recipients: HashMap<&str, Recipient<'_>> = HashMap::new();
    for (channel, encoded) in &serialized {
        let Some(list) = members.get(channel) else {
            continue;
        };
        // DynamoDB deletes expired items late (up to days): a member past its TTL is gone.
        for member in list.iter().filter(|m| m.expires_at > now_secs) {
            for e in encoded {
                // Never your own events; nothing written before you joined, so a new connection
                // hears `welcome` (posted from its earlier connection record) before any event.
                if e.sender == member.connection_id || e.ts < member.ts {
                    continue;
                }
                recipients
                    .entry(member.connection_id.as_str())
                    .or_insert_with(|| Recipient {
                        url: url_for(member),
                        events: Vec::new(),
                    })
                    .events
                    .push((e.index, e.bytes.as_slice()));
            }
        }
    }

    let mut deliveries: Vec<Delivery> = recipients
        .into_iter()
        .map(|(connection_id, mut r)| {
            // Across channels, keep the batch's order (stable: one record is one event).
            r.events.sort_by_key(|(index, _)| *index);
            let frames = pack_events(r.events.iter().map(|(_, b)| *b), MAX_FRAME_BYTES);
            let mut offset = 0;
            let records = frames
                .iter()
                .map(|f| {
                    let first = r.events.get(offset).map_or(0, |(index, _)| *index);
                    offset += f.events;
                    first
                })
                .collect();
            Delivery {
                connection_id: connection_id.to_owned(),
                url: r.url,
                frames,
                records,
            }
        })
        .collect();
    deliveries.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    Plan { events, deliveries }
}
