//! The synthetic stream batch of `ripple bench fanout`: a `dynamodb::Event` in the exact JSON shape
//! Lambda delivers. Position records are `MODIFY` (new and old image, `seq` rising per user);
//! chat messages are `INSERT`; senders are member connections. Pure and deterministic: parent and
//! child processes build the same batch from the same [`Scenario`] and base timestamp.

use anyhow::Context;
use aws_lambda_events::dynamodb::Event;
use clap::Args;
use ripple_common::items::{Kind, MessageItem, PositionItem};
use ripple_common::keys;
use ripple_common::stream_record::StreamRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cost::item_bytes;
use super::layout::Layout;

/// The shape of a batch: the flags of `ripple bench fanout`.
#[derive(Debug, Clone, Args, Serialize, Deserialize, PartialEq)]
pub struct Scenario {
    /// Channels in the batch.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Member connections per channel.
    #[arg(long, default_value_t = 50)]
    pub members: usize,
    /// Stream records in the batch, spread evenly over the channels.
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Share of records that are chat messages (INSERT); the rest are positions (MODIFY).
    #[arg(long, default_value_t = 0.1)]
    pub message_ratio: f64,
    /// Distinct senders per channel (default: every member).
    #[arg(long)]
    pub users: Option<usize>,
}

impl Scenario {
    /// Refuses shapes that make no sense, with what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        ensure!(self.channels >= 1, "--channels must be at least 1");
        ensure!(
            self.members >= 2,
            "--members must be at least 2 (a sender and a recipient)"
        );
        ensure!(
            (1..=10_000).contains(&self.records),
            "--records must be 1-10000 (Lambda's largest stream batch)"
        );
        ensure!(
            (0.0..=1.0).contains(&self.message_ratio),
            "--message-ratio must be between 0 and 1"
        );
        ensure!(
            self.users.is_none_or(|u| (1..=self.members).contains(&u)),
            "--users must be between 1 and --members"
        );
        Ok(())
    }

    /// Senders per channel.
    pub fn senders(&self) -> usize {
        self.users
            .unwrap_or(self.members)
            .clamp(1, self.members.max(1))
    }
}

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
    PositionItem {
        pk: keys::position_pk(channel, user),
        sk: keys::position_sk(user),
        kind: Kind::Position,
        channel: channel.to_owned(),
        user: user.to_owned(),
        sender: sender.to_owned(),
        x,
        y,
        z: 0.0,
        seq,
        data: None,
        ts,
        expires_at: ts / 1000 + 900,
    }
}

/// Builds the batch and decodes it as the Lambda runtime does (from the JSON bytes), so what is
/// held in memory is what a real invocation holds.
pub fn build(
    layout: &Layout,
    records: usize,
    message_ratio: f64,
    senders: usize,
    base_ts: u64,
    table: &str,
) -> anyhow::Result<Event> {
    let json = build_json(layout, records, message_ratio, senders, base_ts, table)?;
    serde_json::from_slice(&json)
        .context("decoding the synthetic batch as Lambda's dynamodb::Event")
}

/// The batch as the JSON Lambda delivers: record `k` goes to channel `k mod channels`; within a
/// channel the `j`-th record comes from member `j mod senders`. Timestamps are `base_ts + k` ms.
pub fn build_json(
    layout: &Layout,
    records: usize,
    message_ratio: f64,
    senders: usize,
    base_ts: u64,
    table: &str,
) -> anyhow::Result<Vec<u8>> {
    let arn = format!(
        "arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-01-01T00:00:00.000"
    );
    anyhow::ensure!(!layout.channels.is_empty(), "the layout has no channels");
    let mut per_channel = vec![0usize; layout.channels.len()];
    let mut seqs: Vec<Vec<u64>> = layout
        .channels
        .iter()
        .map(|c| vec![0; c.members.len()])
        .collect();
    let mut out = Vec::with_capacity(records * 1024);
    out.extend_from_slice(br#"{"Records":["#);
    for k in 0..records {
        let c = k % layout.channels.len();
        let (channel, j) = (&layout.channels[c], per_channel[c]);
        let who = j % senders.clamp(1, channel.members.len().max(1));
        let member = channel
            .members
            .get(who)
            .with_context(|| format!("channel {} has no members", channel.name))?;
        let (name, user, sender, ts) = (
            &channel.name,
            &member.user,
            &member.connection_id,
            base_ts + k as u64,
        );
        let (event_name, new, old) = if is_message(j, message_ratio) {
            let id = format!("{:032x}", 0x5eed_0000_u128 + k as u128);
            let item = MessageItem {
                pk: keys::message_pk(name),
                sk: keys::message_sk(ts, &id),
                kind: Kind::Message,
                channel: name.clone(),
                user: user.clone(),
                sender: sender.clone(),
                text: format!("gg, message {j} in {name}"),
                id,
                ts,
                expires_at: ts / 1000 + 24 * 3600,
            };
            ("INSERT", serde_dynamo::to_item(&item)?, None)
        } else {
            let seq = &mut seqs[c][who];
            *seq += 1;
            let (x, y) = (
                (*seq as f64 * 0.75).sin() * 100.0,
                (*seq as f64 * 0.75).cos() * 100.0,
            );
            let item = position_item(name, user, sender, *seq, x, y, ts);
            let old = PositionItem {
                seq: *seq - 1,
                x: x - 1.0,
                ts: ts.saturating_sub(50),
                ..item.clone()
            };
            (
                "MODIFY",
                serde_dynamo::to_item(&item)?,
                Some(serde_dynamo::to_item(&old)?),
            )
        };
        per_channel[c] += 1;
        let size = item_bytes(&new) + old.as_ref().map_or(0, item_bytes);
        let keys = json!({"pk": new.get("pk"), "sk": new.get("sk")});
        let image = |item: serde_dynamo::Item| serde_json::to_value(item);
        let mut record = StreamRecord::new(
            event_name,
            format!("{:032x}", 0xbe_0000_0000_u128 + k as u128),
        )
        .stream(&arn, "us-east-1")
        .created_secs(i64::try_from(ts / 1000).unwrap_or(i64::MAX))
        .keys(keys)
        .new_image(image(new)?)
        .sequence_number((100_000_000_000_000_000_000u128 + k as u128).to_string())
        .size_bytes(i64::try_from(size).unwrap_or(i64::MAX))
        .view_type("NEW_AND_OLD_IMAGES");
        if let Some(old) = old {
            record = record.old_image(image(old)?);
        }
        if k > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &record.to_json())?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fanout::changes::{Change as FanoutChange, change_of};
    use ripple_common::items::ChannelEvent;

    #[test]
    fn the_message_share_is_exact_and_spread() {
        // GIVEN a ratio of 0.1 WHEN 100 records are classified THEN 10 are messages, one per ten
        let messages: Vec<usize> = (0..100).filter(|j| is_message(*j, 0.1)).collect();
        assert_eq!(messages.len(), 10);
        assert_eq!(messages[0], 9);
        assert!((0..50).all(|j| !is_message(j, 0.0)));
        assert!((0..50).all(|j| is_message(j, 1.0)));
    }

    #[test]
    fn the_batch_decodes_as_fanout_reads_it() {
        // GIVEN 2 channels of 3 members, 20 records, a fifth of them messages
        let layout = Layout::synthetic(2, 3);
        let event = build(&layout, 20, 0.2, 3, 1_795_000_000_000, "t").unwrap();
        // WHEN fanout decodes each record
        assert_eq!(event.records.len(), 20);
        let mut last_seq = std::collections::HashMap::new();
        let mut messages = 0;
        for (i, record) in event.records.iter().enumerate() {
            let Ok(FanoutChange::Channel(change)) = change_of(i, record) else {
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
                ChannelEvent::Position(p) => {
                    assert_eq!(record.event_name, "MODIFY");
                    assert!(!record.change.old_image.is_empty());
                    // AND each user's seq rises
                    let prev = last_seq.insert((p.channel.clone(), p.user.clone()), p.seq);
                    assert!(prev.is_none_or(|s| s < p.seq));
                }
                ChannelEvent::Message(_) => {
                    assert_eq!(record.event_name, "INSERT");
                    messages += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(messages, 4);
        // AND sequence numbers rise through the batch
        let seqs: Vec<u128> = event
            .records
            .iter()
            .map(|r| {
                r.change
                    .sequence_number
                    .as_deref()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }
}
