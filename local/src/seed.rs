//! Seeding connections straight into the table, as `connect` and `fanout` would leave them: the
//! one seeder of the benchmarks and the tests.

use ripple_common::error::StoreError;
use ripple_common::items::{ConnectionItem, MemberItem};
use ripple_common::store::Store;

/// Stores a connection and its memberships (joined at `joined_at` ms) exactly as `connect` does:
/// not welcomed yet, in no roster. Returns the memberships.
pub async fn connection(
    store: &Store,
    conn: &ConnectionItem,
    channels: &[&str],
    joined_at: u64,
) -> Result<Vec<MemberItem>, StoreError> {
    store.put_connection(conn).await?;
    let members: Vec<MemberItem> = channels
        .iter()
        .map(|c| MemberItem::new(conn, c, joined_at))
        .collect();
    store.put_members(&members).await?;
    Ok(members)
}

/// As [`connection`], then as `fanout` leaves it once the connection had its `welcome`: marked
/// welcomed, every membership in its channel's roster.
pub async fn welcomed_connection(
    store: &Store,
    conn: &ConnectionItem,
    channels: &[&str],
    joined_at: u64,
) -> Result<Vec<MemberItem>, StoreError> {
    let members = connection(store, conn, channels, joined_at).await?;
    store.mark_welcomed(&conn.connection_id).await?;
    for member in &members {
        store.put_roster(member).await?;
    }
    Ok(members)
}
