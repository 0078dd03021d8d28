//! Who gets what. Pure: from the channel changes and the channels' members, one ordered list of
//! frames per recipient connection, the sender of each event left out. Every event is serialized
//! once, however many recipients it has.

use std::collections::{BTreeMap, HashMap};

use ripple_common::items::{ChannelEvent, MemberItem};
use ripple_common::protocol::{MAX_FRAME_BYTES, pack_events};

use crate::changes::ChannelChange;
use crate::deliver::Delivery;

/// The deliveries of one invocation.
#[derive(Debug, Default)]
pub struct Plan {
    /// Events planned (each counted once, however many recipients).
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

/// Serializes each change's event once.
fn encode(changes: Vec<ChannelChange>) -> Vec<Encoded> {
    changes
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
        .collect()
}

/// The size of one `events` frame holding all of `encoded` (head and tail included, roughly).
fn frame_bytes(encoded: &[Encoded]) -> usize {
    const FRAME_OVERHEAD: usize = 64;
    encoded.iter().map(|e| e.bytes.len() + 1).sum::<usize>() + FRAME_OVERHEAD
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
        // Every position in seq order while the channel's events fit one frame (one billed
        // message either way); beyond that, only each user's latest.
        let ordered = encode(in_seq_order(changes.clone()));
        let encoded = if frame_bytes(&ordered) <= MAX_FRAME_BYTES {
            ordered
        } else {
            encode(coalesce(changes))
        };
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ripple_common::items::{ConnectionItem, Endpoint, MessageItem, PositionItem};
    use ripple_common::protocol::PositionUpdate;

    fn member(connection_id: &str, user: &str) -> MemberItem {
        let endpoint = Endpoint {
            domain: "abc.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
        };
        let connection = ConnectionItem::new(connection_id, user, &endpoint, 0, u64::MAX);
        MemberItem::new(&connection, "arena", 0)
    }

    /// `count` positions of alice, seq 1..=count, each carrying `data_bytes` of payload.
    fn alice_moves(count: u64, data_bytes: usize) -> BTreeMap<String, Vec<ChannelChange>> {
        let pad = |_| Some(format!("{{\"pad\":\"{}\"}}", "x".repeat(data_bytes)));
        let changes = (1..=count)
            .map(|seq| position_at(seq as usize - 1, "alice", seq, seq, pad(seq)))
            .collect();
        BTreeMap::from([("arena".to_owned(), changes)])
    }

    fn seqs_bob_gets(by_channel: BTreeMap<String, Vec<ChannelChange>>) -> (Vec<u64>, usize) {
        let members = BTreeMap::from([(
            "arena".to_owned(),
            vec![member("c-alice", "alice"), member("c-bob", "bob")],
        )]);
        let plan = plan(by_channel, &members, usize::MAX, 0, |m| {
            m.connection_id.clone()
        });
        let bob = plan
            .deliveries
            .iter()
            .find(|d| d.connection_id == "c-bob")
            .unwrap();
        let seqs = bob
            .frames
            .iter()
            .flat_map(|f| {
                let frame: serde_json::Value = serde_json::from_slice(&f.bytes).unwrap();
                frame["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["seq"].as_u64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        (seqs, bob.frames.len())
    }

    #[test]
    fn every_position_of_a_batch_is_sent_in_order_while_they_fit_one_frame() {
        // GIVEN alice moved 10 times in one batch, small positions
        // WHEN planned
        let (seqs, frames) = seqs_bob_gets(alice_moves(10, 10));
        // THEN bob hears all ten, in order, in one frame (one billed message)
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
        assert_eq!(frames, 1);
    }

    #[test]
    fn positions_that_would_need_a_second_frame_are_coalesced_to_the_latest() {
        // GIVEN alice moved 10 times in one batch, each position about 4 KB (40 KB in all)
        // WHEN planned
        let (seqs, frames) = seqs_bob_gets(alice_moves(10, 4_000));
        // THEN bob gets only her latest, in one frame, rather than two billed messages
        assert_eq!(seqs, vec![10]);
        assert_eq!(frames, 1);
    }

    /// `user`'s position `seq` in `arena`, written at `ts` with `data`, as ingest builds it.
    fn position_at(
        index: usize,
        user: &str,
        seq: u64,
        ts: u64,
        data: Option<String>,
    ) -> ChannelChange {
        let update = PositionUpdate {
            channel: "arena".into(),
            x: seq as f64,
            y: 0.0,
            z: 0.0,
            seq,
            data,
        };
        let sender = format!("c-{user}");
        let item = PositionItem::new(user, &sender, update, ts, 3600);
        ChannelChange {
            index,
            channel: "arena".into(),
            sender,
            kind: ChannelEvent::Position(item),
        }
    }

    fn position(index: usize, user: &str, seq: u64) -> ChannelChange {
        position_at(index, user, seq, 0, None)
    }

    fn message(index: usize, text: &str) -> ChannelChange {
        let item = MessageItem::new("arena".into(), "bob", "c-bob", text.into(), 0, 3600);
        ChannelChange {
            index,
            channel: "arena".into(),
            sender: "c-bob".into(),
            kind: ChannelEvent::Message(item),
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
