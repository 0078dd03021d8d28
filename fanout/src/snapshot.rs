//! The `snapshot` a connection receives when it joins a channel: the channel's current members,
//! their latest positions (one BatchGetItem over per-user position keys: no hot partition), and,
//! when the join carried `since`, the chat messages written after it (one Query on the channel's
//! history). Built once per join, posted after `welcome` and before any event.

use std::collections::BTreeSet;

use ripple_common::error::StoreError;
use ripple_common::items::MemberItem;
use ripple_common::protocol::{MAX_CLIENT_MESSAGE_BYTES, PackedFrame, ServerFrame};
use ripple_common::store::Store;

use crate::changes::ChannelEvent;

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
    let mut messages = match joiner.since {
        Some(since) => Some(
            store
                .messages_since(&joiner.channel, since, HISTORY_LIMIT)
                .await?
                .into_iter()
                .map(|m| ChannelEvent::Message(m).to_event())
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let positions: Vec<_> = positions
        .into_iter()
        .map(|p| ChannelEvent::Position(p).to_event())
        .collect();
    loop {
        let frame = ServerFrame::Snapshot {
            channel: joiner.channel.clone(),
            members: users.clone(),
            positions: positions.clone(),
            messages: messages.clone(),
        }
        .to_json()
        .into_bytes();
        // Stay under API Gateway's 128 KB: drop the oldest history first.
        match &mut messages {
            Some(list) if frame.len() > MAX_CLIENT_MESSAGE_BYTES && !list.is_empty() => {
                let drop = list.len().div_ceil(4);
                list.drain(..drop);
            }
            _ => {
                return Ok(PackedFrame {
                    bytes: frame,
                    events: 0,
                });
            }
        }
    }
}
