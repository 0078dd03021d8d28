//! The live WebSocket connections of `ripple dev`, as API Gateway keeps them: what
//! `@connections` POST/GET/DELETE act on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

/// Something to send down a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    pub tx: mpsc::UnboundedSender<Outgoing>,
    pub connected_at_ms: u64,
    pub last_active_ms: AtomicU64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The client vanished without a close (a phone off Wi-Fi): posts answer 200 and go nowhere,
    /// its frames never arrive, until the idle timeout closes it.
    pub vanished: Arc<AtomicBool>,
    /// Notified when `@connections` DELETE closes the connection.
    pub closing: Arc<tokio::sync::Notify>,
}

impl Conn {
    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_active(&self) -> u64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    pub fn vanish(&self) {
        self.vanished.store(true, Ordering::Relaxed);
    }

    pub fn has_vanished(&self) -> bool {
        self.vanished.load(Ordering::Relaxed)
    }
}

/// Connection id → connection.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<String, Arc<Conn>>>>,
}

impl Registry {
    pub fn insert(&self, id: String, conn: Conn) {
        if let Ok(mut map) = self.inner.write() {
            map.insert(id, Arc::new(conn));
        }
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Conn>> {
        self.inner.write().ok().and_then(|mut map| map.remove(id))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Conn>> {
        self.inner.read().ok().and_then(|map| map.get(id).cloned())
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fresh connection id shaped like API Gateway's (12 base64 characters ending in `=`), so
/// clients and tests meet the URL-encoding they will meet on AWS.
pub fn new_connection_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut id: String = (0..11)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    id.push('=');
    id
}
