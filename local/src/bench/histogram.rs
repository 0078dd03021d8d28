//! Write→receive latencies in whole milliseconds (the resolution of the `ts` Ripple stamps at
//! ingest): an `hdrhistogram` (exact below 2 s at 3 significant digits, nearest-rank
//! percentiles), and its picture, an SVG drawn with `plotters`: bars, axes, p50/p95/p99 markers.

use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Latencies above this are counted here (10 minutes).
pub const MAX_MS: u64 = 600_000;
/// At most this many bars.
const MAX_BARS: u64 = 60;

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Latencies(pub Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        // 1 ms..MAX_MS at 3 significant digits are valid bounds: this cannot fail.
        #[allow(clippy::expect_used)]
        Self(Histogram::new_with_bounds(1, MAX_MS, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    /// Records one latency (capped at [`MAX_MS`]).
    pub fn record(&mut self, ms: u64) {
        self.0.saturating_record(ms.min(MAX_MS));
    }

    /// The nearest-rank `p`-th percentile (0 < p ≤ 100).
    pub fn percentile(&self, p: f64) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(p / 100.0))
    }

    /// `p50`, `p95`, `p99`, `max` and `mean` in ms (null when nothing was recorded).
    pub fn summary(&self) -> serde_json::Value {
        let [p50, p95, p99] = [50.0, 95.0, 99.0].map(|p| self.percentile(p));
        let recorded = !self.0.is_empty();
        let max = recorded.then_some(self.0.max());
        let mean = recorded.then_some(super::round(self.0.mean(), 2));
        serde_json::json!({"p50": p50, "p95": p95, "p99": p99, "max": max, "mean": mean})
    }
}

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at or above `x`.
pub fn nice_step(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= x)
        .unwrap_or(10.0 * magnitude)
}

/// Writes [`svg`] to `path`, creating its folder.
pub fn write_svg(path: &Path, latencies: &Latencies, subtitle: &str) -> anyhow::Result<()> {
    let svg = svg(
        latencies,
        "Ripple end to end: write → receive latency",
        subtitle,
    )?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    super::note(&format!(
        "bench e2e: histogram written to {}",
        path.display()
    ));
    Ok(())
}

/// The histogram of `latencies` as an SVG document, with a title and a subtitle (the run's
/// parameters): bars up to a bit past p99 (what lies beyond is counted in a note).
pub fn svg(latencies: &Latencies, title: &str, subtitle: &str) -> anyhow::Result<String> {
    let h = &latencies.0;
    let [p50, p95, p99, max] =
        [50.0, 95.0, 99.0, 100.0].map(|p| latencies.percentile(p).unwrap_or(0));
    let end_ms = ((p99 as f64 * 1.3).ceil() as u64).max(p99 + 2).min(max + 1);
    let width = nice_step(end_ms as f64 / MAX_BARS as f64).max(1.0) as u64;
    let span = end_ms.div_ceil(width).max(1) * width;
    let bars: Vec<(u64, u64)> = (0..span / width)
        .map(|i| (i * width, h.count_between(i * width, (i + 1) * width - 1)))
        .collect();
    let beyond = latencies.0.len() - bars.iter().map(|b| b.1).sum::<u64>();
    let tallest = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let y_max = ((tallest / nice_step(tallest / 5.0)).ceil() * nice_step(tallest / 5.0)) as u64;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (860, 440)).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, plot) = root.split_vertically(56);
        head.draw(&Text::new(
            title.to_owned(),
            (72, 8),
            ("sans-serif", 16).into_font().style(FontStyle::Bold),
        ))?;
        head.draw(&Text::new(
            subtitle.to_owned(),
            (72, 32),
            ("sans-serif", 12).into_font().color(&RGBColor(85, 85, 85)),
        ))?;
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(28)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0..span, 0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(format!("write → receive latency (ms), {width} ms per bar"))
            .y_desc("updates received")
            .draw()?;
        let bar = RGBColor(0x4c, 0x78, 0xa8).filled();
        chart.draw_series(
            bars.iter()
                .filter(|b| b.1 > 0)
                .map(|&(x, n)| Rectangle::new([(x, 0), (x + width, n)], bar)),
        )?;
        for (label, ms, colour) in [
            ("p50", p50, RGBColor(0x2a, 0x9d, 0x8f)),
            ("p95", p95, RGBColor(0xe0, 0x8a, 0x00)),
            ("p99", p99, RGBColor(0xd6, 0x28, 0x28)),
        ] {
            let style = colour.stroke_width(2);
            chart
                .draw_series([PathElement::new(vec![(ms, 0), (ms, y_max)], style)])?
                .label(format!("{label} {ms} ms"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
        let mut note = format!("{} updates", latencies.0.len());
        if beyond > 0 {
            note.push_str(&format!(
                "; {beyond} above {span} ms not drawn (max {max} ms)"
            ));
        }
        root.draw(&Text::new(note, (600, 424), ("sans-serif", 12)))?;
        root.present()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(ms: impl IntoIterator<Item = u64>) -> Latencies {
        let mut l = Latencies::default();
        ms.into_iter().for_each(|ms| l.record(ms));
        l
    }

    #[test]
    fn percentiles_are_nearest_rank_and_huge_values_are_capped() {
        // GIVEN latencies 1..=100 ms, once each WHEN summarised THEN p50 is 50, p95 is 95, p99
        // is 99, p100 the max
        let l = recorded((1..=100).rev());
        let summary =
            serde_json::json!({"p50": 50, "p95": 95, "p99": 99, "max": 100, "mean": 50.5});
        assert_eq!((l.summary(), l.percentile(100.0)), (summary, Some(100)));
        // GIVEN 99 samples of 10 ms and one of 900 ms THEN p99 is still 10 ms and only p100 sees
        // the outlier
        let l = recorded(std::iter::repeat_n(10, 99).chain([900]));
        assert_eq!(
            (l.percentile(99.0), l.percentile(100.0)),
            (Some(10), Some(900))
        );
        // GIVEN no samples THEN no percentile
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        assert!(
            l.summary()
                .as_object()
                .unwrap()
                .values()
                .all(|v| v.is_null())
        );
        // WHEN a sample beyond the cap is recorded THEN it counts at the cap (to the histogram's
        // resolution there: 3 significant digits)
        l.record(u64::MAX);
        assert!(l.0.equivalent(l.0.max(), MAX_MS), "{:?}", l.0.max());
        assert_eq!(l.0.len(), 1);
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        let steps = [0.3, 1.0, 3.0, 17.0, 0.0].map(nice_step);
        assert_eq!(steps, [0.5, 1.0, 5.0, 20.0, 1.0]);
    }

    #[test]
    fn the_svg_has_bars_axes_and_three_percentile_markers() {
        // GIVEN latencies of 10–29 ms and one outlier at 500 ms WHEN rendered
        let svg = svg(
            &recorded((0..400).map(|i| 10 + i % 20).chain([500])),
            "e2e <20 players>",
            "10 Hz",
        );
        let svg = svg.unwrap();
        // THEN it is one SVG document with bars, escaped text, and p50/p95/p99 markers
        assert!(
            svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(svg.contains("e2e &lt;20 players&gt;"));
        let markers = [
            ("p50 20 ms", "#2A9D8F"),
            ("p95 29 ms", "#E08A00"),
            ("p99 29 ms", "#D62828"),
        ];
        for (label, colour) in markers {
            assert!(svg.contains(label), "{label} missing");
            // the marker line and its legend swatch
            assert_eq!(
                svg.matches(&format!(r#"stroke="{colour}""#)).count(),
                2,
                "{label}"
            );
        }
        assert!(svg.matches("<rect ").count() > 10);
        assert!(svg.contains("1 above"), "the outlier is noted, not drawn");
        // AND an empty histogram still renders
        let svg = super::svg(&Latencies::default(), "nothing", "").unwrap();
        assert!(svg.contains("0 updates") && svg.trim_end().ends_with("</svg>"));
    }
}
