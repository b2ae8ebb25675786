//! Line charts as inline SVG, drawn by the hub for its pages: no plotting crate and no script,
//! so a chart is part of the HTML the server sends (and works offline). Every label goes
//! through [`escape`](crate::html::escape).

use std::fmt::Write as _;

use crate::html::escape;

const W: f64 = 560.0;
const H: f64 = 220.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 34.0;
/// Line colours, one per series, in order.
const COLOURS: &[&str] = &[
    "#4a7fd4", "#d4544a", "#2f9e5b", "#c98a1c", "#8a4ad4", "#1ca7b8", "#6b6b6b",
];

/// What the x values are, for the axis labels.
#[derive(Debug, Clone, Copy)]
pub enum XAxis {
    /// Epoch seconds, labelled HH:MM:SS (UTC).
    Time,
    /// Plain numbers with a unit (`s` for seconds into a run).
    Linear(&'static str),
    /// HdrHistogram's percentile axis: x = -log10(1 - q), labelled 90%, 99%, …
    Nines,
}

/// One line: a name for the legend and its points (a `None` value breaks the line).
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

fn nice_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 10.0 {
        format!("{:.0}", v)
    } else if v.abs() >= 1.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.3}", v)
    }
}

fn x_label(axis: XAxis, x: f64) -> String {
    match axis {
        XAxis::Time => {
            // The time of day in UTC.
            let s = (x as i64).rem_euclid(86_400);
            format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
        }
        XAxis::Linear(unit) => format!("{}{unit}", fmt_num(x)),
        XAxis::Nines => {
            let pct = 100.0 * (1.0 - 10f64.powf(-x));
            let s = format!("{pct:.5}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        }
    }
}

/// An `<svg>` element plotting `lines` (y from zero up), titled, with `y_unit` on the y axis.
/// With no point at all it still draws the frame and says "no data".
pub fn lines(title: &str, y_unit: &str, axis: XAxis, lines: &[Line]) -> String {
    let xs = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
    };
    let (x0, x1) = xs().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let empty = ys().next().is_none() || !x0.is_finite();
    let (x0, x1) = if empty {
        (0.0, 1.0)
    } else if x1 <= x0 {
        (x0 - 1.0, x0 + 1.0)
    } else {
        (x0, x1)
    };
    let y_max = ys().fold(0.0f64, f64::max);
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 4.0);
    let y_top = (y_max / y_step).ceil().max(1.0) * y_step;
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_top * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11"><rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/><text x="{LEFT}" y="15" font-size="12" font-weight="bold">{}</text>"##,
        escape(title)
    );
    // Grid and y labels.
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let yy = py(y);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            escape(&fmt_num(y))
        );
        y += y_step;
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(y_unit)
    );
    // X labels: five, evenly spread (whole nines on the percentile axis).
    let ticks: Vec<f64> = match axis {
        XAxis::Nines => (0..=x1.floor() as i64).map(|n| n as f64).collect(),
        _ => (0..=4)
            .map(|i| x0 + (x1 - x0) * f64::from(i) / 4.0)
            .collect(),
    };
    for x in ticks {
        // The last label ends at the plot's edge instead of running past it.
        let anchor = if (px(x) - (W - RIGHT)).abs() < 1.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#999"/><text x="{0:.1}" y="{3}" text-anchor="{anchor}">{4}</text>"##,
            px(x),
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - BOTTOM + 16.0,
            escape(&x_label(axis, x))
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{0}" stroke="#999"/><line x1="{LEFT}" x2="{1}" y1="{0}" y2="{0}" stroke="#999"/>"##,
        H - BOTTOM,
        W - RIGHT
    );
    if empty {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            (LEFT + W - RIGHT) / 2.0,
            (TOP + H - BOTTOM) / 2.0
        );
    }
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut d = String::new();
        // Points drawn since the pen last went down: a lone point becomes a dot.
        let mut run = 0usize;
        let lone_dot = |d: &mut String, run: usize| {
            if run == 1 {
                d.push_str("l0.01,0 ");
            }
        };
        for &(x, y) in &line.points {
            match y {
                Some(y) if y.is_finite() => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if run > 0 { "L" } else { "M" },
                        px(x),
                        py(y)
                    );
                    run += 1;
                }
                _ => {
                    lone_dot(&mut d, run);
                    run = 0;
                }
            }
        }
        lone_dot(&mut d, run);
        if !d.is_empty() {
            let _ = write!(
                s,
                r#"<path class="line" d="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linecap="round"><title>{}</title></path>"#,
                d.trim_end(),
                escape(&line.name)
            );
        }
        // Legend, top right, one row per line.
        let ly = TOP + 4.0 + i as f64 * 13.0;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT - 10.0,
            ly,
            W - RIGHT - 14.0,
            ly + 4.0,
            escape(&line.name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_points(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split(r#"<path class="line" d=""#)
            .skip(1)
            .map(|rest| {
                rest[..rest.find('"').unwrap()]
                    .split(' ')
                    .filter(|p| !p.starts_with('l'))
                    .map(|p| {
                        let (x, y) = p[1..].split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn points_land_inside_the_plot_area_in_order() {
        let l = Line {
            name: "rate".into(),
            points: vec![(100.0, Some(0.0)), (110.0, Some(5.0)), (120.0, Some(10.0))],
        };
        let svg = lines("t", "req/s", XAxis::Time, &[l]);
        let pts = &path_points(&svg)[0];
        assert_eq!(pts.len(), 3);
        // x spans the plot area left to right; y goes up as the value grows; zero sits on the axis.
        assert_eq!(pts[0].0, LEFT);
        assert_eq!(pts[2].0, W - RIGHT);
        assert_eq!(pts[0].1, H - BOTTOM);
        assert!(pts[1].1 < pts[0].1 && pts[2].1 < pts[1].1);
        assert!(pts[2].1 >= TOP, "the top value fits: {pts:?}");
    }

    #[test]
    fn a_gap_breaks_the_line_and_no_data_is_said() {
        let l = Line {
            name: "x".into(),
            points: vec![(0.0, Some(1.0)), (1.0, None), (2.0, Some(1.0))],
        };
        let svg = lines("t", "", XAxis::Linear("s"), &[l]);
        let d = svg.split(r#" d=""#).nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2);
        // Each lone point is a dot (a tiny stroke with round caps), not an invisible move.
        assert_eq!(d.matches("l0.01,0").count(), 2, "{d}");
        let empty = lines("t", "", XAxis::Time, &[]);
        assert!(empty.contains("no data"));
        assert!(!empty.contains("<path"));
    }

    #[test]
    fn labels_are_escaped() {
        let l = Line {
            name: "<script>x</script>".into(),
            points: vec![(0.0, Some(1.0))],
        };
        let svg = lines("<b>", "<u>", XAxis::Nines, &[l]);
        assert!(!svg.contains("<script>") && !svg.contains("<b>") && !svg.contains("<u>"));
    }

    #[test]
    fn nines_axis_names_percentiles() {
        assert_eq!(x_label(XAxis::Nines, 0.0), "0%");
        assert_eq!(x_label(XAxis::Nines, 2.0), "99%");
        assert_eq!(x_label(XAxis::Nines, 3.0), "99.9%");
    }
}
