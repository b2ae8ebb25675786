//! `[proxy]`: the engine and its frontends (binds, balancing, checks, limits, TLS).

use super::common::*;

pub(super) fn proxy(
    raw: &crate::config::raw::RawProxy,
    services: &[Service],
    names: &[&str],
    errs: &mut Errors,
) -> Proxy {
    use crate::config::raw::{BalanceKind, FrontendMode, Protocol};
    use lab_proxy::config::{Balance, Check, Frontend, Mode};
    let mut frontends = Vec::new();
    for (key, f) in &raw.frontends {
        let name = key.get_ref().clone();
        if !valid_name(&name) {
            errs.push(
                Diagnostic::new(key.span(), format!("invalid frontend name {name:?}"))
                    .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        let svc_name = f.service.get_ref();
        let svc = services.iter().find(|s| &s.name == svc_name);
        if svc.is_none() {
            let mut d = Diagnostic::new(
                f.service.span(),
                format!(
                    "frontend `{name}` balances `{svc_name}`, which is not a service of this lab"
                ),
            );
            d.hint = Some(match did_you_mean(svc_name, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("services are: {}", names.join(", ")),
            });
            errs.push(d);
        }
        let mut st = Frontend::new(&name, "", Vec::new());
        st.mode = match f.mode.as_ref().map(|m| *m.get_ref()) {
            Some(FrontendMode::Tcp) => Mode::Tcp,
            _ => Mode::Http,
        };
        st.balance = match f.balance.as_ref().map(|b| *b.get_ref()) {
            Some(BalanceKind::Leastconn) => Balance::Leastconn,
            _ => Balance::Roundrobin,
        };
        let tls = f.tls.as_ref().is_some_and(|t| *t.get_ref());
        let http_only = |what: &str, span: Range<usize>, errs: &mut Errors| {
            errs.push(
                Diagnostic::new(span, format!("`{what}` needs `mode = \"http\"`"))
                    .hint("tcp mode passes bytes through untouched; remove it or use http mode"),
            );
        };
        if st.mode == Mode::Tcp {
            if let Some(t) = f.tls.as_ref().filter(|t| *t.get_ref()) {
                http_only("tls", t.span(), errs);
            }
            if let Some(c) = &f.compression {
                http_only("compression", c.span(), errs);
            }
            if let Some(u) = &f.stats_uri {
                http_only("stats_uri", u.span(), errs);
            }
        } else if let Some(s) = svc.filter(|s| s.protocol == Protocol::Https) {
            errs.push(
                Diagnostic::new(
                    f.service.span(),
                    format!("`{}` serves https, but an http frontend talks plain HTTP to its servers", s.name),
                )
                .hint("use `mode = \"tcp\"` to pass TLS through, or serve the service over http and set `tls = true` here"),
            );
        }
        if let Some(c) = &f.compression {
            st.compression = c
                .get_ref()
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect();
        }
        if let Some(m) = &f.maxconn {
            st.maxconn = (*m.get_ref()).max(1) as usize;
        }
        st.server_maxconn = f
            .server_maxconn
            .as_ref()
            .map(|m| *m.get_ref() as usize)
            .filter(|&m| m > 0);
        let ms = |d: Duration| d.as_millis() as u64;
        st.queue_timeout_ms =
            ms(errs.duration(&f.queue_timeout, Duration::from_millis(st.queue_timeout_ms)));
        st.connect_timeout_ms = ms(errs.duration(
            &f.connect_timeout,
            Duration::from_millis(st.connect_timeout_ms),
        ));
        st.client_timeout_ms = ms(errs.duration(
            &f.client_timeout,
            Duration::from_millis(st.client_timeout_ms),
        ));
        st.server_timeout_ms = ms(errs.duration(
            &f.server_timeout,
            Duration::from_millis(st.server_timeout_ms),
        ));
        if let Some(r) = &f.retries {
            st.retries = *r.get_ref();
        }
        if let Some(b) = &f.max_header_bytes {
            if *b.get_ref() < 8192 {
                errs.push(
                    Diagnostic::new(b.span(), "`max_header_bytes` is at least 8192")
                        .hint("a browser's request line and headers often take a few KB"),
                );
            }
            st.max_header_bytes = (*b.get_ref()).max(8192) as usize;
        }
        if let Some(n) = &f.max_headers {
            if *n.get_ref() == 0 {
                errs.push(Diagnostic::new(n.span(), "`max_headers` is at least 1"));
            }
            st.max_headers = (*n.get_ref()).max(1) as usize;
        }
        if let Some(u) = &f.stats_uri {
            if !u.get_ref().starts_with('/') {
                errs.push(
                    Diagnostic::new(
                        u.span(),
                        format!("stats_uri {:?} must start with '/'", u.get_ref()),
                    )
                    .hint("e.g. \"/admin?stats\""),
                );
            }
            st.stats_uri = Some(u.get_ref().clone());
        }
        let enabled = f
            .check
            .as_ref()
            .and_then(|c| c.enabled.as_ref())
            .is_none_or(|e| *e.get_ref());
        if enabled {
            let c = f.check.as_ref();
            let service_path = svc.and_then(|s| match &s.health.check {
                HealthCheck::Http { path } | HealthCheck::Https { path, .. } => Some(path.clone()),
                _ => None,
            });
            let path = match c.and_then(|c| c.path.as_ref()) {
                Some(p) if !p.get_ref().starts_with('/') => {
                    errs.push(
                        Diagnostic::new(
                            p.span(),
                            format!("check path {:?} must start with '/'", p.get_ref()),
                        )
                        .hint("e.g. \"/health\""),
                    );
                    None
                }
                Some(p) => Some(p.get_ref().clone()),
                None if st.mode == Mode::Http => service_path.or(Some("/health".into())),
                None => None,
            };
            let count =
                |v: Option<&Spanned<u32>>, default: u32, key: &str, errs: &mut Errors| match v {
                    Some(v) if *v.get_ref() == 0 => {
                        errs.push(
                            Diagnostic::new(v.span(), format!("`{key}` must be at least 1"))
                                .hint("HAProxy's defaults are rise 2, fall 3"),
                        );
                        default
                    }
                    Some(v) => *v.get_ref(),
                    None => default,
                };
            st.check = Some(Check {
                path,
                interval_ms: ms(
                    errs.duration(&c.and_then(|c| c.interval.clone()), Duration::from_secs(2))
                )
                .max(1),
                timeout_ms: ms(
                    errs.duration(&c.and_then(|c| c.timeout.clone()), Duration::from_secs(1))
                )
                .max(1),
                rise: count(c.and_then(|c| c.rise.as_ref()), 2, "rise", errs),
                fall: count(c.and_then(|c| c.fall.as_ref()), 3, "fall", errs),
            });
        }
        frontends.push(ProxyFrontend {
            name,
            service: svc_name.clone(),
            host: f
                .host
                .as_ref()
                .map_or("127.0.0.1".to_owned(), |h| h.get_ref().clone()),
            port: f.port.as_ref().map_or(0, |p| *p.get_ref()),
            port_span: f.port.as_ref().map(|p| p.span()),
            tls,
            settings: st,
        });
    }
    Proxy {
        engine: raw
            .engine
            .as_ref()
            .map_or(crate::config::raw::ProxyEngine::Builtin, |e| *e.get_ref()),
        engine_span: raw.engine.as_ref().map(|e| e.span()),
        frontends,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;

    const LAB: &str = "[services.web-api]\nbuiltin = \"web-api\"\n[proxy.frontends.web]\n";

    #[test]
    fn frontends_name_a_service_and_http_settings_need_http() {
        let (l, _, _, h) = one(
            &format!("{LAB}service = \"web-ap\"\nport = 3000\n"),
            "which is not a service of this lab",
        );
        assert_eq!(l, 4);
        assert_eq!(h.as_deref(), Some("did you mean `web-api`?"));
        let (l, _, _, _) = one(
            &format!("{LAB}service = \"web-api\"\nport = 3000\nstats_uri = \"admin\"\n"),
            "must start with '/'",
        );
        assert_eq!(l, 6);
        let (_, _, m, _) = one(
            &format!(
                "{LAB}service = \"web-api\"\nport = 3000\nmode = \"tcp\"\nstats_uri = \"/s\"\n"
            ),
            "needs `mode = \"http\"`",
        );
        assert!(m.contains("stats_uri"), "{m}");
    }
}
