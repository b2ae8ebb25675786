//! `--histogram FILE.svg`: the latency distribution as HdrHistogram's percentile plot
//! (latency against percentile on a log scale of 1/(1-p), so the tail gets the room), drawn as
//! plain SVG by the lab's one chart engine (`lab_net::chart`).

use hdrhistogram::Histogram;

/// The plot reaches 99.999% (five nines).
const NINES: f64 = 5.0;

/// `steps + 1` points (x = -log10(1 - q) from 0 to five nines, y = latency in ms) of the
/// percentile curve: what the plot draws, and what `lab load` sends to the dashboard.
pub fn percentile_points(latency_us: &Histogram<u64>, steps: u32) -> Vec<(f64, f64)> {
    (0..=steps)
        .map(|i| {
            let nines = NINES * f64::from(i) / f64::from(steps);
            let q = 1.0 - 10f64.powf(-nines);
            let ms = if latency_us.is_empty() {
                0.0
            } else {
                latency_us.value_at_quantile(q) as f64 / 1000.0
            };
            (nines, ms)
        })
        .collect()
}

/// An SVG document plotting `latency_us` by percentile, titled `title`: the one chart engine
/// the dashboard draws with (`lab_net::chart`), on its percentile axis.
pub fn percentile_plot(latency_us: &Histogram<u64>, title: &str) -> String {
    let points = percentile_points(latency_us, 250)
        .into_iter()
        .map(|(x, ms)| (x, Some(ms)))
        .collect();
    let line = lab_net::chart::Line {
        name: "latency".into(),
        points,
    };
    let mut svg = lab_net::chart::lines(title, "ms", lab_net::chart::XAxis::Nines, &[line]);
    svg.push('\n');
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_the_tail_as_a_polyline() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let svg = percentile_plot(&h, "GET /recipes/42 <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;test&gt;"), "title escaped");
        assert_eq!(svg.matches(r#"<path class="line""#).count(), 1);
        assert!(svg.contains("99.999%"));
    }
}
