//! The `snapshot` a connection receives when it joins a channel: the channel's current members,
//! their latest positions (one BatchGetItem over per-user position keys: no hot partition), and,
//! when the join carried `since`, the chat messages written after it (one Query on the channel's
//! history). Built once per join, posted after `welcome` and before any event.

use std::collections::BTreeSet;

use ripple_common::error::StoreError;
use ripple_common::items::MemberItem;
use ripple_common::protocol::{MAX_CLIENT_MESSAGE_BYTES, PackedFrame, ServerFrame};
use ripple_common::store::Store;

use ripple_common::items::ChannelEvent;

/// Most chat messages a snapshot carries.
pub const HISTORY_LIMIT: i32 = 100;

/// Builds the snapshot frame for `joiner` from the channel's `members` (as fanout read them).
pub async fn build(
    store: &Store,
    joiner: &MemberItem,
    members: &[MemberItem],
    now_secs: u64,
) -> Result<PackedFrame, StoreError> {
    let mut users: BTreeSet<String> = members
        .iter()
        .filter(|m| m.expires_at > now_secs)
        .map(|m| m.user.clone())
        .collect();
    // The index is eventually consistent: the joiner may not be in it yet.
    users.insert(joiner.user.clone());
    let users: Vec<String> = users.into_iter().collect();
    let mut positions = store.positions_of(&joiner.channel, &users).await?;
    positions.retain(|p| p.expires_at > now_secs && p.user != joiner.user);
    positions.sort_by(|a, b| a.user.cmp(&b.user));
    // Chat since the join (or since `since`, when the joiner asked): messages written after the
    // join whose own batch read the roster before this entry was in it are here, so a joiner
    // misses none (one it also gets as an event carries the same `id`).
    let from = joiner
        .since
        .map_or(joiner.ts.saturating_sub(1), |s| s.min(joiner.ts));
    let messages: Vec<_> = store
        .messages_since(&joiner.channel, from, HISTORY_LIMIT)
        .await?
        .into_iter()
        .map(|m| ChannelEvent::Message(m).to_event())
        .collect();
    let mut positions: Vec<(u64, _)> = positions
        .into_iter()
        .map(|p| (p.ts, ChannelEvent::Position(p).to_event()))
        .collect();
    Ok(fit(&joiner.channel, users, &mut positions, messages))
}

/// The snapshot frame, made to fit API Gateway's 128 KB (a bigger post is refused with 413):
/// the oldest chat goes first, then the oldest positions, then members beyond what fits (the
/// frame then says `"truncated":true`; the events that follow fill in).
fn fit(
    channel: &str,
    mut users: Vec<String>,
    positions: &mut Vec<(u64, ripple_common::protocol::Event)>,
    mut messages: Vec<ripple_common::protocol::Event>,
) -> PackedFrame {
    // Newest positions last, so trimming from the front drops the stalest.
    positions.sort_by_key(|(ts, _)| *ts);
    let mut truncated = false;
    loop {
        let frame = ServerFrame::Snapshot {
            channel: channel.to_owned(),
            members: users.clone(),
            positions: positions.iter().map(|(_, p)| p.clone()).collect(),
            messages: Some(messages.clone()),
            truncated,
        }
        .to_json()
        .into_bytes();
        if frame.len() <= MAX_CLIENT_MESSAGE_BYTES {
            return PackedFrame {
                bytes: frame,
                events: 0,
            };
        }
        truncated = true;
        if !messages.is_empty() {
            let drop = messages.len().div_ceil(4);
            messages.drain(..drop);
        } else if !positions.is_empty() {
            let drop = positions.len().div_ceil(4);
            positions.drain(..drop);
        } else if !users.is_empty() {
            let keep = users.len() * 3 / 4;
            users.truncate(keep);
        } else {
            return PackedFrame {
                bytes: frame,
                events: 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ripple_common::protocol::Event;

    #[test]
    fn a_snapshot_always_fits_128_kb_dropping_the_oldest_first() {
        // GIVEN 3,000 members with positions: far over 128 KB
        let users: Vec<String> = (0..3000).map(|i| format!("player-{i:05}")).collect();
        let mut positions: Vec<(u64, Event)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                (
                    i as u64,
                    Event::Position {
                        channel: "arena".into(),
                        user: u.clone(),
                        x: 1.0,
                        y: 2.0,
                        z: 3.0,
                        seq: 1,
                        data: None,
                        ts: i as u64,
                    },
                )
            })
            .collect();
        // WHEN the snapshot is made
        let frame = fit("arena", users, &mut positions, Vec::new());
        // THEN it fits, says it was cut, and kept the newest positions
        assert!(frame.bytes.len() <= MAX_CLIENT_MESSAGE_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&frame.bytes).unwrap();
        assert_eq!(v["truncated"], true);
        let kept = v["positions"].as_array().unwrap();
        assert!(!kept.is_empty());
        assert_eq!(kept.last().unwrap()["user"], "player-02999");
    }
}
