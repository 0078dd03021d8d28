//! Who is where in a benchmark: channels of member connections, seeded into the table as
//! `connect` and `fanout` leave them (a welcomed connection, its membership and roster entry).

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use ripple_common::items::{ConnectionItem, Endpoint};
use ripple_common::store::Store;

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

impl Layout {
    /// `channels` channels (`bench-0`, …) of `members` connections each, with ids shaped like API
    /// Gateway's (12 characters, `=` at the end).
    pub fn synthetic(channels: usize, members: usize) -> Self {
        let member = |c, m| Member {
            connection_id: format!("B{c:04}M{m:05}="),
            user: format!("u{c}-{m}"),
        };
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_synthetic_layout_has_distinct_connections_per_channel() {
        // GIVEN 3 channels of 4 members
        let layout = super::Layout::synthetic(3, 4);
        // THEN there are 12 distinct connection ids and users, 4 per channel
        let ids: std::collections::HashSet<_> =
            layout.members().map(|(_, m)| &m.connection_id).collect();
        assert_eq!(ids.len(), 12);
        assert_eq!(layout.members().count(), 12);
        assert!(layout.channels.iter().all(|c| c.members.len() == 4));
        assert_eq!(layout.channels[2].name, "bench-2");
    }
}
