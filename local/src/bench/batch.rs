//! The benchmarks' synthetic stream batch: a `dynamodb::Event` in the exact JSON shape Lambda
//! delivers. Positions are `MODIFY` (new and old image, `seq` rising per user), chat messages
//! `INSERT`; senders are member connections.

use std::collections::HashMap;

use anyhow::Context;
use aws_lambda_events::dynamodb::Event;
use ripple_common::config::{DEFAULT_MESSAGE_TTL_SECS, DEFAULT_POSITION_TTL_SECS};
use ripple_common::items::{MessageItem, PositionItem};
use ripple_common::stream_record::{EXAMPLE_STREAM_ARN, StreamRecord};
use serde_dynamo::to_item;

use super::cost::item_bytes;
use super::layout::Layout;

/// Whether the `j`-th record of a channel is a chat message: exactly `round_down(n · ratio)` of
/// the first `n` records are, spread evenly.
pub fn is_message(j: usize, ratio: f64) -> bool {
    ((j + 1) as f64 * ratio).floor() > (j as f64 * ratio).floor()
}

/// A position item as ingest writes it.
pub fn position_item(
    channel: &str,
    user: &str,
    sender: &str,
    seq: u64,
    x: f64,
    y: f64,
    ts: u64,
) -> PositionItem {
    let update = ripple_common::protocol::PositionUpdate {
        channel: channel.to_owned(),
        x,
        y,
        z: 0.0,
        seq,
        data: None,
    };
    PositionItem::new(user, sender, update, ts, DEFAULT_POSITION_TTL_SECS)
}

/// [`build_json`] decoded from its bytes, as the Lambda runtime does (memory as in a real one).
pub fn build(
    layout: &Layout,
    records: usize,
    message_ratio: f64,
    senders: usize,
    base_ts: u64,
    table: &str,
) -> anyhow::Result<Event> {
    let json = build_json(layout, records, message_ratio, senders, base_ts, table)?;
    serde_json::from_slice(&json).context("decoding the synthetic batch as a dynamodb::Event")
}

/// The batch as the JSON Lambda delivers: record `k` goes to channel `k mod channels`, and is the
/// `j = k / channels`-th of that channel, from its member `j mod senders`, at `base_ts + k` ms.
pub fn build_json(
    layout: &Layout,
    records: usize,
    message_ratio: f64,
    senders: usize,
    base_ts: u64,
    table: &str,
) -> anyhow::Result<Vec<u8>> {
    let arn = EXAMPLE_STREAM_ARN.replace("/ripple/", &format!("/{table}/"));
    let channels = layout.channels.len();
    anyhow::ensure!(channels > 0, "the layout has no channels");
    let (mut seqs, mut out) = (HashMap::new(), Vec::with_capacity(records));
    for k in 0..records {
        let (c, j, ts) = (k % channels, k / channels, base_ts + k as u64);
        let (channel, members) = (&layout.channels[c], &layout.channels[c].members);
        let who = j % senders.clamp(1, members.len().max(1));
        let m = members.get(who).context("a channel has no members")?;
        let (name, user, sender) = (channel.name.clone(), &m.user, &m.connection_id);
        let (event_name, new, old) = if is_message(j, message_ratio) {
            let text = format!("gg, message {j} in {name}");
            let ttl = DEFAULT_MESSAGE_TTL_SECS;
            let item = MessageItem::new(name, user, sender, text, ts, ttl);
            ("INSERT", to_item(&item)?, None)
        } else {
            let seq = seqs.entry((c, who)).or_insert(0);
            *seq += 1;
            let angle = *seq as f64 * 0.75;
            let (x, y) = (angle.sin() * 100.0, angle.cos() * 100.0);
            let item = position_item(&name, user, sender, *seq, x, y, ts);
            let mut old = item.clone();
            (old.seq, old.x, old.ts) = (*seq - 1, x - 1.0, ts.saturating_sub(50));
            ("MODIFY", to_item(&item)?, Some(to_item(&old)?))
        };
        let size = item_bytes(&new) + old.as_ref().map_or(0, item_bytes);
        let id = format!("{:032x}", 0xbe_0000_0000_u128 + k as u128);
        let mut record = StreamRecord::write(event_name, id, serde_json::to_value(new)?)
            .stream(&arn, "us-east-1")
            .created_secs(i64::try_from(ts / 1000)?)
            .sequence_number((100_000_000_000_000_000_000u128 + k as u128).to_string())
            .size_bytes(i64::try_from(size)?);
        if let Some(old) = old {
            record = record.old_image(serde_json::to_value(old)?);
        }
        out.push(record.to_json());
    }
    Ok(serde_json::to_vec(&serde_json::json!({ "Records": out }))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::layout::Member;
    use fanout::changes::{Change, change_of};
    use ripple_common::items::ChannelEvent;

    #[test]
    fn the_batch_decodes_as_fanout_reads_it_with_an_exact_share_of_messages() {
        // GIVEN a ratio of 0.1 WHEN 100 records are classified THEN 10 are messages, one per ten
        let messages: Vec<usize> = (0..100).filter(|j| is_message(*j, 0.1)).collect();
        assert_eq!((messages.len(), messages[0]), (10, 9));
        assert!((0..50).all(|j| !is_message(j, 0.0) && is_message(j, 1.0)));
        // GIVEN 2 channels of 3 members, 20 records, a fifth of them messages
        let layout = Layout::synthetic(2, 3);
        let event = build(&layout, 20, 0.2, 3, 1_795_000_000_000, "t").unwrap();
        let (mut last_seq, mut messages, mut last_sequence) = (HashMap::new(), vec![], 0);
        // WHEN fanout decodes each record
        for (i, record) in event.records.iter().enumerate() {
            let Ok(Change::Channel(change)) = change_of(i, record) else {
                panic!("record {i} did not decode as a channel change");
            };
            // THEN every record is in its round-robin channel, from one of its members
            let channel = &layout.channels[i % 2];
            assert_eq!(change.channel, channel.name);
            let is_sender = |m: &Member| m.connection_id == change.sender;
            assert!(channel.members.iter().any(is_sender));
            match change.kind {
                // AND positions are MODIFYs with an old image, each user's seq rising
                ChannelEvent::Position(p) => {
                    let prev = last_seq.insert((p.channel.clone(), p.user.clone()), p.seq);
                    assert!(prev.is_none_or(|s| s < p.seq) && !record.change.old_image.is_empty());
                    assert_eq!(record.event_name, "MODIFY");
                }
                ChannelEvent::Message(_) => messages.push(record.event_name.as_str()),
                other => panic!("unexpected {other:?}"),
            }
            // AND sequence numbers rise through the batch
            let sequence = record.change.sequence_number.as_deref().unwrap();
            let sequence: u128 = sequence.parse().unwrap();
            assert!(sequence > last_sequence);
            last_sequence = sequence;
        }
        assert_eq!((event.records.len(), messages), (20, vec!["INSERT"; 4]));
    }
}
