//! Render, find and time forms against a map of series.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

struct Mem(BTreeMap<String, Vec<(i64, f64)>>);

impl Source for Mem {
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn points(&self, name: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
        self.0[name]
            .iter()
            .copied()
            .filter(|(t, _)| (from..=until).contains(t))
            .collect()
    }
    fn step(&self) -> i64 {
        10
    }
}

fn mem() -> Mem {
    let mut m = BTreeMap::new();
    m.insert(
        "stats_counts.web-api.inbound.response_code.200".to_owned(),
        vec![(110, 5.0), (120, 7.0), (140, 1.0)],
    );
    m.insert(
        "stats_counts.web-api.inbound.response_code.500".to_owned(),
        vec![(110, 1.0), (120, 1.0)],
    );
    m.insert(
        "stats.timers.web-api.outbound.recipe-api.request-time.upper_90".to_owned(),
        vec![(130, 12.5)],
    );
    Mem(m)
}

fn render(target: &str) -> Vec<Series> {
    let src = mem();
    let ctx = Ctx::new(&src, 100, 150);
    eval(&ctx, &parse_target(target).unwrap()).unwrap()
}

#[test]
fn windows_follow_whisper_and_keep_nulls() {
    let s = &render("stats_counts.web-api.inbound.response_code.200")[0];
    assert_eq!(s.start, 110);
    assert_eq!(s.values, vec![Some(5.0), Some(7.0), None, Some(1.0), None]);
    let j = s.to_json();
    let mut text = String::new();
    s.write_json(&mut text);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        j,
        "written as the tree says"
    );
    assert_eq!(j["datapoints"][2], json!([null, 130]));
    assert_eq!(
        j["tags"]["name"],
        "stats_counts.web-api.inbound.response_code.200"
    );
}

#[test]
fn the_books_grafana_queries() {
    let r = render("aliasByNode(stats_counts.web-api.inbound.response_code.*, 4)");
    let names: Vec<&str> = r.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["200", "500"]);
    let r = render("stats.timers.web-api.outbound.*.request-time.upper_90");
    assert_eq!(r[0].values[2], Some(12.5));
    let r = render("sumSeries(stats_counts.web-api.inbound.response_code.{200,500})");
    assert_eq!(r[0].values[..2], [Some(6.0), Some(8.0)]);
    assert_eq!(
        r[0].name,
        "sumSeries(stats_counts.web-api.inbound.response_code.{200,500})"
    );
}

#[test]
fn functions() {
    assert_eq!(render("constantLine(100)")[0].values, vec![Some(100.0); 3]);
    assert_eq!(
        render("scale(stats_counts.web-api.inbound.response_code.500, 10)")[0].values[0],
        Some(10.0)
    );
    assert_eq!(
        render("transformNull(stats_counts.web-api.inbound.response_code.500)")[0].values[2],
        Some(0.0)
    );
    assert_eq!(
        render("keepLastValue(stats_counts.web-api.inbound.response_code.200)")[0].values[2],
        Some(7.0)
    );
    assert_eq!(
        render("nonNegativeDerivative(stats_counts.web-api.inbound.response_code.200)")[0].values
            [1],
        Some(2.0)
    );
    assert_eq!(
        render("nonNegativeDerivative(stats_counts.web-api.inbound.response_code.200)")[0].values
            [3],
        None,
        "a drop is not a rate"
    );
    assert_eq!(
        render("perSecond(stats_counts.web-api.inbound.response_code.200)")[0].values[1],
        Some(0.2)
    );
    assert_eq!(
        render("integral(stats_counts.web-api.inbound.response_code.200)")[0].values[1],
        Some(12.0)
    );
    let p = render("asPercent(stats_counts.web-api.inbound.response_code.*)");
    assert_eq!(
        p[1].values[0].map(|v| (v * 100.0).round() / 100.0),
        Some(16.67)
    );
    let d = render(
        "divideSeries(stats_counts.web-api.inbound.response_code.500, stats_counts.web-api.inbound.response_code.200)",
    );
    assert_eq!(d[0].values[0], Some(0.2));
    let s = render("summarize(stats_counts.web-api.inbound.response_code.200, \"1min\", \"sum\")");
    // Buckets aligned to the minute: 110 alone, then 120..150.
    assert_eq!(s[0].values, vec![Some(5.0), Some(8.0)]);
    assert_eq!(s[0].step, 60);
    let h = render("highestCurrent(stats_counts.web-api.inbound.response_code.*, 1)");
    assert!(h[0].name.ends_with("200"));
    assert_eq!(
        render("alias(stats_counts.web-api.inbound.response_code.200, 'ok')")[0].name,
        "ok"
    );
    let a = render(
        "aliasSub(stats_counts.web-api.inbound.response_code.200, 'response_code\\.(\\d+)', 'code \\1')",
    );
    assert_eq!(a[0].name, "stats_counts.web-api.inbound.code 200");
    assert_eq!(
        render("movingAverage(stats_counts.web-api.inbound.response_code.200, 2)")[0].values[1],
        Some(6.0)
    );
    assert_eq!(render("group(stats_counts.web-api.inbound.response_code.200, stats_counts.web-api.inbound.response_code.500)").len(), 2);
}

#[test]
fn max_data_points_consolidate() {
    let mut s = render("stats_counts.web-api.inbound.response_code.200").remove(0);
    s.limit_points(2);
    assert_eq!(s.values, vec![Some(6.0), Some(1.0)]);
    assert_eq!(s.step, 30);
}

#[test]
fn unknown_functions_are_named() {
    let src = mem();
    let ctx = Ctx::new(&src, 100, 150);
    let e = eval(&ctx, &parse_target("frobnicate(a.b)").unwrap()).unwrap_err();
    assert!(e.0.contains("frobnicate"), "{e}");
    assert!(parse_target("sum(a.b").is_err());
}

#[test]
fn times() {
    let now = 1_000_000;
    assert_eq!(parse_time("-10min", now), Ok(now - 600));
    assert_eq!(parse_time("-5minutes", now), Ok(now - 300));
    assert_eq!(parse_time("-30s", now), Ok(now - 30));
    assert_eq!(parse_time("now-1h", now), Ok(now - 3600));
    assert_eq!(parse_time("-1mon", now), Ok(now - 30 * 86400));
    assert_eq!(parse_time("1700000000", now), Ok(1_700_000_000));
    assert_eq!(parse_time("20261125", now), Ok(1_795_564_800));
    assert_eq!(
        parse_time("12:30_20261125", now),
        Ok(1_795_564_800 + 12 * 3600 + 1800)
    );
    assert!(
        parse_time("-5m", now).is_err(),
        "Grafana writes min; m is not Graphite's"
    );
    assert!(parse_time("yesterday-ish", now).is_err());
}

#[test]
fn globs_stay_within_one_element() {
    assert!(glob_path("a.*.c", "a.b.c"));
    assert!(!glob_path("a.*", "a.b.c"));
    assert!(glob_path("a.{b,x}.c", "a.b.c"));
    assert!(glob_path("a.[a-c].c", "a.b.c"));
    assert!(glob_path("a.b?.c", "a.bb.c"));
    assert!(!glob_path("a.[x-z].c", "a.b.c"));
}

#[test]
fn find_lists_branches_before_leaves() {
    let names = vec![
        "stats.a.x".to_owned(),
        "stats.b".to_owned(),
        "stats.a.y".to_owned(),
        "stats_counts.z".to_owned(),
    ];
    let n = find(&names, "stats.*");
    assert_eq!(
        n.iter()
            .map(|n| (n.text.as_str(), n.leaf))
            .collect::<Vec<_>>(),
        [("a", false), ("b", true)]
    );
    let t = find_treejson(&n);
    assert_eq!(
        t[0],
        json!({"text":"a","id":"stats.a","allowChildren":1,"expandable":1,"leaf":0,"context":{}})
    );
    let c = find_completer(&n);
    assert_eq!(c["metrics"][0]["path"], "stats.a.");
    assert_eq!(find(&names, "*").len(), 2);
}

#[test]
fn hostile_targets_are_refused_with_the_limit_named_never_allocated_or_panicked() {
    let src = mem();
    let now = 1_000_000_000;
    // A hundred years of one series: refused, not allocated.
    let from = parse_time("-100y", now).unwrap();
    let e = eval(&Ctx::new(&src, from, now), &parse_target("a.b").unwrap()).unwrap_err();
    assert!(e.0.contains("at most 100000"), "{e}");
    let e = eval(
        &Ctx::new(&src, now - 86_400, now),
        &parse_target("summarize(stats_counts.web-api.inbound.response_code.200,\"1s\")").unwrap(),
    );
    assert!(e.is_ok(), "a day summarized by second fits");
    let e = eval(
        &Ctx::new(&src, now - 20 * 86_400, now),
        &parse_target("summarize(stats_counts.web-api.inbound.response_code.200,\"1s\")").unwrap(),
    )
    .unwrap_err();
    assert!(e.0.contains("at most"), "{e}");
    assert!(
        eval(
            &Ctx::new(&src, 100, 150),
            &parse_target("summarize(a.b,\"0s\")").unwrap()
        )
        .is_err()
    );
    // Times past i64: an error, not an overflow; far but representable: refused by the window.
    let far = parse_time("-99999999999y", now).unwrap();
    assert!(eval(&Ctx::new(&src, far, now), &parse_target("a.b").unwrap()).is_err());
    assert!(
        eval(
            &Ctx::new(&src, i64::MIN, i64::MAX),
            &parse_target("a.b").unwrap()
        )
        .is_err()
    );
    assert!(parse_time("-1000000000000000000000d", now).is_err());
    // Nesting: refused past the depth, at any depth, without a stack overflow.
    let deep = format!("{}a.b{}", "sumSeries(".repeat(3000), ")".repeat(3000));
    let e = parse_target(&deep).unwrap_err();
    assert!(e.0.contains("deeper than 32"), "{e}");
    assert!(parse_target(&format!("{}a.b{}", "sumSeries(".repeat(30), ")".repeat(30))).is_ok());
    // Wide whitespace is whitespace, not a char-boundary panic.
    assert!(parse_target("sumSeries(\u{3000}a.b\u{3000})").is_ok());
    assert!(parse_target("\u{3000}").is_err());
    // A window of a million points in movingAverage runs in linear time.
    let s = eval(
        &Ctx::new(&src, 100, 150),
        &parse_target("movingAverage(stats_counts.web-api.inbound.response_code.200,1000000)")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        s[0].values,
        [
            Some(5.0),
            Some(6.0),
            Some(6.0),
            Some(13.0 / 3.0),
            Some(13.0 / 3.0)
        ]
    );
    let s = eval(
        &Ctx::new(&src, 100, 150),
        &parse_target("movingAverage(stats_counts.web-api.inbound.response_code.200,2)").unwrap(),
    )
    .unwrap();
    assert_eq!(
        s[0].values,
        [Some(5.0), Some(6.0), Some(7.0), Some(1.0), Some(1.0)]
    );
}

#[test]
fn every_function_listed_in_functions_evaluates() {
    // A call of each, with the arguments it takes, over two series that have data.
    const S: &str = "stats_counts.web-api.inbound.response_code.*";
    let call = |f: &str| -> String {
        match f {
            "alias" => format!("alias({S},\"x\")"),
            "aliasByNode" => format!("aliasByNode({S},4)"),
            "aliasSub" => format!("aliasSub({S},\"code\\.(.*)\",\"\\1\")"),
            "asPercent" => format!("asPercent({S})"),
            "consolidateBy" => format!("consolidateBy({S},\"max\")"),
            "constantLine" => "constantLine(3)".to_owned(),
            "divideSeries" => format!(
                "divideSeries(stats_counts.web-api.inbound.response_code.500,{})",
                "stats_counts.web-api.inbound.response_code.200"
            ),
            "highestAverage" | "highestCurrent" | "limit" => format!("{f}({S},1)"),
            "movingAverage" => format!("movingAverage({S},2)"),
            "offset" | "scale" | "transformNull" => format!("{f}({S},1)"),
            "scaleToSeconds" => format!("scaleToSeconds({S},1)"),
            "summarize" => format!("summarize({S},\"30s\",\"sum\")"),
            _ => format!("{f}({S})"),
        }
    };
    for f in FUNCTIONS {
        let target = call(f);
        let src = mem();
        let ctx = Ctx::new(&src, 100, 150);
        let expr = parse_target(&target).unwrap_or_else(|e| panic!("{target}: {}", e.0));
        let series = eval(&ctx, &expr).unwrap_or_else(|e| panic!("{target}: {}", e.0));
        assert!(!series.is_empty(), "{target}: no series");
    }
}
