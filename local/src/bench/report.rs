//! The results of `ripple bench fanout`: per-strategy numbers, their ratios, the issue's targets,
//! and the aligned text table. Pure: derived fields are computed here from what was measured.

use serde::{Deserialize, Serialize};

/// What was measured for one strategy (by the child process and the `@connections` server).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub records: usize,
    pub recipients: usize,
    pub updates_delivered: u64,
    pub posts: u64,
    pub messages_billed: u64,
    pub wall_seconds: f64,
    pub peak_rss_mb: f64,
}

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

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Rounds to `digits` decimals (the JSON stays readable).
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

impl From<Measured> for StrategyResult {
    fn from(m: Measured) -> Self {
        Self {
            records: m.records,
            recipients: m.recipients,
            updates_delivered: m.updates_delivered,
            posts: m.posts,
            messages_billed: m.messages_billed,
            messages_per_update: round(
                ratio(m.messages_billed as f64, m.updates_delivered as f64),
                5,
            ),
            wall_seconds: round(m.wall_seconds, 6),
            posts_per_sec: round(ratio(m.posts as f64, m.wall_seconds), 1),
            deliveries_per_sec: round(ratio(m.updates_delivered as f64, m.wall_seconds), 1),
            peak_rss_mb: round(m.peak_rss_mb, 1),
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
    vec![
        Target {
            what: "Ripple messages_per_update",
            goal: "≤ 0.05 (50 members, 100 position records per channel)",
            value: format!("{:.4}", r.ripple.messages_per_update),
            met: r.ripple.messages_per_update <= 0.05,
        },
        Target {
            what: "Ripple vs naive deliveries_per_sec",
            goal: "≥ 20×",
            value: format!("{:.1}×", r.ripple_vs_naive_deliveries),
            met: r.ripple_vs_naive_deliveries >= 20.0,
        },
        Target {
            what: "Ripple vs ceiling posts_per_sec",
            goal: "≥ 50%",
            value: format!("{:.0}%", r.ripple_vs_ceiling_posts * 100.0),
            met: r.ripple_vs_ceiling_posts >= 0.5,
        },
        Target {
            what: "Ripple peak RSS",
            goal: "≤ 64 MB (1,000 records, 100-member channels)",
            value: format!("{:.1} MB", r.ripple.peak_rss_mb),
            met: r.ripple.peak_rss_mb <= 64.0,
        },
    ]
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let (head, rest) = digits.split_at(digits.len() % 3);
    let mut out = head.to_owned();
    for group in rest.as_bytes().chunks(3) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// An aligned text table: the first column left-aligned, the others right-aligned.
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            let pad = width.saturating_sub(cell.chars().count());
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(rule.iter().map(String::as_str).collect()));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The readable report: the strategies' table, the ratios and the targets.
pub fn render(r: &FanoutResults) -> String {
    let s = &r.scenario;
    let mut out = format!(
        "ripple bench fanout: {} channel(s) × {} members, {} records ({:.0}% chat, {} sender(s) per channel), {} posts in flight, median of {} rounds\n\n",
        s.channels,
        s.members,
        thousands(s.records as u64),
        s.message_ratio * 100.0,
        s.users,
        s.max_in_flight,
        s.rounds
    );
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
    let rows: Vec<Vec<String>> = [
        ("ripple", &r.ripple),
        ("naive", &r.naive),
        ("ceiling", &r.ceiling),
    ]
    .into_iter()
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
    })
    .collect();
    out.push_str(&text_table(&header, &rows));
    out.push_str(&format!(
        "\none channel's members Query: {:.2} ms (median, measured before the runs)\n",
        s.member_query_ms
    ));
    out.push_str(&format!(
        "\nripple vs naive deliveries/s: {:.1}×    ripple vs ceiling posts/s: {:.0}%\n\ntargets (reported, not asserted):\n",
        r.ripple_vs_naive_deliveries,
        r.ripple_vs_ceiling_posts * 100.0
    ));
    for t in targets(r) {
        out.push_str(&format!(
            "  [{}] {}: {} (goal {})\n",
            if t.met { "met" } else { "missed" },
            t.what,
            t.value,
            t.goal
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(updates: u64, posts: u64, billed: u64, wall: f64) -> Measured {
        Measured {
            records: 100,
            recipients: 50,
            updates_delivered: updates,
            posts,
            messages_billed: billed,
            wall_seconds: wall,
            peak_rss_mb: 20.04,
        }
    }

    #[test]
    fn the_median_takes_the_middle_of_the_rounds() {
        // GIVEN wall times with an outlier WHEN the median is taken THEN the outlier is ignored
        assert_eq!(median(&[0.9, 0.01, 0.02]), 0.02);
        assert_eq!(median(&[0.04, 0.01, 0.02, 0.03]), 0.025);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn derived_fields_come_from_what_was_measured() {
        // GIVEN 50 posts (50 billed messages) carrying 2,450 updates in 0.05 s
        let r = StrategyResult::from(measured(2_450, 50, 50, 0.05));
        // THEN the rates and the billed share follow
        assert_eq!(r.messages_per_update, round(50.0 / 2_450.0, 5));
        assert_eq!(r.posts_per_sec, 1_000.0);
        assert_eq!(r.deliveries_per_sec, 49_000.0);
        assert_eq!(r.peak_rss_mb, 20.0);
    }

    #[test]
    fn ratios_compare_ripple_with_naive_and_the_ceiling_and_never_divide_by_zero() {
        // GIVEN ripple, a naive fan-out 25× slower, and a ceiling twice Ripple's post rate
        let ripple = StrategyResult::from(measured(2_450, 50, 50, 0.05));
        let naive = StrategyResult::from(measured(4_900, 4_900, 4_900, 2.5));
        let ceiling = StrategyResult::from(measured(50, 50, 50, 0.025));
        // WHEN combined
        let r = FanoutResults::new(ScenarioSummary::default(), ripple, naive, ceiling.clone());
        // THEN the ratios are 25× and 50%, and the targets are judged on them
        assert_eq!(r.ripple_vs_naive_deliveries, 25.0);
        assert_eq!(r.ripple_vs_ceiling_posts, 0.5);
        assert!(targets(&r).iter().all(|t| t.met), "{:?}", targets(&r));
        let empty = FanoutResults::new(
            ScenarioSummary::default(),
            StrategyResult::default(),
            StrategyResult::default(),
            ceiling,
        );
        assert_eq!(empty.ripple_vs_naive_deliveries, 0.0);
    }

    #[test]
    fn the_json_line_has_every_field_the_issue_names() {
        // GIVEN results WHEN serialized THEN one line with the three strategies and both ratios
        let r = FanoutResults::new(
            ScenarioSummary::default(),
            StrategyResult::default(),
            StrategyResult::default(),
            StrategyResult::default(),
        );
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

    #[test]
    fn tables_align_and_numbers_get_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        // GIVEN two rows of different widths WHEN tabulated THEN every line has the same width
        let t = text_table(
            &["name", "n"],
            &[
                vec!["a".into(), "1".into()],
                vec!["longer".into(), "1,000".into()],
            ],
        );
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{t}");
    }
}
