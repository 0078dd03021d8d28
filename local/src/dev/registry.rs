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

/// Frames queued for one client and not yet written to its socket. Beyond it `@connections`
/// answers 429 `LimitExceededException`, as API Gateway does for a client that does not read
/// (its buffer for the connection is full). A reading client on loopback never comes near it.
pub const OUTBOUND_FRAMES: usize = 256;

/// One connection.
#[derive(Debug)]
pub struct Conn {
    /// What waits to be written to the socket, at most [`OUTBOUND_FRAMES`].
    pub tx: mpsc::Sender<Outgoing>,
    pub connected_at_ms: u64,
    pub last_active_ms: AtomicU64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The client vanished without a close (a phone off Wi-Fi): posts answer 200 and go nowhere,
    /// its frames never arrive, until the idle timeout closes it.
    pub vanished: Arc<AtomicBool>,
    /// The client stopped reading its socket: nothing more is written to it, so its queue fills
    /// and posts answer 429.
    pub stalled: Arc<AtomicBool>,
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

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// Queues `out` for the socket, when there is room (a route response or a close: a client
    /// that does not read misses it, as it would on AWS). Whether it was queued.
    pub fn send(&self, out: Outgoing) -> bool {
        self.tx.try_send(out).is_ok()
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
