//! A loopback `@connections` server for `ripple bench fanout`: answers every POST 200 at once and
//! counts, per strategy (the URL's stage: `/{strategy}/@connections/{id}`), posts, bytes, billed
//! 32 KB messages and the distinct connections posted to; `GET` answers 200 (connected).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::units::apigw_messages;

/// What one strategy posted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub posts: u64,
    pub bytes: u64,
    /// Sum over posts of `ceil(bytes / 32 KB)`.
    pub messages_billed: u64,
    pub recipients: HashSet<String>,
}

impl Tally {
    /// What was posted since `earlier` (distinct recipients: all of them so far).
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            posts: self.posts.saturating_sub(earlier.posts),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            messages_billed: self.messages_billed.saturating_sub(earlier.messages_billed),
            recipients: self.recipients.clone(),
        }
    }
}

type Tallies = Arc<Mutex<HashMap<String, Tally>>>;

/// The running server.
#[derive(Debug)]
pub struct Sink {
    /// Base URL; a strategy posts under `{url}/{strategy}`.
    pub url: String,
    tallies: Tallies,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

async fn count(
    State(tallies): State<Tallies>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let Ok(mut map) = tallies.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let tally = map.entry(stage).or_default();
    tally.posts += 1;
    tally.bytes += body.len() as u64;
    tally.messages_billed += apigw_messages(body.len() as u64);
    if !tally.recipients.contains(&id) {
        tally.recipients.insert(id);
    }
    StatusCode::OK
}

/// `GET @connections/{id}`: every connection is there (fanout's init warm-up asks).
async fn info() -> impl axum::response::IntoResponse {
    (
        [("content-type", "application/json")],
        r#"{"connectedAt":"2026-11-26T21:00:00.000Z","lastActiveAt":"2026-11-26T21:00:00.000Z","identity":{"sourceIp":"127.0.0.1"}}"#,
    )
}

impl Sink {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let tallies: Tallies = Arc::default();
        let app = Router::new()
            .route("/{stage}/@connections/{id}", post(count).get(info))
            .with_state(Arc::clone(&tallies));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "the bench @connections server stopped");
            }
        });
        Ok(Self {
            url,
            tallies,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The `@connections` base URL a strategy posts to.
    pub fn url_for(&self, strategy: &str) -> String {
        format!("{}/{strategy}", self.url)
    }

    /// What `strategy` has posted so far.
    pub fn tally(&self, strategy: &str) -> Tally {
        self.tallies
            .lock()
            .ok()
            .and_then(|m| m.get(strategy).cloned())
            .unwrap_or_default()
    }

    /// Stops listening.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(3), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}
