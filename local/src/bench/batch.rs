//! The benchmarks' synthetic workload: a [`Layout`] of channels of member connections, seeded as
//! `connect` and `fanout` leave them, and a stream batch over it in the exact JSON shape Lambda
//! delivers (positions are `MODIFY`s with both images and a `seq` rising per user, chat messages
//! `INSERT`s; senders are member connections).

use std::collections::HashMap;

use anyhow::Context;
use aws_lambda_events::dynamodb::Event;
use futures::{StreamExt, TryStreamExt};
use ripple_common::config::{DEFAULT_MESSAGE_TTL_SECS, DEFAULT_POSITION_TTL_SECS};
use ripple_common::items::{ConnectionItem, Endpoint, MessageItem, PositionItem};
use ripple_common::protocol::PositionUpdate;
use ripple_common::store::Store;
use ripple_common::stream_record::{EXAMPLE_STREAM_ARN, StreamRecord};
use serde_dynamo::to_item;

use super::cost::item_bytes;

/// One member connection of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub connection_id: String,
    pub user: String,
}

/// A channel and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub members: Vec<Member>,
}

/// Every channel of a benchmark; each connection is in exactly one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub channels: Vec<Channel>,
}

impl Member {
    pub fn new(connection_id: &str, user: &str) -> Self {
        let (connection_id, user) = (connection_id.to_owned(), user.to_owned());
        Self {
            connection_id,
            user,
        }
    }
}

impl Layout {
    /// `channels` channels (`bench-0`, …) of `members` connections each, with ids shaped like API
    /// Gateway's (12 characters, `=` at the end).
    pub fn synthetic(channels: usize, members: usize) -> Self {
        let member = |c, m| Member::new(&format!("B{c:04}M{m:05}="), &format!("u{c}-{m}"));
        let channel = |c| Channel {
            name: format!("bench-{c}"),
            members: (0..members).map(|m| member(c, m)).collect(),
        };
        Self {
            channels: (0..channels).map(channel).collect(),
        }
    }

    /// Every (channel, member), channel by channel.
    pub fn members(&self) -> impl Iterator<Item = (&str, &Member)> {
        self.channels
            .iter()
            .flat_map(|c| c.members.iter().map(move |m| (c.name.as_str(), m)))
    }
}

/// Stores each connection and membership as `connect` then `fanout` leave them once welcomed (at
/// ts 1: every event of a batch is news to every member), at an endpoint posts never reach.
pub async fn seed(store: &Store, layout: &Layout) -> anyhow::Result<()> {
    let expires_at = ripple_common::now_ms() / 1000 + 3 * 3600;
    let endpoint = Endpoint {
        domain: "bench.execute-api.us-east-1.amazonaws.com".into(),
        stage: "prod".into(),
    };
    let writes = layout.members().map(|(channel, m)| {
        let conn = ConnectionItem::new(&m.connection_id, &m.user, &endpoint, 1, expires_at);
        async move { crate::seed::welcomed_connection(store, &conn, &[channel], 1).await }
    });
    let seeding = futures::stream::iter(writes).buffer_unordered(16);
    let seeded: Result<Vec<_>, _> = seeding.try_collect().await;
    seeded
        .map(drop)
        .context("seeding a connection and its membership")
}

/// Whether the `j`-th record of a channel is a chat message: exactly `round_down(n · ratio)` of
/// the first `n` records are, spread evenly.
pub fn is_message(j: usize, ratio: f64) -> bool {
    ((j + 1) as f64 * ratio).floor() > (j as f64 * ratio).floor()
}

/// A position item as ingest writes it.
pub fn position_item(channel: &str, m: &Member, seq: u64, x: f64, y: f64, ts: u64) -> PositionItem {
    let (channel, z, data) = (channel.to_owned(), 0.0, None);
    let update = PositionUpdate {
        channel,
        x,
        y,
        z,
        seq,
        data,
    };
    PositionItem::new(
        &m.user,
        &m.connection_id,
        update,
        ts,
        DEFAULT_POSITION_TTL_SECS,
    )
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
        let name = channel.name.clone();
        let (event_name, new, old) = if is_message(j, message_ratio) {
            let text = format!("gg, message {j} in {name}");
            let item = MessageItem::new(
                name,
                &m.user,
                &m.connection_id,
                text,
                ts,
                DEFAULT_MESSAGE_TTL_SECS,
            );
            ("INSERT", to_item(&item)?, None)
        } else {
            let seq = seqs.entry((c, who)).or_insert(0);
            *seq += 1;
            let angle = *seq as f64 * 0.75;
            let item = position_item(&name, m, *seq, angle.sin() * 100.0, angle.cos() * 100.0, ts);
            let mut old = item.clone();
            (old.seq, old.x, old.ts) = (*seq - 1, item.x - 1.0, ts.saturating_sub(50));
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
    use fanout::changes::{Change, change_of};
    use ripple_common::items::ChannelEvent;

    #[test]
    fn the_batch_decodes_as_fanout_reads_it_with_an_exact_share_of_messages() {
        // GIVEN a ratio of 0.1 WHEN 100 records are classified THEN 10 are messages, one per ten
        let messages: Vec<usize> = (0..100).filter(|j| is_message(*j, 0.1)).collect();
        assert_eq!((messages.len(), messages[0]), (10, 9));
        assert!((0..50).all(|j| !is_message(j, 0.0) && is_message(j, 1.0)));
        // GIVEN 2 channels of 3 members (distinct connections), 20 records, a fifth messages
        let layout = Layout::synthetic(2, 3);
        let ids: std::collections::HashSet<_> =
            layout.members().map(|(_, m)| &m.connection_id).collect();
        assert_eq!((ids.len(), layout.members().count()), (6, 6));
        assert!(layout.channels.iter().all(|c| c.members.len() == 3));
        assert_eq!(layout.channels[1].name, "bench-1");
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
            assert!(
                channel
                    .members
                    .iter()
                    .any(|m| m.connection_id == change.sender)
            );
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
            let sequence: u128 = record
                .change
                .sequence_number
                .as_deref()
                .unwrap()
                .parse()
                .unwrap();
            assert!(sequence > last_sequence);
            last_sequence = sequence;
        }
        assert_eq!((event.records.len(), messages), (20, vec!["INSERT"; 4]));
    }
}
