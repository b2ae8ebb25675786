//! What spans sections: ports used twice, TLS pairs that cannot talk, the start order (no
//! cycles), and what `lab up` would trip on that the file alone does not say.

use super::common::*;

/// What `lab up` would trip on that the file alone does not say: a `command` program that is
/// neither a file in the service's folder nor on PATH (the process runtime runs it here; the
/// docker runtime runs the service's image instead). Run by `lab config validate`, `lab up` and
/// a `lab check` that starts the lab.
pub fn runnable(cfg: &LabConfig, runtime: crate::config::raw::RuntimeKind) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cfg.services.is_empty() {
        out.push(Diagnostic {
            span: None,
            message: "no services: the lab has nothing to run".into(),
            hint: Some(
                "add a [services.NAME] table with `builtin = \"recipe-api\"` or `command = [...]`; `lab hub` runs the [hub] alone"
                    .into(),
            ),
        });
        return out;
    }
    if runtime == crate::config::raw::RuntimeKind::Docker {
        return out;
    }
    for s in &cfg.services {
        let Run::Command { argv, cwd } = &s.run else {
            continue;
        };
        let program = &argv[0];
        let found = if program.contains('/') {
            cwd.join(program).is_file()
        } else {
            crate::programs::find(program).is_some()
        };
        if !found {
            out.push(
                Diagnostic::new(
                    s.command_span.clone().unwrap_or(s.name_span.clone()),
                    format!(
                        "`{}` runs {program:?}, which is not on PATH or in its folder",
                        s.name
                    ),
                )
                .hint(if program.contains('/') {
                    format!("paths are relative to {}", cwd.display())
                } else {
                    format!("install {program}, or write its path")
                }),
            );
        }
    }
    out
}

/// A consumer calling over `https` needs a target that serves TLS, and the other way round.
/// A consumer's `target_protocol` against what its `TARGET` serves: the transport (a TLS
/// producer is called over https, and only then) and the protocol itself.
pub(super) fn check_tls_pairs(raw: &RawLab, services: &[Service], errs: &mut Errors) {
    use crate::config::raw::{Protocol, TargetProtocol};
    for ((key, r), s) in raw.services.iter().zip(services) {
        let Some(Target::Service(t)) = &s.target else {
            continue;
        };
        let Some(target) = services.iter().find(|x| &x.name == t) else {
            continue;
        };
        let Some(tp) = &r.target_protocol else {
            // Unset: the consumer is taken to call REST over plain HTTP; say so where the
            // producer answers nothing of the kind.
            let rest =
                target.serves.contains(&Serve::Http) || target.serves.contains(&Serve::Https);
            if s.role == Some(Builtin::WebApi)
                && target.role == Some(Builtin::RecipeApi)
                && !target.serves.is_empty()
                && !rest
            {
                let names: Vec<&str> = target.serves.iter().map(|x| x.as_str()).collect();
                errs.push(
                    Diagnostic::new(
                        key.span(),
                        format!(
                            "`{}` calls `{t}` over http (no `target_protocol`), but `{t}` serves {}",
                            s.name,
                            names.join(", ")
                        ),
                    )
                    .hint(format!(
                        "add `target_protocol = \"{}\"` to [services.{}]",
                        names[0], s.name
                    )),
                );
            }
            continue;
        };
        let wanted = match tp.get_ref() {
            TargetProtocol::Http => Serve::Http,
            TargetProtocol::Https => Serve::Https,
            TargetProtocol::Graphql => Serve::Graphql,
            TargetProtocol::Grpc => Serve::Grpc,
        };
        let transport_ok = matches!(
            (tp.get_ref(), target.protocol),
            (TargetProtocol::Https, Protocol::Https)
                | (
                    TargetProtocol::Http | TargetProtocol::Graphql | TargetProtocol::Grpc,
                    Protocol::Http
                )
        );
        if transport_ok
            && target.role == Some(Builtin::RecipeApi)
            && !target.serves.is_empty()
            && !target.serves.contains(&wanted)
        {
            let names: Vec<&str> = target.serves.iter().map(|x| x.as_str()).collect();
            errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over {}, but `{t}` serves {}",
                        s.name,
                        wanted.as_str(),
                        names.join(", ")
                    ),
                )
                .hint(format!(
                    "point TARGET at a service that serves {0}, or add \"{0}\" to `serves` of [services.{t}] if it does",
                    wanted.as_str()
                )),
            );
        }
        match (tp.get_ref(), target.protocol) {
            (TargetProtocol::Https, Protocol::Http) => errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over https, but `{t}` serves plain http",
                        s.name
                    ),
                )
                .hint(format!(
                    "add `protocol = \"https\"` to [services.{t}], or call it over http"
                )),
            ),
            (
                TargetProtocol::Http | TargetProtocol::Graphql | TargetProtocol::Grpc,
                Protocol::Https,
            ) => errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over plain {}, but `{t}` serves https",
                        s.name,
                        tp.get_ref().as_str()
                    ),
                )
                .hint("use `target_protocol = \"https\"`; the lab never falls back to plain HTTP"),
            ),
            _ => {}
        }
    }
}

pub(super) fn check_duplicate_ports(
    services: &[Service],
    proxy: Option<&Proxy>,
    hub: Option<&Hub>,
    errs: &mut Errors,
) {
    let mut seen: HashMap<u16, &str> = HashMap::new();
    let mut seen_udp: HashMap<u16, &str> = HashMap::new();
    for p in hub.map_or(&[][..], |h| &h.ports[..]) {
        if p.port == 0 {
            continue;
        }
        let map = if p.what.udp() {
            &mut seen_udp
        } else {
            &mut seen
        };
        match map.get(&p.port) {
            Some(other) => errs.push(
                Diagnostic::new(
                    p.span.clone().unwrap_or_default(),
                    format!(
                        "port {} of the {} is also the port of the {other}",
                        p.port,
                        p.what.describe()
                    ),
                )
                .hint("give each hub listener its own port"),
            ),
            None => {
                map.insert(p.port, p.what.describe());
            }
        }
    }
    for f in proxy.map_or(&[][..], |p| &p.frontends[..]) {
        if f.port == 0 {
            continue;
        }
        match seen.get(&f.port) {
            Some(other) => errs.push(
                Diagnostic::new(
                    f.port_span.clone().unwrap_or_default(),
                    format!(
                        "port {} of frontend `{}` is also the port of frontend `{other}`",
                        f.port, f.name
                    ),
                )
                .hint("give each frontend its own port"),
            ),
            None => {
                seen.insert(f.port, &f.name);
            }
        }
    }
    for s in services {
        let Ports::Fixed(ports) = &s.ports else {
            continue;
        };
        for p in ports {
            match seen.get(p) {
                Some(other) => errs.push(
                    Diagnostic::new(
                        s.port_span.clone().unwrap_or(s.name_span.clone()),
                        format!("port {p} of `{}` is also a port of `{other}`", s.name),
                    )
                    .hint("give each service its own ports, or use port = 0 for free ones"),
                ),
                None => {
                    seen.insert(*p, &s.name);
                }
            }
        }
    }
}

/// A start order (file order where dependencies allow); reports every dependency cycle.
pub(super) fn start_order(raw: &RawLab, services: &[Service], errs: &mut Errors) -> Vec<String> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Edges with the span that declares them (a depends_on entry, or the TARGET value).
    let edges: Vec<Vec<(usize, Range<usize>)>> = raw
        .services
        .values()
        .zip(services)
        .map(|(r, s)| {
            let mut e: Vec<(usize, Range<usize>)> = Vec::new();
            for d in r.depends_on.iter().flatten() {
                if let Some(&j) = index.get(d.get_ref().as_str()) {
                    e.push((j, d.span()));
                }
            }
            if let Some(Target::Service(t)) = &s.target {
                let span = r
                    .env
                    .iter()
                    .flatten()
                    .find(|(k, _)| k.get_ref() == "TARGET")
                    .map(|(_, v)| v.span());
                if let (Some(&j), Some(span)) = (index.get(t.as_str()), span)
                    && !e.iter().any(|(k, _)| *k == j)
                {
                    e.push((j, span));
                }
            }
            e
        })
        .collect();

    let n = services.len();
    let mut placed = vec![false; n];
    let mut order = Vec::new();
    while order.len() < n {
        let next = (0..n).find(|&i| !placed[i] && edges[i].iter().all(|(j, _)| placed[*j]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(services[i].name.clone());
            }
            None => break,
        }
    }
    if order.len() < n {
        // Find each cycle among the unplaced services and report it once, at its closing edge.
        let mut reported = vec![false; n];
        for start in (0..n).filter(|&i| !placed[i]) {
            if reported[start] {
                continue;
            }
            if let Some((cycle, span)) = find_cycle(start, &edges) {
                let names: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
                for &i in &cycle {
                    reported[i] = true;
                }
                errs.push(
                    Diagnostic::new(
                        span,
                        format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
                    )
                    .hint("a service cannot wait for itself; remove one of these dependencies"),
                );
            }
        }
    }
    order
}

pub(super) fn find_cycle(
    start: usize,
    edges: &[Vec<(usize, Range<usize>)>],
) -> Option<(Vec<usize>, Range<usize>)> {
    fn dfs(
        v: usize,
        edges: &[Vec<(usize, Range<usize>)>],
        stack: &mut Vec<usize>,
        done: &mut Vec<bool>,
    ) -> Option<(Vec<usize>, Range<usize>)> {
        stack.push(v);
        for (w, span) in &edges[v] {
            if let Some(pos) = stack.iter().position(|x| x == w) {
                return Some((stack[pos..].to_vec(), span.clone()));
            }
            if !done[*w]
                && let Some(found) = dfs(*w, edges, stack, done)
            {
                return Some(found);
            }
        }
        stack.pop();
        done[v] = true;
        None
    }
    dfs(start, edges, &mut Vec::new(), &mut vec![false; edges.len()])
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::*;

    #[test]
    fn ports_used_twice_and_cycles_are_named() {
        let (l, _, m, _) = one(
            "[services.a]\nbuiltin = \"recipe-api\"\nport = 4000\n[services.b]\nbuiltin = \"recipe-api\"\nport = 4000\n",
            "is also a port of",
        );
        assert!(l == 3 || l == 6, "{m}");
        let (_, _, m, _) = one(
            "[services.a]\nbuiltin = \"recipe-api\"\ndepends_on = [\"b\"]\n[services.b]\nbuiltin = \"recipe-api\"\ndepends_on = [\"a\"]\n",
            "dependency cycle",
        );
        assert!(m.contains("a → b") || m.contains("b → a"), "{m}");
    }

    #[test]
    fn a_program_that_is_nowhere_is_refused_before_up() {
        let src = "[services.a]\ncommand = [\"no-such-program-here\"]\n";
        let cfg = crate::config::parse(src, Path::new("/x/lab.toml"), "lab.toml").unwrap();
        let d = runnable(&cfg, RuntimeKind::Process);
        assert!(d[0].message.contains("not on PATH"), "{d:?}");
        assert!(runnable(&cfg, RuntimeKind::Docker).is_empty());
    }
}
