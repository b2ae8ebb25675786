//! `[alerts.NAME]`: Cabot-style rules over metrics, http checks and health states.

use super::common::*;

pub(super) fn alerts(
    raw: &RawLab,
    services: &[Service],
    names: &[&str],
    errs: &mut Errors,
) -> Vec<lab_hub::alerts::Rule> {
    use lab_hub::alerts::{Check, Cmp, Rule};
    let mut out = Vec::new();
    for (key, a) in &raw.alerts {
        let name = key.get_ref().clone();
        let kinds = [a.metric.is_some(), a.http.is_some(), a.health.is_some()]
            .iter()
            .filter(|k| **k)
            .count();
        if kinds != 1 {
            errs.push(
                Diagnostic::new(key.span(), format!("alert `{name}` needs exactly one of `metric`, `http` and `health`"))
                    .hint("metric = \"<graphite target>\" with check and value; http = \"<url>\"; or health = \"<service>\""),
            );
            continue;
        }
        let importance = a
            .importance
            .as_ref()
            .map_or("ERROR".to_owned(), |i| i.get_ref().to_ascii_uppercase());
        if !["WARNING", "ERROR", "CRITICAL"].contains(&importance.as_str()) {
            errs.push(Diagnostic::new(
                a.importance.as_ref().map(Spanned::span).unwrap_or_default(),
                format!("importance {importance:?} is not WARNING, ERROR or CRITICAL"),
            ));
        }
        let for_ms = errs.duration(&a.for_, Duration::ZERO).as_millis() as u64;
        let check = if let Some(m) = &a.metric {
            if let Err(e) = lab_hub::query::graphite::parse_target(m.get_ref()) {
                errs.push(Diagnostic::new(
                    m.span(),
                    format!("metric {:?} is not a Graphite target: {e}", m.get_ref()),
                ));
            }
            let cmp = match &a.check {
                Some(c) => Cmp::parse(c.get_ref()).unwrap_or_else(|| {
                    errs.push(Diagnostic::new(
                        c.span(),
                        format!("check {:?} is not one of > >= < <= ==", c.get_ref()),
                    ));
                    Cmp::Gt
                }),
                None => {
                    errs.push(Diagnostic::new(
                        key.span(),
                        format!("metric alert `{name}` needs `check` (> >= < <= ==) and `value`"),
                    ));
                    Cmp::Gt
                }
            };
            let value = match &a.value {
                Some(v) => *v.get_ref(),
                None => {
                    if a.check.is_some() {
                        errs.push(Diagnostic::new(
                            key.span(),
                            format!("metric alert `{name}` needs `value`"),
                        ));
                    }
                    0.0
                }
            };
            let window_s = match &a.window {
                Some(w) => match lab_hub::query::graphite::parse_interval(w.get_ref()) {
                    Some(s) if s > 0 => s,
                    _ => {
                        errs.push(
                            Diagnostic::new(
                                w.span(),
                                format!("window {:?} is not a Graphite interval", w.get_ref()),
                            )
                            .hint("e.g. \"30s\", \"5min\", \"1h\""),
                        );
                        60
                    }
                },
                None => 60,
            };
            Check::Metric {
                target: m.get_ref().clone(),
                check: cmp,
                value,
                window_s,
            }
        } else if let Some(u) = &a.http {
            if !u.get_ref().starts_with("http://") && !u.get_ref().starts_with("https://") {
                errs.push(Diagnostic::new(
                    u.span(),
                    format!("http {:?} is not an http(s):// URL", u.get_ref()),
                ));
            }
            if let Some(t) = &a.text
                && let Err(e) = regex_check(t.get_ref())
            {
                errs.push(Diagnostic::new(
                    t.span(),
                    format!("text is not a regex: {e}"),
                ));
            }
            if let Some(st) = &a.status
                && !(100..=599).contains(st.get_ref())
            {
                errs.push(
                    Diagnostic::new(
                        st.span(),
                        format!("status {} is not an HTTP status", st.get_ref()),
                    )
                    .hint("from 100 to 599, e.g. 200"),
                );
            }
            Check::Http {
                url: u.get_ref().clone(),
                status: a.status.as_ref().map_or(200, |s| *s.get_ref()),
                text: a.text.as_ref().map(|t| t.get_ref().clone()),
                timeout_ms: errs
                    .duration(&a.timeout, Duration::from_secs(2))
                    .as_millis() as u64,
            }
        } else {
            let h = a.health.as_ref().expect("one kind");
            if !services.iter().any(|s| &s.name == h.get_ref()) {
                let mut d = Diagnostic::new(
                    h.span(),
                    format!(
                        "alert `{name}` watches `{}`, which is not a service of this lab",
                        h.get_ref()
                    ),
                );
                d.hint = did_you_mean(h.get_ref(), names.iter().copied())
                    .map(|b| format!("did you mean `{b}`?"));
                errs.push(d);
            }
            let state = match a.state.as_ref().map(|s| s.get_ref().to_ascii_uppercase()) {
                None => lab_service_kit::health::Level::Down,
                Some(s) if s == "DOWN" => lab_service_kit::health::Level::Down,
                Some(s) if s == "DEGRADED" => lab_service_kit::health::Level::Degraded,
                Some(other) => {
                    errs.push(Diagnostic::new(
                        a.state.as_ref().map(Spanned::span).unwrap_or_default(),
                        format!("state {other:?} is not DEGRADED or DOWN"),
                    ));
                    lab_service_kit::health::Level::Down
                }
            };
            Check::Health {
                service: h.get_ref().clone(),
                state,
            }
        };
        out.push(Rule {
            name,
            check,
            for_ms,
            importance,
            origin: None,
        });
    }
    out
}

pub(super) fn regex_check(re: &str) -> Result<(), String> {
    regex::Regex::new(re).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;

    const LAB: &str = "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[hub]\n[alerts.a]\n";

    #[test]
    fn rules_are_checked_field_by_field() {
        let (l, _, m, _) = one(
            &format!("{LAB}metric = \"x\"\ncheck = \"=>\"\nvalue = 1\n"),
            "is not one of > >= < <= ==",
        );
        assert_eq!(l, 6, "{m}");
        let (l, _, _, h) = one(
            &format!("{LAB}health = \"recipe-ap\"\n"),
            "not a service of this lab",
        );
        assert_eq!(l, 5);
        assert_eq!(h.as_deref(), Some("did you mean `recipe-api`?"));
    }

    #[test]
    fn rules_need_the_hub() {
        let (l, _, _, h) = one(
            "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[alerts.a]\nhealth = \"recipe-api\"\n",
            "alert rules need the hub",
        );
        assert_eq!(l, 3);
        assert!(h.unwrap().contains("[hub]"));
    }
}
