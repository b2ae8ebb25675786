//! `GET /graphs`: the metrics page. Per service (every service whose StatsD series the hub
//! holds): request and 5xx rates, the error share, and the slowest route's latency
//! percentiles over the last N minutes; then any series picked from a searchable list. Charts
//! are SVG drawn here (`lab_net::chart`) from the same Graphite engine as `/render`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::html::{escape, page, server_error};
use crate::http::params::{param, params};
use crate::ingest::statsd::Namespace;
use crate::query::graphite::Series;
use crate::shared::Shared;
use lab_net::chart::{self, Line, XAxis};

/// Points per line (the window is consolidated to this many).
const MAX_POINTS: usize = 240;
/// Series names listed for a search.
const LISTED: usize = 200;

/// Services with request counters, by the kit's naming (`<svc>.inbound.response_code.<status>`).
pub fn services(names: &[String], ns: Namespace) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let key = ns.rate_key(n)?;
            let (svc, rest) = key.split_once(".inbound.response_code.")?;
            (!rest.contains('.') && !svc.contains('.')).then(|| svc.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn to_line(name: &str, s: &Series) -> Line {
    Line {
        name: name.to_owned(),
        points: s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| ((s.start + i as i64 * s.step) as f64, *v))
            .collect(),
    }
}

fn total(s: &Series) -> f64 {
    s.values.iter().flatten().sum::<f64>() * s.step as f64
}

struct Wanted {
    minutes: i64,
    search: String,
    picked: Vec<String>,
}

/// The (label, target) lines of one chart.
type ChartTargets = Vec<(String, String)>;

/// What one service's charts need: its rates chart and its latency chart.
fn service_targets(svc: &str, ns: Namespace, pcts: &[f64]) -> [ChartTargets; 2] {
    let codes = |glob: &str| {
        format!(
            "sumSeries({})",
            ns.counter_rate(&format!("{svc}.inbound.response_code.{glob}"))
        )
    };
    let timer =
        |field: &str| format!("maxSeries(stats.timers.{svc}.inbound.response_time.*.{field})");
    let mut latency = vec![("median".to_owned(), timer("median"))];
    for p in pcts.iter().filter(|p| **p > 0.0) {
        // As the flush names it (etsy's `upper_90`, `upper_99_5`).
        let clean = crate::ingest::statsd::format_number(*p).replacen('.', "_", 1);
        latency.push((format!("p{p}"), timer(&format!("upper_{clean}"))));
    }
    latency.push(("max".to_owned(), timer("upper")));
    [
        vec![
            ("requests/s".to_owned(), codes("*")),
            ("5xx/s".to_owned(), codes("5*")),
        ],
        latency,
    ]
}

pub async fn graphs(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let want = Wanted {
        minutes: param(&p, "minutes")
            .and_then(|m| m.parse().ok())
            .filter(|m| (1..=7 * 24 * 60).contains(m))
            .unwrap_or(15),
        search: param(&p, "q").unwrap_or("").to_owned(),
        picked: p
            .iter()
            .filter(|(k, v)| k == "series" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .take(8)
            .collect(),
    };
    let shared = s.clone();
    let drawn = tokio::task::spawn_blocking(move || draw(&shared, &want)).await;
    match drawn {
        Ok(Ok(body)) => page("metrics", "Metrics", &body, "").into_response(),
        Ok(Err(e)) => server_error(e),
        Err(e) => server_error(e),
    }
}

fn draw(s: &Shared, want: &Wanted) -> Result<String, crate::query::graphite::RenderError> {
    let until = crate::clock::now_s();
    let from = until - want.minutes * 60;
    let ns = s.config.namespace;
    let names = s.store.series_names();
    let svcs = services(&names, ns);
    let charts: Vec<(String, [ChartTargets; 2])> = svcs
        .iter()
        .map(|svc| {
            (
                svc.clone(),
                service_targets(svc, ns, &s.config.percent_thresholds),
            )
        })
        .collect();
    // Every target of the page, read at once on the store's read connections; whole
    // resolution, for totals (a consolidated point averages only the points present).
    let targets: Vec<&str> = charts
        .iter()
        .flat_map(|(_, t)| t.iter().flatten().map(|(_, t)| t.as_str()))
        .chain(want.picked.iter().map(String::as_str))
        .collect();
    let rendered = in_parallel(&targets, |t| {
        crate::query::source::render_targets(&s.store, &[(*t).to_owned()], from, until, None)
    });
    let render_full = |target: &str| {
        let i = targets.iter().position(|t| *t == target).expect("rendered");
        rendered[i].clone()
    };
    let thin = |mut series: Vec<Series>| {
        series.iter_mut().for_each(|x| x.limit_points(MAX_POINTS));
        series
    };
    let render = |target: &str| render_full(target).map(thin);
    let mut body = String::new();
    let picked_q: String = want
        .picked
        .iter()
        .map(|n| format!("&amp;series={}", escape(&url(n))))
        .collect();
    // The picked series ride along in both forms, so searching or changing the window keeps them.
    let hidden: String = want
        .picked
        .iter()
        .map(|n| {
            format!(
                r#"<input type="hidden" name="series" value="{}">"#,
                escape(n)
            )
        })
        .collect();
    let _ = write!(
        body,
        r#"<h1>Metrics</h1><form method="get" action="/graphs">last <input name="minutes" size="5" value="{}"> minutes {} <button>show</button></form>"#,
        want.minutes, hidden
    );
    if svcs.is_empty() {
        body.push_str("<p>No service has sent request metrics yet (StatsD `SERVICE.inbound.response_code.STATUS`).</p>");
    }
    for (svc, [rates, latency]) in &charts {
        let mut lines = Vec::new();
        let mut sums = Vec::new();
        for (label, t) in rates {
            let series = render_full(t)?;
            sums.push(series.first().map_or(0.0, total));
            lines.extend(thin(series).first().map(|x| to_line(label, x)));
        }
        let share = if sums[0] > 0.0 {
            format!("{:.2}%", sums[1] / sums[0] * 100.0)
        } else {
            "no requests".into()
        };
        let mut lat_lines = Vec::new();
        for (label, t) in latency {
            lat_lines.extend(render(t)?.first().map(|x| to_line(label, x)));
        }
        let _ = write!(
            body,
            r#"<section class="service" data-service="{}"><h2>{}</h2><p>{} request(s), {} answered 5xx ({share}) in the last {} min.</p><div class="charts">{}{}</div></section>"#,
            escape(svc),
            escape(svc),
            sums[0].round(),
            sums[1].round(),
            want.minutes,
            chart::lines("request and 5xx rate", "per second", XAxis::Time, &lines),
            chart::lines("latency, slowest route", "ms", XAxis::Time, &lat_lines),
        );
    }
    // Picked series, one chart each, then the searchable list.
    if !want.picked.is_empty() {
        body.push_str("<h2>Picked series</h2><div class=\"charts\">");
        for name in &want.picked {
            let series = render(name)?;
            let lines: Vec<Line> = series.iter().map(|x| to_line(&x.name, x)).collect();
            body.push_str(&chart::lines(name, "", XAxis::Time, &lines));
        }
        body.push_str("</div>");
    }
    let needle = want.search.to_lowercase();
    let matching: Vec<&String> = names
        .iter()
        .filter(|n| n.to_lowercase().contains(&needle))
        .collect();
    let _ = write!(
        body,
        r#"<h2>Series</h2><form method="get" action="/graphs"><input type="hidden" name="minutes" value="{}">{}<input type="text" name="q" value="{}" placeholder="web-api.inbound"> <button>search</button></form><p>{} of {} series match{}.</p><ul id="series" class="scroll">"#,
        want.minutes,
        hidden,
        escape(&want.search),
        matching.len(),
        names.len(),
        if matching.len() > LISTED {
            format!("; the first {LISTED} listed")
        } else {
            String::new()
        }
    );
    for n in matching.into_iter().take(LISTED) {
        let _ = write!(
            body,
            r#"<li><a href="/graphs?minutes={}{picked_q}&amp;series={}">{}</a></li>"#,
            want.minutes,
            escape(&url(n)),
            escape(n)
        );
    }
    body.push_str("</ul>");
    Ok(body)
}

/// `f` of every item, on as many threads as the store has readers; results in order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..crate::store::READERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a render thread"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_come_from_status_counters_only() {
        let names: Vec<String> = [
            "stats.web-api.inbound.response_code.200",
            "stats.web-api.inbound.response_code.GET_root.200",
            "stats_counts.recipe-api.inbound.response_code.200",
            "stats.recipe-api.inbound.response_code.500",
            "stats.timers.other.inbound.response_time.GET_root.mean",
            "stats.gauges.web-api.server.heap",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            services(&names, Namespace::Legacy),
            ["recipe-api", "web-api"]
        );
        let modern: Vec<String> = ["stats.counters.web-api.inbound.response_code.200.rate"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(services(&modern, Namespace::Modern), ["web-api"]);
        assert!(services(&modern, Namespace::Legacy).is_empty());
    }

    #[test]
    fn targets_follow_the_namespace_and_thresholds() {
        let [rates, latency] = service_targets("web-api", Namespace::Legacy, &[90.0, 99.5]);
        assert_eq!(
            rates[0].1,
            "sumSeries(stats.web-api.inbound.response_code.*)"
        );
        assert_eq!(
            rates[1].1,
            "sumSeries(stats.web-api.inbound.response_code.5*)"
        );
        let labels: Vec<&str> = latency.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(labels, ["median", "p90", "p99.5", "max"]);
        assert_eq!(
            latency[2].1,
            "maxSeries(stats.timers.web-api.inbound.response_time.*.upper_99_5)"
        );
        let [rates, _] = service_targets("web-api", Namespace::Modern, &[]);
        assert_eq!(
            rates[0].1,
            "sumSeries(stats.counters.web-api.inbound.response_code.*.rate)"
        );
    }
}
