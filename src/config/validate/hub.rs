//! `[hub]`: listeners, flush, health and alert intervals, retention, external endpoints.

use super::common::*;

pub(super) fn hub(raw: &crate::config::raw::RawHub, errs: &mut Errors) -> Hub {
    let mut config = lab_hub::HubConfig::default();
    if let Some(h) = &raw.host {
        match h.get_ref().parse() {
            Ok(ip) => config.host = ip,
            Err(_) => errs.push(
                Diagnostic::new(
                    h.span(),
                    format!("hub host {:?} is not an IP address", h.get_ref()),
                )
                .hint("use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"),
            ),
        }
    }
    let mut ports = Vec::new();
    for (what, raw_port, default) in [
        (HubListener::Logs, &raw.logs_port, config.logs_port),
        (HubListener::Statsd, &raw.statsd_port, config.statsd_port),
        (HubListener::Zipkin, &raw.zipkin_port, config.zipkin_port),
        (HubListener::Http, &raw.http_port, config.http_port),
        (HubListener::Carbon, &raw.carbon_port, 2003),
        (
            HubListener::OtlpHttp,
            &raw.otlp_http_port,
            config.otlp_http_port,
        ),
        (
            HubListener::OtlpGrpc,
            &raw.otlp_grpc_port,
            config.otlp_grpc_port,
        ),
    ] {
        ports.push(HubPort {
            what,
            port: raw_port.as_ref().map_or(default, |p| *p.get_ref()),
            span: raw_port.as_ref().map(Spanned::span),
        });
    }
    // One source of truth: the config carries the ports as configured too (`lab hub` runs it
    // as it is; lowering replaces 0 by a free port).
    let port = |what| {
        ports
            .iter()
            .find(|p: &&HubPort| p.what == what)
            .map_or(0, |p| p.port)
    };
    config.logs_port = port(HubListener::Logs);
    config.statsd_port = port(HubListener::Statsd);
    config.zipkin_port = port(HubListener::Zipkin);
    config.http_port = port(HubListener::Http);
    config.carbon_port = Some(port(HubListener::Carbon));
    config.otlp_http_port = port(HubListener::OtlpHttp);
    config.otlp_grpc_port = port(HubListener::OtlpGrpc);
    let interval = errs.duration(&raw.flush_interval, Duration::from_secs(10));
    if interval < Duration::from_secs(1) {
        errs.push(
            Diagnostic::new(
                raw.flush_interval.as_ref().map(Spanned::span).unwrap_or_default(),
                "the flush interval is shorter than one second",
            )
            .hint("Graphite stores one point per interval: use \"1s\" or more (etsy's default is \"10s\")"),
        );
    }
    config.flush_interval_ms = interval.as_millis() as u64;
    let health = errs.duration(&raw.health_interval, Duration::from_secs(2));
    if health < Duration::from_millis(100) {
        errs.push(
            Diagnostic::new(
                raw.health_interval
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or_default(),
                "the health interval is shorter than 100ms",
            )
            .hint("every instance is probed each interval: use \"1s\" or more"),
        );
    }
    config.health_interval_ms = health.as_millis() as u64;
    if let Some(r) = &raw.retention {
        if let Some(s) = &r.max_size {
            match parse_size(s.get_ref()) {
                Some(b) if b >= 10_000_000 => config.retention.max_bytes = b,
                Some(_) => errs.push(
                    Diagnostic::new(s.span(), "retention `max_size` is under 10MB")
                        .hint("a day of the default lab's data takes a few hundred MB"),
                ),
                None => errs.push(
                    Diagnostic::new(s.span(), format!("cannot read the size {:?}", s.get_ref()))
                        .hint("write it like \"1GB\", \"500MB\" or \"2GiB\""),
                ),
            }
        }
        let age = errs.duration_min(
            &r.max_age,
            Duration::from_millis(config.retention.max_age_ms),
            Duration::from_secs(3600),
            "retention `max_age`",
        );
        config.retention.max_age_ms = age.as_millis() as u64;
    }
    config.alert_interval_ms = errs
        .duration(&raw.alert_interval, Duration::from_secs(5))
        .as_millis()
        .max(100) as u64;
    if let Some(w) = &raw.alert_webhook {
        if !w.get_ref().starts_with("http://") && !w.get_ref().starts_with("https://") {
            errs.push(Diagnostic::new(
                w.span(),
                format!("alert_webhook {:?} is not an http(s):// URL", w.get_ref()),
            ));
        }
        config.alert_webhook = Some(w.get_ref().clone());
    }
    if let Some(n) = &raw.namespace {
        match n.get_ref().as_str() {
            "legacy" => config.namespace = lab_hub::ingest::statsd::Namespace::Legacy,
            "modern" => config.namespace = lab_hub::ingest::statsd::Namespace::Modern,
            other => {
                let mut d =
                    Diagnostic::new(n.span(), format!("unknown StatsD namespace {other:?}"));
                d.hint = Some(match did_you_mean(other, ["legacy", "modern"]) {
                    Some(s) => format!("did you mean `{s}`? (legacy or modern)"),
                    None => "use `legacy` (the book's stats_counts.K names) or `modern`".into(),
                });
                errs.push(d);
            }
        }
    }
    if let Some(p) = &raw.percent_thresholds {
        if let Some(bad) = p
            .get_ref()
            .iter()
            .find(|v| **v == 0.0 || v.abs() > 100.0 || !v.is_finite())
        {
            errs.push(
                Diagnostic::new(
                    p.span(),
                    format!("percent threshold {bad} is outside -100..100 (or 0)"),
                )
                .hint("e.g. [90, 99] for upper_90 and upper_99"),
            );
        }
        config.percent_thresholds = p.get_ref().clone();
    }
    if let Some(p) = &raw.index_prefix {
        config.index_prefix = p.get_ref().clone();
    }
    let mut external = |v: &Option<Spanned<String>>, what: &str| -> Option<String> {
        let v = v.as_ref()?;
        let text = v.get_ref().trim();
        let ok = text
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            errs.push(
                Diagnostic::new(v.span(), format!("{what} {text:?} is not `host:port`"))
                    .hint("e.g. \"127.0.0.1:7777\" or \"logstash.internal:5000\""),
            );
        }
        Some(text.to_owned())
    };
    let logstash = external(&raw.logstash, "logstash");
    let statsd = external(&raw.statsd, "statsd");
    let zipkin = external(&raw.zipkin, "zipkin");
    config.forward_graphite = external(&raw.graphite, "graphite");
    Hub {
        config,
        ports,
        logstash,
        statsd,
        zipkin,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;

    const SVC: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[hub]\n";

    #[test]
    fn the_host_must_be_an_ip_and_intervals_sane() {
        let (l, c, _, h) = one(
            &format!("{SVC}host = \"not-an-ip\"\n"),
            "is not an IP address",
        );
        assert_eq!((l, c), (4, 8));
        assert!(h.unwrap().contains("127.0.0.1"));
        let (l, _, _, _) = one(
            &format!("{SVC}flush_interval = \"100ms\"\n"),
            "shorter than one second",
        );
        assert_eq!(l, 4);
    }

    #[test]
    fn retention_sizes_are_read_and_bounded() {
        let (l, _, _, h) = one(
            &format!("{SVC}retention = {{ max_size = \"1MB\" }}\n"),
            "under 10MB",
        );
        assert_eq!(l, 4);
        assert!(h.is_some());
        let (_, _, _, h) = one(
            &format!("{SVC}retention = {{ max_size = \"lots\" }}\n"),
            "cannot read the size",
        );
        assert!(h.unwrap().contains("\"1GB\""));
    }
}
