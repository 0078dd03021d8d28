//! Counters of `ripple dev`, served at `GET /metrics` in Prometheus text format and summarised
//! by `--stats`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Monotonic counters (cheap to clone; all clones share them).
        #[derive(Debug, Clone, Default)]
        pub struct Metrics { inner: Arc<Counters> }

        #[derive(Debug, Default)]
        struct Counters { $($name: AtomicU64,)* }

        impl Metrics {
            /// Every counter as (name, help, value).
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $help, self.inner.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    connects_total: "WebSocket connections accepted by $connect",
    connects_rejected_total: "WebSocket upgrades rejected by $connect",
    disconnects_total: "WebSocket connections closed",
    frames_accepted_total: "client frames ingested",
    frames_refused_total: "client frames refused with an error frame",
    frames_failed_total: "client frames that failed with an internal error",
    posts_delivered_total: "@connections POSTs delivered to a socket",
    post_bytes_total: "bytes delivered by @connections POSTs",
    posts_gone_total: "@connections POSTs answered 410",
    posts_faulted_total: "@connections POSTs answered by fault injection",
    fanout_batches_total: "stream batches handed to fanout",
    fanout_records_total: "stream records handed to fanout",
    fanout_updates_delivered_total: "events delivered by fanout, summed over recipients",
    fanout_failed_batches_total: "batches fanout reported batchItemFailures for",
    fanout_gone_removed_total: "gone connections fanout removed",
}

impl Metrics {
    fn add(&self, f: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        f(&self.inner).fetch_add(n, Ordering::Relaxed);
    }
    pub fn connected(&self) {
        self.add(|c| &c.connects_total, 1);
    }
    pub fn connect_rejected(&self) {
        self.add(|c| &c.connects_rejected_total, 1);
    }
    pub fn disconnected(&self) {
        self.add(|c| &c.disconnects_total, 1);
    }
    pub fn frame_accepted(&self) {
        self.add(|c| &c.frames_accepted_total, 1);
    }
    pub fn frame_refused(&self) {
        self.add(|c| &c.frames_refused_total, 1);
    }
    pub fn frame_failed(&self) {
        self.add(|c| &c.frames_failed_total, 1);
    }
    pub fn post_delivered(&self, bytes: usize) {
        self.add(|c| &c.posts_delivered_total, 1);
        self.add(|c| &c.post_bytes_total, bytes as u64);
    }
    pub fn post_gone(&self) {
        self.add(|c| &c.posts_gone_total, 1);
    }
    pub fn post_faulted(&self) {
        self.add(|c| &c.posts_faulted_total, 1);
    }
    pub fn fanout(&self, report: &fanout::Report) {
        self.add(|c| &c.fanout_batches_total, 1);
        self.add(|c| &c.fanout_records_total, report.records as u64);
        self.add(
            |c| &c.fanout_updates_delivered_total,
            report.updates_delivered,
        );
        self.add(|c| &c.fanout_gone_removed_total, report.gone_removed as u64);
        if report.first_failed.is_some() {
            self.add(|c| &c.fanout_failed_batches_total, 1);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, open_connections: usize) -> String {
        let mut out = String::new();
        for (name, help, value) in self.snapshot() {
            let _ = writeln!(
                out,
                "# HELP ripple_{name} {help}\n# TYPE ripple_{name} counter\nripple_{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ripple_connections_open WebSocket connections open now\n# TYPE ripple_connections_open gauge\nripple_connections_open {open_connections}"
        );
        out
    }

    /// One line for `--stats`.
    pub fn summary(&self, open_connections: usize) -> String {
        let get = |name: &str| {
            self.snapshot()
                .into_iter()
                .find(|(n, _, _)| *n == name)
                .map_or(0, |(_, _, v)| v)
        };
        format!(
            "open={open_connections} connects={} frames={} refused={} batches={} records={} delivered={} posts={} gone={}",
            get("connects_total"),
            get("frames_accepted_total"),
            get("frames_refused_total"),
            get("fanout_batches_total"),
            get("fanout_records_total"),
            get("fanout_updates_delivered_total"),
            get("posts_delivered_total"),
            get("posts_gone_total"),
        )
    }
}
