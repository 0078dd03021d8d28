//! The benchmarks' seeded channels are what fanout reads: without roster entries `ripple bench
//! fanout` would post to nobody and report zeros.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use ripple::bench::batch::{Layout, seed};
use ripple_tests::TestTable;

#[tokio::test]
async fn a_seeded_benchmark_channel_is_the_member_list_fanout_reads() {
    // GIVEN a benchmark layout of 2 channels × 30 members
    let table = TestTable::new().await.unwrap();
    let layout = Layout::synthetic(2, 30);
    // WHEN seeded
    seed(&table.store, &layout).await.unwrap();
    // THEN fanout's member read (the channel's roster) finds every member of each channel
    for channel in &layout.channels {
        let members = table.store.channel_members(&channel.name).await.unwrap();
        let mut found: Vec<_> = members.iter().map(|m| m.connection_id.clone()).collect();
        let mut expected: Vec<_> = channel
            .members
            .iter()
            .map(|m| m.connection_id.clone())
            .collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected, "{}", channel.name);
    }
}
