//! `[services.NAME]`: how it runs, its ports, environment, target, role and what it serves,
//! health, restart and the process model.

use super::common::*;

/// Variables the lab sets itself; setting them in `env` is an error with a hint.
const RESERVED_ENV: &[(&str, &str)] = &[
    ("HOST", "set `host = \"...\"` on the service"),
    ("PORT", "set `port = ...` on the service"),
    (
        "LAB_ENV",
        "set `environment = \"...\"` on the service or the lab",
    ),
    (
        "NODE_ENV",
        "set `environment = \"...\"` on the service or the lab",
    ),
    (
        "TARGET_PROTOCOL",
        "set `target_protocol = \"...\"` on the service",
    ),
    ("LAB_THREADS", "set `threads = N` on the service"),
    ("LAB_OFFLOAD", "set `offload = true` on the service"),
    ("LAB_WORKERS", "set `workers = N` on the service"),
    ("LAB_RESPAWN", "set `respawn = true` on the service"),
    ("LAB_WORKER", "the cluster master sets it on its workers"),
    (
        "TLS_CERT",
        "set `protocol = \"https\"` on the service: the lab issues its certificate",
    ),
    (
        "TLS_KEY",
        "set `protocol = \"https\"` on the service: the lab issues its certificate",
    ),
];

pub(super) fn service(
    key: &Spanned<String>,
    svc: &RawService,
    names: &[&str],
    lab_env: &str,
    dir: &Path,
    errs: &mut Errors,
) -> Service {
    let name = key.get_ref().clone();
    let run = match (&svc.builtin, &svc.command) {
        (Some(b), None) => Run::Builtin(*b.get_ref()),
        (None, Some(c)) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
            errs.push(
                Diagnostic::new(c.span(), "`command` is empty")
                    .hint("name the program first, e.g. [\"node\", \"server.js\"]"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
        (None, Some(c)) if c.get_ref().iter().any(|a| a.contains('\0')) => {
            errs.push(
                Diagnostic::new(c.span(), "`command` holds a NUL character")
                    .hint("no program argument can carry one; remove it"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
        (None, Some(c)) => {
            let cwd = match &svc.cwd {
                None => dir.to_path_buf(),
                Some(cwd) => {
                    let p = dir.join(cwd.get_ref());
                    if !p.is_dir() {
                        errs.push(
                            Diagnostic::new(
                                cwd.span(),
                                format!("`cwd` {:?} is not a folder", cwd.get_ref()),
                            )
                            .hint(format!("paths are relative to {}", dir.display())),
                        );
                    }
                    p
                }
            };
            Run::Command {
                argv: c.get_ref().clone(),
                cwd,
            }
        }
        (Some(b), Some(_)) => {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("service `{name}` has both `builtin` and `command`"),
                )
                .hint(
                    "keep one: `builtin` runs the lab's own service, `command` runs your program",
                ),
            );
            Run::Builtin(*b.get_ref())
        }
        (None, None) => {
            errs.push(
                Diagnostic::new(key.span(), format!("service `{name}` has neither `builtin` nor `command`"))
                    .hint("add `builtin = \"recipe-api\"` (or \"web-api\"), or `command = [\"node\", \"server.js\"]`"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
    };
    if let (Some(cwd), Run::Builtin(_)) = (&svc.cwd, &run) {
        errs.push(
            Diagnostic::new(cwd.span(), "`cwd` only applies to `command` services")
                .hint("remove it"),
        );
    }
    for (key, value) in [("image", &svc.image), ("build", &svc.build)] {
        if let (Some(v), Run::Builtin(b)) = (value, &run) {
            errs.push(
                Diagnostic::new(
                    v.span(),
                    format!("`{key}` only applies to `command` services"),
                )
                .hint(format!(
                    "built-in {} runs the image `lab images build` makes; remove `{key}`",
                    b.as_str()
                )),
            );
        }
    }
    let image = svc.image.as_ref().map(|i| i.get_ref().clone());
    if let Some(i) = &svc.image
        && (i.get_ref().trim().is_empty() || i.get_ref().contains(char::is_whitespace))
    {
        errs.push(
            Diagnostic::new(i.span(), format!("invalid image name {:?}", i.get_ref()))
                .hint("e.g. \"my-recipe-api:1\""),
        );
    }
    let build = svc.build.as_ref().map(|b| {
        let p = dir.join(b.get_ref());
        if !p.join("Dockerfile").is_file() {
            errs.push(
                Diagnostic::new(
                    b.span(),
                    format!("`build` {:?} has no Dockerfile", b.get_ref()),
                )
                .hint(format!(
                    "a folder holding a Dockerfile, relative to {}",
                    dir.display()
                )),
            );
        }
        p
    });

    let process = process_model(svc, &run, errs);
    let role = match (&svc.role, &run) {
        (Some(r), _) => Some(*r.get_ref()),
        (None, Run::Builtin(b)) => Some(*b),
        (None, Run::Command { .. }) => [Builtin::RecipeApi, Builtin::WebApi]
            .into_iter()
            .find(|b| b.as_str() == name),
    };
    let (protocol, serves) = serves(svc, &run, role, &name, errs);
    let health = health(
        svc.health.as_ref(),
        matches!(run, Run::Command { .. }),
        errs,
    );

    let replicas = match &svc.replicas {
        Some(r) if *r.get_ref() == 0 => {
            errs.push(
                Diagnostic::new(r.span(), "`replicas` must be at least 1")
                    .hint("remove the service to run none of it"),
            );
            1
        }
        Some(r) if *r.get_ref() > MAX_REPLICAS => {
            errs.push(
                Diagnostic::new(r.span(), format!("`replicas` is at most {MAX_REPLICAS}"))
                    .hint("each replica is a process with ports and file descriptors of its own on this machine"),
            );
            MAX_REPLICAS as usize
        }
        Some(r) => *r.get_ref() as usize,
        None => 1,
    };

    let ports = match &svc.port {
        None => Ports::Auto,
        Some(p) => ports(p, replicas, errs),
    };

    let mut env = Vec::new();
    let mut target = None;
    let mut depends_on: Vec<String> = Vec::new();
    for (k, v) in svc.env.iter().flatten() {
        if k.get_ref().is_empty() || k.get_ref().contains(['\0', '=']) || v.get_ref().contains('\0')
        {
            let span = if v.get_ref().contains('\0') {
                v.span()
            } else {
                k.span()
            };
            errs.push(
                Diagnostic::new(
                    span,
                    format!(
                        "`{}` cannot be an environment variable",
                        k.get_ref().replace('\0', "\\0")
                    ),
                )
                .hint("names are non-empty without `=` or NUL; values have no NUL"),
            );
            continue;
        }
        if let Some((_, hint)) = RESERVED_ENV.iter().find(|(r, _)| r == k.get_ref()) {
            errs.push(
                Diagnostic::new(k.span(), format!("`{}` is set by the lab", k.get_ref()))
                    .hint(*hint),
            );
        } else if k.get_ref() == "TARGET" {
            let value = v.get_ref().trim();
            if names.contains(&value) {
                target = Some(Target::Service(value.to_owned()));
                depends_on.push(value.to_owned());
            } else if looks_like_addr(value) {
                target = Some(Target::Addr(value.to_owned()));
            } else {
                let mut d = Diagnostic::new(
                    v.span(),
                    format!("TARGET {value:?} names no service of this lab"),
                );
                d.hint = Some(match did_you_mean(value, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`? (or write a literal host:port)"),
                    None => format!(
                        "name one of: {} (or write a literal host:port)",
                        names.join(", ")
                    ),
                });
                errs.push(d);
            }
        } else {
            env.push((k.get_ref().clone(), v.get_ref().clone()));
        }
    }
    if let Some(h) = &svc.health {
        if let Some(pg) = &h.postgres {
            let url = pg.get_ref().trim();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                errs.push(
                    Diagnostic::new(
                        pg.span(),
                        format!("postgres {url:?} is not a postgres:// URL"),
                    )
                    .hint("e.g. \"postgres://postgres@127.0.0.1:5432/postgres\""),
                );
            }
            env.push(("HEALTH_POSTGRES".to_owned(), url.to_owned()));
        }
        if let Some(r) = &h.redis {
            let addr = r
                .get_ref()
                .trim()
                .trim_start_matches("redis://")
                .trim_end_matches('/');
            if addr
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                errs.push(
                    Diagnostic::new(r.span(), format!("redis {addr:?} is not host:port"))
                        .hint("e.g. \"127.0.0.1:6379\""),
                );
            }
            env.push(("HEALTH_REDIS".to_owned(), addr.to_owned()));
        }
    }

    for d in svc.depends_on.iter().flatten() {
        if !names.contains(&d.get_ref().as_str()) {
            let mut diag = Diagnostic::new(
                d.span(),
                format!(
                    "`{name}` depends on `{}`, which is not a service of this lab",
                    d.get_ref()
                ),
            );
            diag.hint = Some(match did_you_mean(d.get_ref(), names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("services are: {}", names.join(", ")),
            });
            errs.push(diag);
        } else if !depends_on.contains(d.get_ref()) {
            depends_on.push(d.get_ref().clone());
        }
    }

    Service {
        name,
        name_span: key.span(),
        command_span: svc.command.as_ref().map(|c| c.span()),
        run,
        replicas,
        ports,
        port_span: svc.port.as_ref().map(|p| p.span()),
        host: match &svc.host {
            None => "127.0.0.1".to_owned(),
            Some(h) => {
                let v = h.get_ref().trim();
                if v.parse::<std::net::IpAddr>().is_err() && v != "localhost" {
                    errs.push(
                        Diagnostic::new(h.span(), format!("host {v:?} is not an IP address"))
                            .hint("the address the service binds: \"127.0.0.1\" (this machine only) or \"0.0.0.0\" (every interface)"),
                    );
                }
                v.to_owned()
            }
        },
        env,
        protocol,
        target_protocol: svc.target_protocol.as_ref().map(|p| *p.get_ref()),
        role,
        serves,
        serves_declared: svc.serves.is_some(),
        target,
        depends_on,
        health,
        restart: RestartSpec {
            policy: match svc.restart.as_ref().map(|r| *r.get_ref()) {
                Some(crate::config::raw::RestartPolicy::Always) => RestartPolicy::Always,
                Some(crate::config::raw::RestartPolicy::Never) => RestartPolicy::Never,
                Some(crate::config::raw::RestartPolicy::OnFailure) | None => {
                    RestartPolicy::OnFailure
                }
            },
            backoff: backoff(svc.backoff.as_ref(), errs),
        },
        stop_grace: errs.duration(&svc.stop_grace, Duration::from_secs(10)),
        environment: svc
            .environment
            .as_ref()
            .map_or(lab_env.to_owned(), |e| e.get_ref().clone()),
        process,
        image,
        build,
    }
}

/// `threads`, `offload`, `workers`, `respawn`: built-in services only, in range, consistent.
pub(super) fn process_model(svc: &RawService, run: &Run, errs: &mut Errors) -> ProcessModel {
    let mut m = ProcessModel::default();
    let builtin_only = |span: Range<usize>, key: &str, errs: &mut Errors| {
        errs.push(
            Diagnostic::new(span, format!("`{key}` only applies to built-in services"))
                .hint("your own program runs its own threads or cluster (e.g. Node's cluster module); remove it"),
        );
    };
    let count = |v: &Spanned<u32>, key: &str, errs: &mut Errors| -> u32 {
        let n = *v.get_ref();
        if !(1..=256).contains(&n) {
            errs.push(
                Diagnostic::new(v.span(), format!("`{key}` must be from 1 to 256"))
                    .hint("one per core is the usual choice"),
            );
            return 1;
        }
        n
    };
    let command = matches!(run, Run::Command { .. });
    if let Some(t) = &svc.threads {
        if command {
            builtin_only(t.span(), "threads", errs);
        }
        m.threads = count(t, "threads", errs);
    }
    // `workers` and `respawn` on a `command` service declare what the program does itself
    // (its own cluster master): the checks hold it to that; the lab passes nothing on.
    if let Some(w) = &svc.workers {
        m.workers = count(w, "workers", errs);
    }
    if let Some(o) = &svc.offload {
        if command {
            builtin_only(o.span(), "offload", errs);
        }
        m.offload = *o.get_ref();
    }
    if let Some(r) = &svc.respawn {
        if *r.get_ref() && m.workers < 2 {
            errs.push(
                Diagnostic::new(r.span(), "`respawn` needs `workers` of 2 or more")
                    .hint("set `workers = 2` (or more): respawn replaces exited cluster workers"),
            );
        }
        m.respawn = *r.get_ref();
    }
    m
}

/// The service's transport and what it serves: `serves` as written (checked against
/// `protocol` and the role), else the default of its kind.
pub(super) fn serves(
    svc: &RawService,
    run: &Run,
    role: Option<Builtin>,
    name: &str,
    errs: &mut Errors,
) -> (crate::config::raw::Protocol, Vec<Serve>) {
    use crate::config::raw::Protocol;
    let declared = svc.protocol.as_ref().map(|p| *p.get_ref());
    let Some(list) = &svc.serves else {
        let protocol = declared.unwrap_or(Protocol::Http);
        let rest = match protocol {
            Protocol::Http => Serve::Http,
            Protocol::Https => Serve::Https,
        };
        let serves = match (run, role) {
            (Run::Builtin(Builtin::RecipeApi), _) => {
                vec![rest, Serve::Gzip, Serve::Graphql, Serve::Grpc]
            }
            (Run::Command { .. }, Some(Builtin::RecipeApi)) => vec![rest],
            _ => Vec::new(),
        };
        return (protocol, serves);
    };
    let mut serves: Vec<Serve> = Serve::ALL
        .into_iter()
        .filter(|s| list.get_ref().contains(s))
        .collect();
    if serves.is_empty() {
        errs.push(
            Diagnostic::new(list.span(), "`serves` is empty")
                .hint("name what the service answers, e.g. [\"http\"] or [\"graphql\"]"),
        );
    }
    if role == Some(Builtin::WebApi) {
        errs.push(
            Diagnostic::new(
                list.span(),
                format!("`serves` describes a producer, and `{name}` plays web-api"),
            )
            .hint("remove `serves`, or set `role = \"recipe-api\"`"),
        );
    }
    if let Run::Builtin(Builtin::WebApi) = run {
        errs.push(
            Diagnostic::new(list.span(), "the built-in web-api serves none of these")
                .hint("remove `serves`: it is for producers (recipe-api)"),
        );
    }
    let tls = serves.contains(&Serve::Https);
    if tls && serves.contains(&Serve::Http) {
        errs.push(
            Diagnostic::new(
                list.span(),
                "`serves` has both http and https, but a service has one port and one transport",
            )
            .hint("keep one, and run the other as a second service (the book's producer-https-basic.js is its own file)"),
        );
    }
    let protocol = match (declared, tls) {
        (Some(Protocol::Http), true) => {
            let span = svc
                .protocol
                .as_ref()
                .map(|p| p.span())
                .unwrap_or(list.span());
            errs.push(
                Diagnostic::new(span, "`protocol = \"http\"`, but `serves` has https")
                    .hint("set `protocol = \"https\"` (or leave it out: `serves = [\"https\"]` implies it)"),
            );
            Protocol::Http
        }
        (Some(Protocol::Https), false) if serves.contains(&Serve::Http) => {
            errs.push(
                Diagnostic::new(list.span(), "`serves` has http, but `protocol = \"https\"`")
                    .hint("write `https` in `serves` for REST over TLS"),
            );
            Protocol::Https
        }
        (Some(p), _) => p,
        (None, true) => Protocol::Https,
        (None, false) => Protocol::Http,
    };
    if protocol == Protocol::Https && !tls && serves.contains(&Serve::Http) {
        serves.retain(|s| *s != Serve::Http);
    }
    (protocol, serves)
}

pub(super) fn ports(p: &Spanned<PortSpec>, replicas: usize, errs: &mut Errors) -> Ports {
    let (first, last) = match p.get_ref() {
        PortSpec::Number(0) => return Ports::Auto,
        PortSpec::Number(n) => (*n as u32, *n as u32 + replicas as u32 - 1),
        PortSpec::Range(r) => {
            let parsed = r.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            match parsed {
                Some((a, b)) if a > 0 && a <= b => {
                    if ((b - a) as usize) + 1 < replicas {
                        errs.push(
                            Diagnostic::new(
                                p.span(),
                                format!(
                                    "port range {r:?} has {} ports for {replicas} replicas",
                                    b - a + 1
                                ),
                            )
                            .hint(format!(
                                "widen it to \"{a}-{}\"",
                                a as u32 + replicas as u32 - 1
                            )),
                        );
                    }
                    (a as u32, a as u32 + replicas as u32 - 1)
                }
                _ => {
                    errs.push(
                        Diagnostic::new(p.span(), format!("invalid port range {r:?}")).hint(
                            "write a number (4000), a range (\"4000-4009\") or 0 for free ports",
                        ),
                    );
                    return Ports::Auto;
                }
            }
        }
    };
    if last > u16::MAX as u32 {
        errs.push(Diagnostic::new(
            p.span(),
            format!("{replicas} replicas from port {first} run past 65535"),
        ));
        return Ports::Auto;
    }
    Ports::Fixed((first..=last).map(|p| p as u16).collect())
}

/// `command` is true for a learner's program: without a declared check (or a `path`) it is
/// probed over tcp, as the book's producers, which have no `/health` route, can answer.
pub(super) fn health(h: Option<&RawHealth>, command: bool, errs: &mut Errors) -> HealthSpec {
    let d = HealthSpec::default();
    let Some(h) = h else {
        return if command {
            HealthSpec {
                check: HealthCheck::Tcp,
                ..d
            }
        } else {
            d
        };
    };
    let path = match &h.path {
        Some(p) if !p.get_ref().starts_with('/') => {
            errs.push(
                Diagnostic::new(
                    p.span(),
                    format!("health path {:?} must start with '/'", p.get_ref()),
                )
                .hint(format!("write \"/{}\"", p.get_ref())),
            );
            p.get_ref().clone()
        }
        Some(p) => p.get_ref().clone(),
        None => "/health".into(),
    };
    let check = match h.check.as_ref().map(|c| *c.get_ref()) {
        None if command && h.path.is_none() => HealthCheck::Tcp,
        None | Some(CheckKind::Http) => HealthCheck::Http { path },
        Some(CheckKind::Tcp) => HealthCheck::Tcp,
        Some(CheckKind::None) => HealthCheck::None,
    };
    let ms = Duration::from_millis;
    HealthSpec {
        check,
        start_interval: errs.duration_min(
            &h.start_interval,
            d.start_interval,
            ms(1),
            "start_interval",
        ),
        interval: errs.duration_min(&h.interval, d.interval, ms(100), "interval"),
        timeout: errs.duration_min(&h.timeout, d.timeout, ms(10), "timeout"),
        deadline: errs.duration_min(&h.deadline, d.deadline, ms(100), "deadline"),
    }
}

pub(super) fn backoff(b: Option<&RawBackoff>, errs: &mut Errors) -> Backoff {
    let d = Backoff::default();
    let Some(b) = b else { return d };
    let factor = match &b.factor {
        Some(f) if !(1.0..=100.0).contains(f.get_ref()) => {
            errs.push(
                Diagnostic::new(f.span(), "backoff `factor` must be between 1 and 100")
                    .hint("pm2 uses 1.5"),
            );
            d.factor
        }
        Some(f) => *f.get_ref(),
        None => d.factor,
    };
    let ms = Duration::from_millis;
    let initial = errs.duration_min(&b.initial, d.initial, ms(10), "backoff `initial`");
    let max = errs.duration_min(&b.max, d.max, ms(10), "backoff `max`");
    if let Some(m) = &b.max
        && max < initial
    {
        errs.push(
            Diagnostic::new(m.span(), "backoff `max` is below `initial`")
                .hint("the delay grows from `initial` up to `max`"),
        );
    }
    Backoff {
        initial,
        factor,
        max: max.max(initial),
        reset_after: errs.duration(&b.reset_after, d.reset_after),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;

    const SVC: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\n";

    #[test]
    fn reserved_variables_point_to_the_setting_that_sets_them() {
        let (l, _, m, h) = one(&format!("{SVC}env = {{ PORT = \"1\" }}\n"), "PORT");
        assert_eq!(l, 3, "{m}");
        assert_eq!(h.as_deref(), Some("set `port = ...` on the service"));
    }

    #[test]
    fn replicas_ports_and_durations_are_bounded() {
        let (l, _, m, _) = one(&format!("{SVC}replicas = 100000\n"), "replicas");
        assert_eq!(l, 3, "{m}");
        let (_, _, m, _) = one(
            &format!("{SVC}replicas = 3\nport = \"4000-4001\"\n"),
            "port",
        );
        assert!(m.contains('3') || m.contains("2"), "{m}");
        let (l, _, m, h) = one(
            &format!("{SVC}[services.recipe-api.health]\ninterval = \"0s\"\n"),
            "below the least the lab takes",
        );
        assert_eq!(l, 4, "{m}");
        assert!(h.unwrap().starts_with("write "));
    }

    #[test]
    fn a_target_that_is_no_service_says_which_are() {
        let (l, _, m, h) = one(
            "[services.web-api]\nbuiltin = \"web-api\"\nenv = { TARGET = \"recipe\" }\n[services.recipe-api]\nbuiltin = \"recipe-api\"\n",
            "recipe",
        );
        assert_eq!(l, 3, "{m}");
        assert!(h.is_some(), "{m}");
    }
}
