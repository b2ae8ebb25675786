//! `[faults]`: the edges switch, the seed, and each `[faults.NAME]` scheduled fault — its kind,
//! its target, its times, and only the amounts its kind takes.

use lab_edges::{Direction, EdgeFault, EdgeKind, PartitionMode};

use super::common::*;
use crate::config::raw::{RawScheduledFault, RuntimeKind, Share};

/// What `fault = "…"` may say: the process faults, then the edge faults.
const KINDS: [&str; 14] = [
    "kill",
    "pause",
    "restart",
    "partition",
    "latency",
    "bandwidth",
    "timeout",
    "reset",
    "slow-close",
    "limit-data",
    "status",
    "fail-first",
    "slow-first-byte",
    "abort-after-headers",
];

pub(super) fn faults(
    raw: &RawLab,
    services: &[Service],
    proxy: Option<&Proxy>,
    errs: &mut Errors,
) -> Faults {
    let Some(f) = raw.faults.as_ref() else {
        return Faults::default();
    };
    let docker = raw
        .runtime
        .as_ref()
        .is_some_and(|r| *r.get_ref() == RuntimeKind::Docker);
    for key in &f.unknown {
        let k = key.get_ref();
        let hint = match did_you_mean(k, crate::config::raw::FAULTS_KEYS) {
            Some(best) => format!(
                "did you mean `{best}`? (expected `edges`, `seed`, or a [faults.NAME] table)"
            ),
            None => {
                "expected `edges`, `seed`, or a [faults.NAME] table of a scheduled fault".to_owned()
            }
        };
        errs.push(Diagnostic::new(key.span(), format!("unknown field `{k}`")).hint(hint));
    }
    let mut schedule = Vec::new();
    for (key, s) in &f.schedule {
        let name = key.get_ref();
        if !valid_name(name) {
            errs.push(
                Diagnostic::new(key.span(), format!("invalid fault name {name:?}"))
                    .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        if let Some(fault) = scheduled(name, s, services, proxy, docker, errs) {
            schedule.push(fault);
        }
    }
    let wants_edges = schedule.iter().find(|s| {
        matches!(s.kind, ScheduledKind::Edge(_))
            || (matches!(s.kind, ScheduledKind::Partition(_)) && !docker)
    });
    let edges = match (&f.edges, wants_edges) {
        (Some(e), Some(s)) if !*e.get_ref() => {
            errs.push(
                Diagnostic::new(
                    e.span(),
                    format!(
                        "[faults.{}] is a fault on the edges, and `edges = false` turns them off",
                        s.name
                    ),
                )
                .hint("remove `edges = false` (a scheduled edge fault turns them on)"),
            );
            false
        }
        (_, Some(_)) => true,
        (Some(e), None) => *e.get_ref(),
        (None, None) => false,
    };
    Faults {
        edges,
        seed: f.seed.as_ref().map_or(0, |s| *s.get_ref()),
        schedule,
    }
}

/// One `[faults.NAME]`, or `None` (with the errors pushed).
fn scheduled(
    name: &str,
    s: &RawScheduledFault,
    services: &[Service],
    proxy: Option<&Proxy>,
    docker: bool,
    errs: &mut Errors,
) -> Option<ScheduledFault> {
    let before = errs.0.len();
    let kind_name = s.fault.get_ref().as_str();
    if !KINDS.contains(&kind_name) {
        let hint = match did_you_mean(kind_name, KINDS) {
            Some(k) => format!("did you mean `{k}`? (one of {})", KINDS.join(", ")),
            None => format!("one of {}", KINDS.join(", ")),
        };
        errs.push(
            Diagnostic::new(s.fault.span(), format!("unknown fault {kind_name:?}")).hint(hint),
        );
        return None;
    }
    let service = target(s, services, errs);
    let after = errs.duration(&s.after, Duration::ZERO);
    let lasting = s
        .lasting
        .as_ref()
        .map(|_| errs.duration(&s.lasting, Duration::ZERO));
    if let (Some(l), Some(d)) = (&s.lasting, lasting)
        && d.is_zero()
    {
        errs.push(
            Diagnostic::new(l.span(), "a fault that lasts 0 s does nothing")
                .hint("write how long it lasts, like \"30s\", or leave `for` out (until `lab fault clear`)"),
        );
    }
    // Which amounts this kind takes; any other given is a mistake.
    let takes: &[&str] = match kind_name {
        "latency" => &["delay", "jitter"],
        "slow-close" | "slow-first-byte" => &["delay"],
        "bandwidth" => &["kb_per_s"],
        "limit-data" => &["bytes"],
        "status" => &["code"],
        "fail-first" => &["count", "code", "close"],
        "partition" => &["mode"],
        _ => &[],
    };
    let edge = !matches!(kind_name, "kill" | "pause" | "restart" | "partition");
    let given: [(&str, Option<Range<usize>>); 9] = [
        ("close", s.close.as_ref().map(Spanned::span)),
        ("delay", s.delay.as_ref().map(Spanned::span)),
        ("jitter", s.jitter.as_ref().map(Spanned::span)),
        ("kb_per_s", s.kb_per_s.as_ref().map(Spanned::span)),
        ("bytes", s.bytes.as_ref().map(Spanned::span)),
        ("code", s.code.as_ref().map(Spanned::span)),
        ("count", s.count.as_ref().map(Spanned::span)),
        ("mode", s.mode.as_ref().map(Spanned::span)),
        ("probability", s.probability.as_ref().map(Spanned::span)),
    ];
    for (key, span) in given {
        let Some(span) = span else { continue };
        if key == "probability" && edge || takes.contains(&key) {
            continue;
        }
        let what = match KINDS_TAKING.iter().find(|(k, _)| *k == key) {
            Some((_, kinds)) => format!("`{key}` is for {kinds}"),
            None => format!("`{key}` is not for {kind_name}"),
        };
        errs.push(
            Diagnostic::new(span, format!("{what}, not `{kind_name}`")).hint(format!(
                "remove it; `{kind_name}` takes {}",
                if takes.is_empty() {
                    "no amount".to_owned()
                } else {
                    takes
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        );
    }
    if matches!(kind_name, "kill" | "restart")
        && let Some(l) = &s.lasting
    {
        errs.push(
            Diagnostic::new(
                l.span(),
                format!("`{kind_name}` ends as it happens: it cannot last"),
            )
            .hint("remove `for`, or use `pause` or `partition` for a fault that lasts"),
        );
    }
    let required = |key: &str, present: bool, example: &str, errs: &mut Errors| {
        if !present {
            errs.push(
                Diagnostic::new(s.fault.span(), format!("`{kind_name}` needs `{key}`"))
                    .hint(format!("add `{key} = {example}` to [faults.{name}]")),
            );
        }
    };
    let ms = |d: Duration| d.as_millis() as u64;
    let delay = errs.duration(&s.delay, Duration::ZERO);
    let direction = direction(s, kind_name, errs);
    let probability = probability(s, errs);
    let kind = match kind_name {
        "kill" => ScheduledKind::Kill,
        "pause" => ScheduledKind::Pause,
        "restart" => ScheduledKind::Restart,
        "partition" => ScheduledKind::Partition(partition_mode(s, docker, errs)),
        _ => {
            let amount = |v: Option<&Spanned<u64>>| v.map_or(0, |v| *v.get_ref());
            let k = match kind_name {
                "latency" => {
                    required("delay", s.delay.is_some(), "\"200ms\"", errs);
                    EdgeKind::Latency {
                        ms: ms(delay),
                        jitter_ms: ms(errs.duration(&s.jitter, Duration::ZERO)),
                    }
                }
                "bandwidth" => {
                    required("kb_per_s", s.kb_per_s.is_some(), "100", errs);
                    EdgeKind::Bandwidth {
                        kb_per_s: amount(s.kb_per_s.as_ref()).max(1),
                    }
                }
                "timeout" => EdgeKind::Timeout,
                "reset" => EdgeKind::Reset,
                "slow-close" => {
                    required("delay", s.delay.is_some(), "\"2s\"", errs);
                    EdgeKind::SlowClose { ms: ms(delay) }
                }
                "limit-data" => {
                    required("bytes", s.bytes.is_some(), "1024", errs);
                    EdgeKind::LimitData {
                        bytes: amount(s.bytes.as_ref()),
                    }
                }
                "status" => {
                    required("code", s.code.is_some(), "503", errs);
                    EdgeKind::Status {
                        code: code(s, errs),
                    }
                }
                "fail-first" => {
                    required("count", s.count.is_some(), "3", errs);
                    let close = s.close.as_ref().is_some_and(|c| *c.get_ref());
                    if let (true, Some(c)) = (close, &s.code) {
                        errs.push(
                            Diagnostic::new(
                                c.span(),
                                "`close = true` answers nothing, so it takes no `code`",
                            )
                            .hint("remove `code`, or `close`"),
                        );
                    }
                    EdgeKind::FailFirst {
                        n: amount(s.count.as_ref()),
                        code: if close {
                            lab_edges::fault::CLOSE
                        } else {
                            code(s, errs)
                        },
                    }
                }
                "slow-first-byte" => {
                    required("delay", s.delay.is_some(), "\"500ms\"", errs);
                    EdgeKind::SlowFirstByte { ms: ms(delay) }
                }
                _ => EdgeKind::AbortAfterHeaders,
            };
            ScheduledKind::Edge(EdgeFault {
                kind: k,
                direction,
                probability,
            })
        }
    };
    if let Some(svc) = service {
        edge_reach(name, s, &kind, svc, services, proxy, docker, errs);
    }
    (errs.0.len() == before).then(|| ScheduledFault {
        name: name.to_owned(),
        target: s.target.get_ref().clone(),
        kind,
        after,
        lasting,
    })
}

/// Which kinds take each amount, for the errors.
const KINDS_TAKING: [(&str, &str); 9] = [
    ("close", "fail-first"),
    ("delay", "latency, slow-close and slow-first-byte"),
    ("jitter", "latency"),
    ("kb_per_s", "bandwidth"),
    ("bytes", "limit-data"),
    ("code", "status and fail-first"),
    ("count", "fail-first"),
    ("mode", "partition"),
    ("probability", "the edge faults"),
];

/// The service `target` names (checked), if it names one.
fn target<'s>(
    s: &RawScheduledFault,
    services: &'s [Service],
    errs: &mut Errors,
) -> Option<&'s Service> {
    let t = s.target.get_ref();
    let (name, index) = match t.split_once('#') {
        Some((n, i)) => (n, Some(i)),
        None => (t.as_str(), None),
    };
    let Some(svc) = services.iter().find(|x| x.name == name) else {
        let names: Vec<&str> = services.iter().map(|x| x.name.as_str()).collect();
        let hint = match did_you_mean(name, names.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("the lab's services: {}", names.join(", ")),
        };
        errs.push(Diagnostic::new(s.target.span(), format!("no service {name:?}")).hint(hint));
        return None;
    };
    if let Some(i) = index {
        let ok = i
            .parse::<usize>()
            .is_ok_and(|n| (1..=svc.replicas).contains(&n));
        if !ok {
            errs.push(
                Diagnostic::new(s.target.span(), format!("{name} has no instance #{i}")).hint(
                    format!(
                        "{name} runs {} instance{}: #1{}",
                        svc.replicas,
                        if svc.replicas == 1 { "" } else { "s" },
                        if svc.replicas > 1 {
                            format!(" to #{}", svc.replicas)
                        } else {
                            String::new()
                        }
                    ),
                ),
            );
            return None;
        }
    }
    Some(svc)
}

/// An edge fault needs an edge into its target, HTTP faults an HTTP target, and edges the
/// process runtime.
#[allow(clippy::too_many_arguments)]
fn edge_reach(
    name: &str,
    s: &RawScheduledFault,
    kind: &ScheduledKind,
    svc: &Service,
    services: &[Service],
    proxy: Option<&Proxy>,
    docker: bool,
    errs: &mut Errors,
) {
    let edge_kind = match kind {
        ScheduledKind::Edge(e) => Some(&e.kind),
        ScheduledKind::Partition(_) if !docker => None,
        _ => return,
    };
    if docker {
        errs.push(
            Diagnostic::new(
                s.fault.span(),
                format!(
                    "[faults.{name}] is a fault on the edges, which run on the process runtime only"
                ),
            )
            .hint("on docker: kill, pause, restart or partition"),
        );
        return;
    }
    if !consumed(services, proxy, &svc.name) {
        errs.push(
            Diagnostic::new(s.target.span(), format!("nothing reaches {} through an edge", svc.name))
                .hint("edges sit on what a consumer is given: a service's TARGET or a proxy frontend's servers"),
        );
    }
    if let Some(k) = edge_kind
        && k.is_http()
        && svc.protocol != crate::config::raw::Protocol::Http
    {
        errs.push(
            Diagnostic::new(
                s.fault.span(),
                format!(
                    "`{}` needs a plain HTTP/1.1 service, and {} is not one",
                    k.name(),
                    svc.name
                ),
            )
            .hint("latency, bandwidth, timeout, reset, slow-close and limit-data work on any edge"),
        );
    }
}

fn direction(s: &RawScheduledFault, kind: &str, errs: &mut Errors) -> Direction {
    let Some(d) = &s.direction else {
        return Direction::Downstream;
    };
    if !matches!(
        kind,
        "latency" | "bandwidth" | "timeout" | "slow-close" | "limit-data"
    ) {
        errs.push(
            Diagnostic::new(d.span(), format!("`{kind}` has no direction"))
                .hint("`direction` is for latency, bandwidth, timeout, slow-close and limit-data"),
        );
    }
    match d.get_ref().as_str() {
        "upstream" => Direction::Upstream,
        "downstream" => Direction::Downstream,
        other => {
            errs.push(
                Diagnostic::new(d.span(), format!("unknown direction {other:?}"))
                    .hint("`upstream` (requests) or `downstream` (responses)"),
            );
            Direction::Downstream
        }
    }
}

fn probability(s: &RawScheduledFault, errs: &mut Errors) -> f64 {
    let Some(p) = &s.probability else { return 1.0 };
    let v = match p.get_ref() {
        Share::Number(v) => Some(*v),
        Share::Text(t) => t
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map(|n| n / 100.0),
    };
    match v {
        Some(v) if (0.0..=1.0).contains(&v) => v,
        _ => {
            errs.push(
                Diagnostic::new(p.span(), "a probability is a share from 0 to 1")
                    .hint("write it like 0.2 or \"20%\""),
            );
            1.0
        }
    }
}

fn code(s: &RawScheduledFault, errs: &mut Errors) -> u16 {
    let Some(c) = &s.code else { return 503 };
    let code = *c.get_ref();
    if !(100..=599).contains(&code) {
        errs.push(
            Diagnostic::new(c.span(), format!("{code} is not an HTTP status code"))
                .hint("write a code from 100 to 599, like 503"),
        );
    }
    code
}

fn partition_mode(s: &RawScheduledFault, docker: bool, errs: &mut Errors) -> PartitionMode {
    let Some(m) = &s.mode else {
        return PartitionMode::Refuse;
    };
    if docker {
        errs.push(
            Diagnostic::new(m.span(), "on the docker runtime a partition disconnects the container from the lab's network")
                .hint("remove `mode`: it is for the process runtime's edges"),
        );
    }
    match m.get_ref().as_str() {
        "refuse" => PartitionMode::Refuse,
        "drop" => PartitionMode::Drop,
        other => {
            errs.push(
                Diagnostic::new(m.span(), format!("unknown partition mode {other:?}"))
                    .hint("`refuse` (connections refused) or `drop` (black-holed)"),
            );
            PartitionMode::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{diagnostics_of, one};

    const CHAIN: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[services.web-api]\nbuiltin = \"web-api\"\nenv = { TARGET = \"recipe-api\" }\n";

    fn lab(faults: &str) -> String {
        format!("{CHAIN}{faults}")
    }

    #[test]
    fn a_schedule_reads_into_its_faults_and_turns_the_edges_on() {
        let src = lab(
            "[faults]\nseed = 3\n[faults.slow]\nfault = \"latency\"\ntarget = \"recipe-api\"\ndelay = \"200ms\"\njitter = \"20ms\"\nafter = \"10s\"\nfor = \"30s\"\nprobability = \"25%\"\ndirection = \"upstream\"\n[faults.bye]\nfault = \"kill\"\ntarget = \"web-api#1\"\nafter = \"1m\"\n",
        );
        let cfg = crate::config::parse(&src, std::path::Path::new("/x/lab.toml"), "lab.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        let f = &cfg.faults;
        assert!(f.edges, "an edge fault in the schedule turns the edges on");
        assert_eq!(f.seed, 3);
        assert_eq!(f.schedule.len(), 2);
        let slow = &f.schedule[0];
        assert_eq!(
            (slow.name.as_str(), slow.target.as_str()),
            ("slow", "recipe-api")
        );
        assert_eq!(slow.after, std::time::Duration::from_secs(10));
        assert_eq!(slow.lasting, Some(std::time::Duration::from_secs(30)));
        let crate::config::model::ScheduledKind::Edge(e) = &slow.kind else {
            panic!("{slow:?}")
        };
        assert_eq!(e.describe(), "latency:200ms±20ms upstream 25%");
        assert_eq!(
            f.schedule[1].kind,
            crate::config::model::ScheduledKind::Kill
        );
    }

    #[test]
    fn each_mistake_in_a_schedule_is_named_where_it_is() {
        let (l, c, m, h) = one(
            &lab("[faults.x]\nfault = \"latncy\"\ntarget = \"recipe-api\"\n"),
            "unknown fault",
        );
        assert_eq!((l, c), (7, 9), "{m}");
        assert!(h.unwrap().contains("did you mean `latency`?"));
        let (l, _, m, h) = one(
            &lab("[faults.x]\nfault = \"pause\"\ntarget = \"recipe-apy\"\n"),
            "no service",
        );
        assert_eq!(l, 8, "{m}");
        assert!(h.unwrap().contains("recipe-api"));
        let (_, _, m, h) = one(
            &lab("[faults.x]\nfault = \"pause\"\ntarget = \"web-api#2\"\n"),
            "no instance",
        );
        assert!(h.unwrap().contains("1 instance"), "{m}");
        let (l, _, m, h) = one(
            &lab("[faults.x]\nfault = \"kill\"\ntarget = \"web-api\"\nfor = \"5s\"\n"),
            "cannot last",
        );
        assert_eq!(l, 9, "{m}");
        assert!(h.unwrap().contains("pause"));
        let (_, _, m, h) = one(
            &lab("[faults.x]\nfault = \"pause\"\ntarget = \"web-api\"\ndelay = \"5s\"\n"),
            "`delay` is for",
        );
        assert!(h.unwrap().contains("no amount"), "{m}");
        let (_, _, m, _) = one(
            &lab("[faults.x]\nfault = \"status\"\ntarget = \"recipe-api\"\n"),
            "needs `code`",
        );
        assert!(m.contains("`status`"), "{m}");
        let (_, _, m, h) = one(
            &lab(
                "[faults.x]\nfault = \"status\"\ntarget = \"recipe-api\"\ncode = 503\nprobability = 1.5\n",
            ),
            "probability",
        );
        assert!(h.unwrap().contains("20%"), "{m}");
        let (_, _, _, h) = one(
            &lab("[faults.x]\nfault = \"latency\"\ntarget = \"recipe-api\"\ndelay = \"soon\"\n"),
            "invalid duration",
        );
        assert!(h.unwrap().contains("250ms"));
        let (_, _, m, _) = one(
            &lab("[faults.x]\nfault = \"reset\"\ntarget = \"web-api\"\n"),
            "nothing reaches",
        );
        assert!(m.contains("web-api"), "{m}");
        let (_, _, m, h) = one(
            &lab(
                "[faults]\nedges = false\n[faults.x]\nfault = \"reset\"\ntarget = \"recipe-api\"\n",
            ),
            "edges = false",
        );
        assert!(h.unwrap().contains("remove"), "{m}");
        let (_, _, m, _) = one(
            &lab(
                "[faults.x]\nfault = \"fail-first\"\ntarget = \"recipe-api\"\ncount = 2\nclose = true\ncode = 503\n",
            ),
            "takes no `code`",
        );
        assert!(m.contains("close"), "{m}");
        let (l, c, _, h) = one(&lab("[faults]\nsed = 4\n"), "unknown field `sed`");
        assert_eq!((l, c), (7, 1));
        assert!(h.unwrap().contains("did you mean `seed`?"));
        let d = diagnostics_of(&format!(
            "runtime = \"docker\"\n{}",
            lab(
                "[faults.x]\nfault = \"latency\"\ntarget = \"recipe-api\"\ndelay = \"1s\"\n[faults.y]\nfault = \"partition\"\ntarget = \"recipe-api\"\nmode = \"drop\"\n"
            )
        ));
        assert!(
            d.iter().any(|d| d.2.contains("process runtime only")),
            "{d:#?}"
        );
        assert!(
            d.iter().any(|d| d.2.contains("disconnects the container")),
            "{d:#?}"
        );
    }
}
