//! `--histogram FILE.svg`: the latency distribution as HdrHistogram's percentile plot
//! (latency against percentile on a log scale of 1/(1-p), so the tail gets the room), drawn as
//! plain SVG: no plotting dependency for one line chart.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 20.0;
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

/// An SVG document plotting `latency_us` by percentile, titled `title`.
pub fn percentile_plot(latency_us: &Histogram<u64>, title: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let points = percentile_points(latency_us, 250);
    let max_ms = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(0.001) * 1.05;
    let x = |nines: f64| LEFT + nines / NINES * (W - LEFT - RIGHT);
    let y = |ms: f64| H - BOTTOM - ms / max_ms * (H - BOTTOM - TOP);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{LEFT}\" y=\"22\" font-size=\"14\">{}</text>",
        esc(title)
    );
    // Axes, grid and labels.
    for (k, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let gx = x(k as f64);
        let _ = write!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            H - BOTTOM,
            H - BOTTOM + 18.0
        );
    }
    for i in 0..=4 {
        let ms = max_ms * f64::from(i) / 4.0;
        let gy = y(ms);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{gy:.1}\" x2=\"{:.1}\" y2=\"{gy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{ms:.2} ms</text>",
            W - RIGHT,
            LEFT - 6.0,
            gy + 4.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">percentile</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0
    );
    let path: Vec<String> = points
        .iter()
        .map(|(n, ms)| format!("{:.1},{:.1}", x(*n), y(*ms)))
        .collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/></svg>",
        path.join(" ")
    );
    s
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
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("99.999%"));
    }
}
