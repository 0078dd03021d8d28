//! The optional member cache of a warm fanout instance: a channel's members, kept for at most
//! `RIPPLE_MEMBER_CACHE_MS` (off by default, never more than 1 s) so a busy channel is not
//! queried on every invocation. A batch that carries a join or leave for a channel always reads
//! that channel fresh, so snapshots and presence never work from a stale list.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ripple_common::items::MemberItem;

/// Channel → (read at, members).
#[derive(Debug)]
pub struct MemberCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Vec<MemberItem>)>>,
}

impl MemberCache {
    /// A cache keeping entries for `ttl`; `None` when `ttl` is zero (caching off).
    pub fn new(ttl: Duration) -> Option<Self> {
        (!ttl.is_zero()).then(|| Self {
            ttl,
            entries: Mutex::default(),
        })
    }

    /// The members read less than `ttl` ago, if any.
    pub fn get(&self, channel: &str) -> Option<Vec<MemberItem>> {
        let entries = self.entries.lock().ok()?;
        let (at, members) = entries.get(channel)?;
        (at.elapsed() < self.ttl).then(|| members.clone())
    }

    pub fn put(&self, channel: &str, members: &[MemberItem]) {
        if let Ok(mut entries) = self.entries.lock() {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            entries.insert(channel.to_owned(), (Instant::now(), members.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_zero_ttl_means_no_cache() {
        assert!(MemberCache::new(Duration::ZERO).is_none());
        // GIVEN a 50 ms cache holding arena's (empty) member list
        let cache = MemberCache::new(Duration::from_millis(50)).unwrap();
        cache.put("arena", &[]);
        // THEN it is served at once, and not after the TTL
        assert_eq!(cache.get("arena"), Some(vec![]));
        assert_eq!(cache.get("lobby"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("arena"), None);
    }
}
