//! Which user each connection is, kept in the warm instance so a member's position needs no read:
//! a connection's user is fixed at `$connect` and a connection id is never reused, so an entry
//! never goes stale. It is not a membership cache: membership is proven by the position write's
//! own condition (`Store::put_position_as_publisher`). Bounded by forgetting everything when full
//! (a forgotten connection costs one membership read); a plain map is enough for that, so no
//! cache crate.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before the map is emptied (about 100 bytes each).
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct Users {
    by_connection: Mutex<HashMap<String, String>>,
}

impl Users {
    /// The user of `connection_id`, if this instance has seen its membership.
    pub fn get(&self, connection_id: &str) -> Option<String> {
        self.by_connection.lock().ok()?.get(connection_id).cloned()
    }

    pub fn remember(&self, connection_id: &str, user: &str) {
        if let Ok(mut map) = self.by_connection.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(connection_id.to_owned(), user.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_connection_keeps_its_user_and_the_map_stays_bounded() {
        let users = Users::default();
        users.remember("c1", "alice");
        assert_eq!(users.get("c1").as_deref(), Some("alice"));
        assert_eq!(users.get("c2"), None);
        for i in 0..CAPACITY {
            users.remember(&format!("x{i}"), "u");
        }
        assert!(users.by_connection.lock().unwrap().len() <= CAPACITY);
    }
}
