//! The latency histogram as a hand-written SVG: bars, axes with ticks and labels, and the
//! p50 / p95 / p99 markers. Pure: from a [`Latencies`] to a string.

use std::fmt::Write;

use super::latency::Latencies;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 64.0;
/// At most this many bars.
const MAX_BARS: u64 = 60;

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at or above `x`.
pub fn nice_step(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * magnitude >= x {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bin width (ms) and bin count covering `0..end_ms` with at most [`MAX_BARS`] bars.
fn bins(end_ms: u64) -> (u64, u64) {
    let width = nice_step(end_ms as f64 / MAX_BARS as f64).max(1.0) as u64;
    (width, end_ms.div_ceil(width).max(1))
}

/// Renders the histogram of `latencies` with a title and a subtitle (the run's parameters).
pub fn histogram(latencies: &Latencies, title: &str, subtitle: &str) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let p50 = latencies.percentile(50.0).unwrap_or(0);
    let p95 = latencies.percentile(95.0).unwrap_or(0);
    let p99 = latencies.percentile(99.0).unwrap_or(0);
    let max = latencies.max().unwrap_or(0);
    // Show up to a bit past p99; what lies beyond is counted in a note.
    let end_ms = ((p99 as f64 * 1.3).ceil() as u64).max(p99 + 2).min(max + 1);
    let (width, count) = bins(end_ms);
    let span = (width * count) as f64;
    let mut bars = vec![0u64; usize::try_from(count).unwrap_or(0)];
    let mut beyond = 0;
    for (ms, n) in latencies.buckets().iter().enumerate() {
        match bars.get_mut((ms as u64 / width) as usize) {
            Some(slot) => *slot += n,
            None => beyond += n,
        }
    }
    let tallest = bars.iter().copied().max().unwrap_or(0).max(1) as f64;
    let y_step = nice_step(tallest / 5.0);
    let y_max = (tallest / y_step).ceil() * y_step;
    let x = |ms: f64| LEFT + ms / span * plot_w;
    let y = |n: f64| TOP + plot_h - n / y_max * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="43" fill="#555555">{}</text>"##,
        escape(subtitle)
    );
    // Horizontal grid and y ticks.
    let mut tick = 0.0;
    while tick <= y_max + 1e-9 {
        let ty = y(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            ty + 4.0,
            tick as u64
        );
        tick += y_step;
    }
    // Bars.
    let bar_w = plot_w / count as f64;
    for (i, n) in bars.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let bx = x((i as u64 * width) as f64);
        let by = y(*n as f64);
        let _ = writeln!(
            s,
            r##"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="#4c78a8"><title>{}–{} ms: {n}</title></rect>"##,
            (bar_w - 1.0).max(0.5),
            TOP + plot_h - by,
            i as u64 * width,
            (i as u64 + 1) * width
        );
    }
    // Axes and x ticks.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333333"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333333"/>"##,
        TOP + plot_h,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    let x_step = nice_step(span / 8.0).max(1.0);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333333"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 19.0,
            tick as u64
        );
        tick += x_step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">write → receive latency (ms), {width} ms per bar</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 22.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">updates received</text>"#,
        TOP + plot_h / 2.0
    );
    // Percentile markers.
    for (i, (label, ms, colour)) in [
        ("p50", p50, "#2a9d8f"),
        ("p95", p95, "#e08a00"),
        ("p99", p99, "#d62828"),
    ]
    .into_iter()
    .enumerate()
    {
        let mx = x(ms as f64 + 0.5).min(LEFT + plot_w);
        let text = format!("{label} {ms} ms");
        // About 7 px a character: flip the label left of its line near the right edge.
        let (tx, anchor) = if mx + 8.0 + 7.0 * text.len() as f64 > LEFT + plot_w {
            (mx - 4.0, "end")
        } else {
            (mx + 4.0, "start")
        };
        let _ = writeln!(
            s,
            r##"<line class="marker" x1="{mx:.1}" y1="{TOP}" x2="{mx:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{colour}" font-weight="bold" stroke="#ffffff" stroke-width="3" paint-order="stroke">{text}</text>"##,
            TOP + plot_h,
            TOP + 14.0 + 15.0 * i as f64
        );
    }
    let mut note = format!("{} updates", latencies.count());
    if beyond > 0 {
        let _ = write!(
            note,
            "; {beyond} above {} ms not drawn (max {max} ms)",
            span as u64
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555555">{}</text>"##,
        LEFT + plot_w,
        HEIGHT - 6.0,
        escape(&note)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(17.0), 20.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn the_svg_has_bars_axes_and_three_percentile_markers() {
        // GIVEN latencies of 10–29 ms and one outlier at 500 ms
        let mut l = Latencies::default();
        for i in 0..400 {
            l.record(10 + i % 20);
        }
        l.record(500);
        // WHEN rendered
        let svg = histogram(&l, "e2e <20 players>", "10 Hz");
        // THEN it is one SVG document with bars, escaped text, and p50/p95/p99 markers
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains("e2e &lt;20 players&gt;"));
        assert_eq!(svg.matches(r#"class="marker""#).count(), 3);
        for label in ["p50 20 ms", "p95 29 ms", "p99 29 ms"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert!(svg.matches("<rect ").count() > 10);
        assert!(svg.contains("1 above"), "the outlier is noted, not drawn");
    }

    #[test]
    fn an_empty_histogram_still_renders() {
        let svg = histogram(&Latencies::default(), "nothing", "");
        assert!(svg.contains("0 updates"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
