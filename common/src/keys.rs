//! Table layout. One table; every item has `pk`, `sk`, `kind` and the TTL attribute `expires_at`.
//!
//! | item | `pk` | `sk` | index keys |
//! |---|---|---|---|
//! | connection | `conn#{connection_id}` | `conn` | |
//! | membership | `conn#{connection_id}` | `chan#{channel}` | |
//! | roster entry | `chan#{channel}` | `{connection_id}` | |
//! | position | `pos#{channel}#{partition}` | `{user}` | |
//! | message | `msg#{channel}` | `{ts:013}#{id}` | |
//! | session | `sess#{user}` | `sess` | |
//! | sweep cursor | `sweep#cursor` | `sweep#cursor` | |
//!
//! Connection items are also in the index, under `gsi1pk = conns#{shard}` (16 shards by a hash
//! of the id) and `gsi1sk = {connected_at:013}#{id}`: the sweep pages them oldest first with 16
//! Queries, never a Scan, and no index partition takes more than 1/16 of the connects.
//!
//! Why this shape:
//! - A connection and its memberships share a partition, so `$disconnect` and the 410 clean-up
//!   find everything with one strongly consistent Query and delete it in one batch.
//! - Fanout finds a channel's members with one strongly consistent Query of the channel's roster
//!   partition (`chan#{channel}`), never an index: index reads are eventually consistent, and a
//!   joiner must receive every chat message written after its roster entry, a leaver none after
//!   its removal. Roster writes are rare (join, leave), so that partition is never written hot;
//!   its reads (one per channel per batch, 2 units per 4 KB) stay far under 3,000 RCU/s.
//! - The roster entry is written by fanout only after the connection got its `welcome`, so no
//!   event can reach a connection before its `welcome` (API Gateway answers 410 to posts before
//!   the connection is established, and batches of other shards run concurrently).
//! - Positions are the hot writes (100 players × 20 Hz = 2,000/s in one channel), and the bill
//!   follows how many stream shards they land on: every shard's batch posts its own frame to
//!   every member (AWS polls each shard about 4 times a second), so a channel whose positions span
//!   S shards costs each member up to 4·S billed messages a second. Keying positions by user (one
//!   partition per player) spreads a 50-player room over every shard of the table (16 frames a
//!   second per member on 4 shards, 0.053 billed messages per delivered update, measured). So a
//!   channel's positions are bounded to [`POSITION_PARTITIONS`] partition keys,
//!   `pos#{channel}#{p}` with `p` a hash of the user: at most 2 shards, 8 frames a second per
//!   member. The bound is the smallest that stays within the 1,000 WCU/s partition limit at the
//!   design load: 2,000 writes/s over two keys is 1,000/s each on average. The hash split is not
//!   exact (55/45 for 100 players is one standard deviation), so a channel at the full design
//!   load runs a key at about the limit: DynamoDB's burst capacity absorbs short peaks, and a
//!   write still throttled after the SDK's retries is answered with API Gateway's internal error
//!   (nothing written, nothing lost silently). Balancing users over the keys at `join` would
//!   remove that edge; it is not built.
//!   One user's positions stay on one key, so the stream keeps their order.
//! - A position item also carries `publisher`, the connection allowed to overwrite it, so a
//!   member's position is one conditional PutItem with no membership read
//!   (`Store::put_position_as_publisher`); fanout ignores a `MODIFY` that keeps the `seq` (the
//!   mark removed at `leave`).
//! - Chat messages are human-rate; a channel's history partition takes up to 1,000 1-KB messages a
//!   second before it throttles, which the per-connection publish limit keeps out of reach.

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Item kind attribute.
pub const KIND: &str = "kind";
/// TTL attribute (seconds since the epoch). `ttl` itself is a DynamoDB reserved word.
pub const TTL: &str = "expires_at";
/// The index the sweep pages connections with (memberships are no longer in it).
pub const MEMBERS_INDEX: &str = "members_by_channel";
/// Index partition key attribute.
pub const GSI1_PK: &str = "gsi1pk";
/// Index sort key attribute.
pub const GSI1_SK: &str = "gsi1sk";

/// Sort key of a connection item.
pub const CONNECTION_SK: &str = "conn";
/// How many partition keys one channel's positions are spread over (see the module notes).
pub const POSITION_PARTITIONS: u32 = 2;
/// Prefix of membership sort keys within a connection's partition.
pub const MEMBER_SK_PREFIX: &str = "chan#";

/// Sort key of a session item.
pub const SESSION_SK: &str = "sess";
/// Partition and sort key of the sweep's cursor (one item).
pub const SWEEP_CURSOR_PK: &str = "sweep#cursor";
/// Shards of the sweep index.
pub const SWEEP_SHARDS: u32 = 16;

pub fn session_pk(user: &str) -> String {
    format!("sess#{user}")
}

/// FNV-1a: a small, stable hash for spreading keys (never for security).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The sweep-index shard of a connection.
pub fn sweep_shard(connection_id: &str) -> u32 {
    fnv1a(connection_id) % SWEEP_SHARDS
}

pub fn sweep_pk(connection_id: &str) -> String {
    sweep_shard_pk(sweep_shard(connection_id))
}

pub fn sweep_shard_pk(shard: u32) -> String {
    format!("conns#{shard:02}")
}

pub fn sweep_sk(connected_at_ms: u64, connection_id: &str) -> String {
    format!("{connected_at_ms:013}#{connection_id}")
}

pub fn connection_pk(connection_id: &str) -> String {
    format!("conn#{connection_id}")
}

pub fn member_sk(channel: &str) -> String {
    format!("{MEMBER_SK_PREFIX}{channel}")
}

pub fn channel_members_pk(channel: &str) -> String {
    format!("chan#{channel}")
}

/// Sort key of a roster entry in its channel's partition.
pub fn roster_sk(connection_id: &str) -> String {
    connection_id.to_owned()
}

/// The partition key of `user`'s position in `channel`: one of the channel's
/// [`POSITION_PARTITIONS`] keys, always the same one for a user (so the stream keeps the order of
/// a user's positions).
pub fn position_pk(channel: &str, user: &str) -> String {
    format!("pos#{channel}#{}", fnv1a(user) % POSITION_PARTITIONS)
}

/// The sort key of `user`'s position: one item per user per channel, overwritten.
pub fn position_sk(user: &str) -> String {
    user.to_owned()
}

pub fn message_pk(channel: &str) -> String {
    format!("msg#{channel}")
}

pub fn message_sk(ts_ms: u64, id: &str) -> String {
    format!("{ts_ms:013}#{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_channels_positions_land_on_a_bounded_number_of_keys_one_per_user() {
        // GIVEN 100 players in one channel
        let keys: std::collections::HashSet<_> = (0..100)
            .map(|i| {
                let user = format!("p{i}");
                (position_pk("arena", &user), position_sk(&user))
            })
            .collect();
        let pks: std::collections::HashSet<_> = keys.iter().map(|(pk, _)| pk.clone()).collect();
        // THEN each has its own item, on one of exactly POSITION_PARTITIONS partition keys, none
        // of them the channel's roster partition
        assert_eq!(keys.len(), 100);
        assert_eq!(pks.len(), POSITION_PARTITIONS as usize);
        assert!(!pks.contains(&channel_members_pk("arena")));
        // AND the split is even enough that neither key takes the design load alone
        let on_first = keys.iter().filter(|(pk, _)| pk.ends_with("#0")).count();
        assert!(
            (30..=70).contains(&on_first),
            "{on_first} of 100 on one key"
        );
        // AND a user's key never changes (the stream keeps order per item key only)
        assert_eq!(position_pk("arena", "p7"), position_pk("arena", "p7"));
    }

    #[test]
    fn message_sort_keys_order_by_time() {
        assert!(message_sk(999, "b") < message_sk(1_000, "a"));
        assert!(message_sk(1_700_000_000_000, "z") < message_sk(1_700_000_000_001, "a"));
    }
}
