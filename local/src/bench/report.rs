//! The results of `ripple bench fanout`: per-strategy numbers, their ratios, the issue's targets,
//! and the table. Pure: derived fields are computed here from what was measured.

use serde::{Deserialize, Serialize};

use super::{ratio, round, table, thousands};

/// One strategy's line of results, as printed in `--json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyResult {
    pub records: usize,
    /// Distinct connections posted to.
    pub recipients: usize,
    /// Events delivered, summed over recipients.
    pub updates_delivered: u64,
    pub posts: u64,
    /// Sum over posts of `ceil(bytes / 32 KB)`.
    pub messages_billed: u64,
    pub messages_per_update: f64,
    pub wall_seconds: f64,
    pub posts_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub peak_rss_mb: f64,
}

impl StrategyResult {
    /// The rates and the billed share, from what was measured (the child process's counts and
    /// the `@connections` server's); rounded for the JSON.
    pub fn derived(self) -> Self {
        let delivered = self.updates_delivered as f64;
        Self {
            messages_per_update: round(ratio(self.messages_billed as f64, delivered), 5),
            wall_seconds: round(self.wall_seconds, 6),
            posts_per_sec: round(ratio(self.posts as f64, self.wall_seconds), 1),
            deliveries_per_sec: round(ratio(delivered, self.wall_seconds), 1),
            peak_rss_mb: round(self.peak_rss_mb, 1),
            ..self
        }
    }
}

/// The batch a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub channels: usize,
    pub members: usize,
    pub records: usize,
    pub message_ratio: f64,
    pub users: usize,
    pub max_in_flight: usize,
    /// Timed rounds per strategy; wall times are their median.
    pub rounds: usize,
    /// Median time of one channel's members Query on this DynamoDB, measured before the runs.
    pub member_query_ms: f64,
}

/// Everything `ripple bench fanout --json` prints, on one line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FanoutResults {
    pub scenario: ScenarioSummary,
    pub ripple: StrategyResult,
    pub naive: StrategyResult,
    pub ceiling: StrategyResult,
    /// Ripple's `deliveries_per_sec` over the naive fan-out's.
    pub ripple_vs_naive_deliveries: f64,
    /// Ripple's `posts_per_sec` over the raw ceiling's.
    pub ripple_vs_ceiling_posts: f64,
}

impl FanoutResults {
    pub fn new(
        scenario: ScenarioSummary,
        ripple: StrategyResult,
        naive: StrategyResult,
        ceiling: StrategyResult,
    ) -> Self {
        Self {
            ripple_vs_naive_deliveries: round(
                ratio(ripple.deliveries_per_sec, naive.deliveries_per_sec),
                2,
            ),
            ripple_vs_ceiling_posts: round(ratio(ripple.posts_per_sec, ceiling.posts_per_sec), 3),
            scenario,
            ripple,
            naive,
            ceiling,
        }
    }
}

/// One of the issue's targets, with this run's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub what: &'static str,
    pub goal: &'static str,
    pub value: String,
    pub met: bool,
}

/// The issue's targets, judged on this run (reported, never asserted).
pub fn targets(r: &FanoutResults) -> Vec<Target> {
    let t = |what, goal, value, met| Target {
        what,
        goal,
        value,
        met,
    };
    let (ripple, naive, ceiling) = (
        &r.ripple,
        r.ripple_vs_naive_deliveries,
        r.ripple_vs_ceiling_posts,
    );
    vec![
        t(
            "Ripple messages_per_update",
            "≤ 0.05 (50 members, 100 position records per channel)",
            format!("{:.4}", ripple.messages_per_update),
            ripple.messages_per_update <= 0.05,
        ),
        t(
            "Ripple vs naive deliveries_per_sec",
            "≥ 20×",
            format!("{naive:.1}×"),
            naive >= 20.0,
        ),
        t(
            "Ripple vs ceiling posts_per_sec",
            "≥ 50%",
            format!("{:.0}%", ceiling * 100.0),
            ceiling >= 0.5,
        ),
        t(
            "Ripple peak RSS",
            "≤ 64 MB (1,000 records, 100-member channels)",
            format!("{:.1} MB", ripple.peak_rss_mb),
            ripple.peak_rss_mb <= 64.0,
        ),
    ]
}

/// The readable report: the strategies' table, the ratios and the targets.
pub fn render(r: &FanoutResults) -> String {
    let s = &r.scenario;
    let header = [
        "strategy",
        "records",
        "recipients",
        "updates",
        "posts",
        "billed msgs",
        "msgs/update",
        "wall s",
        "posts/s",
        "deliveries/s",
        "peak RSS MB",
    ];
    let rows = [
        ("ripple", &r.ripple),
        ("naive", &r.naive),
        ("ceiling", &r.ceiling),
    ]
    .map(|(name, x)| {
        vec![
            name.to_owned(),
            thousands(x.records as u64),
            thousands(x.recipients as u64),
            thousands(x.updates_delivered),
            thousands(x.posts),
            thousands(x.messages_billed),
            format!("{:.4}", x.messages_per_update),
            format!("{:.4}", x.wall_seconds),
            thousands(x.posts_per_sec.round() as u64),
            thousands(x.deliveries_per_sec.round() as u64),
            format!("{:.1}", x.peak_rss_mb),
        ]
    });
    let mut out = format!(
        "ripple bench fanout: {} channel(s) × {} members, {} records ({:.0}% chat, {} sender(s) per channel), {} posts in flight, median of {} rounds\n\n{}\none channel's members Query: {:.2} ms (median, measured before the runs)\n\nripple vs naive deliveries/s: {:.1}×    ripple vs ceiling posts/s: {:.0}%\n\ntargets (reported, not asserted):\n",
        s.channels,
        s.members,
        thousands(s.records as u64),
        s.message_ratio * 100.0,
        s.users,
        s.max_in_flight,
        s.rounds,
        table(&header, rows.to_vec()),
        s.member_query_ms,
        r.ripple_vs_naive_deliveries,
        r.ripple_vs_ceiling_posts * 100.0
    );
    for t in targets(r) {
        let met = if t.met { "met" } else { "missed" };
        out.push_str(&format!(
            "  [{met}] {}: {} (goal {})\n",
            t.what, t.value, t.goal
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(updates: u64, posts: u64, billed: u64, wall: f64) -> StrategyResult {
        let (records, recipients, peak_rss_mb) = (100, 50, 20.04);
        let (updates_delivered, messages_billed, wall_seconds) = (updates, billed, wall);
        StrategyResult {
            records,
            recipients,
            updates_delivered,
            posts,
            messages_billed,
            wall_seconds,
            peak_rss_mb,
            ..Default::default()
        }
        .derived()
    }

    #[test]
    fn derived_fields_come_from_what_was_measured() {
        // GIVEN 50 posts (50 billed messages) carrying 2,450 updates in 0.05 s
        let r = measured(2_450, 50, 50, 0.05);
        // THEN the rates and the billed share follow
        assert_eq!(r.messages_per_update, round(50.0 / 2_450.0, 5));
        assert_eq!(r.posts_per_sec, 1_000.0);
        assert_eq!(r.deliveries_per_sec, 49_000.0);
        assert_eq!(r.peak_rss_mb, 20.0);
    }

    #[test]
    fn ratios_compare_ripple_with_naive_and_the_ceiling_and_never_divide_by_zero() {
        // GIVEN ripple, a naive fan-out 25× slower, and a ceiling twice Ripple's post rate
        let ripple = measured(2_450, 50, 50, 0.05);
        let naive = measured(4_900, 4_900, 4_900, 2.5);
        let ceiling = measured(50, 50, 50, 0.025);
        // WHEN combined
        let r = FanoutResults::new(ScenarioSummary::default(), ripple, naive, ceiling.clone());
        // THEN the ratios are 25× and 50%, and the targets are judged on them
        assert_eq!(r.ripple_vs_naive_deliveries, 25.0);
        assert_eq!(r.ripple_vs_ceiling_posts, 0.5);
        assert!(targets(&r).iter().all(|t| t.met), "{:?}", targets(&r));
        let zero = StrategyResult::default();
        let empty = FanoutResults::new(ScenarioSummary::default(), zero.clone(), zero, ceiling);
        assert_eq!(empty.ripple_vs_naive_deliveries, 0.0);
    }

    #[test]
    fn the_json_line_has_every_field_the_issue_names() {
        // GIVEN results WHEN serialized THEN one line with the three strategies and both ratios
        let r = FanoutResults::default();
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for strategy in ["ripple", "naive", "ceiling"] {
            for field in [
                "records",
                "recipients",
                "updates_delivered",
                "posts",
                "messages_billed",
                "messages_per_update",
                "wall_seconds",
                "posts_per_sec",
                "deliveries_per_sec",
                "peak_rss_mb",
            ] {
                assert!(v[strategy].get(field).is_some(), "{strategy}.{field}");
            }
        }
        assert!(v["ripple_vs_naive_deliveries"].is_number());
        assert!(v["ripple_vs_ceiling_posts"].is_number());
    }
}
