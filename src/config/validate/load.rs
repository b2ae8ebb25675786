//! `[load.NAME]`: the presets `lab load NAME` runs.

use super::common::*;

pub(super) fn load_presets(raw: &RawLab, errs: &mut Errors) -> Vec<LoadPreset> {
    let mut out = Vec::new();
    for (key, l) in &raw.load {
        if !valid_name(key.get_ref()) {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("invalid load preset name {:?}", key.get_ref()),
                )
                .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        if let (Some(_), Some(a)) = (&l.duration, &l.amount) {
            errs.push(
                Diagnostic::new(a.span(), "`amount` and `duration` both end a run")
                    .hint("keep one of them"),
            );
        }
        let positive = |v: &Option<Spanned<u32>>, key: &str, errs: &mut Errors| {
            v.as_ref().map(|v| {
                if *v.get_ref() == 0 {
                    errs.push(
                        Diagnostic::new(v.span(), format!("`{key}` must be at least 1"))
                            .hint("e.g. 10"),
                    );
                }
                (*v.get_ref()).max(1) as usize
            })
        };
        if let Some(r) = &l.rate
            && !(*r.get_ref() > 0.0 && r.get_ref().is_finite())
        {
            errs.push(
                Diagnostic::new(
                    r.span(),
                    "`rate` must be a positive number of requests per second",
                )
                .hint("e.g. 1000"),
            );
        }
        if let Some(sla) = &l.sla
            && let Err(e) = lab_loadgen::sla::parse(sla.get_ref())
        {
            errs.push(
                Diagnostic::new(sla.span(), e.to_string())
                    .hint("e.g. \"p99<20ms,errors<0.1%,rps>5000\""),
            );
        }
        out.push(LoadPreset {
            name: key.get_ref().clone(),
            target: l.target.get_ref().clone(),
            connections: positive(&l.connections, "connections", errs),
            pipelining: positive(&l.pipelining, "pipelining", errs),
            duration: l
                .duration
                .as_ref()
                .map(|_| errs.duration(&l.duration, Duration::from_secs(10))),
            amount: l.amount.as_ref().map(|a| *a.get_ref()),
            rate: l.rate.as_ref().map(|r| *r.get_ref()),
            method: l.method.as_ref().map(|m| m.get_ref().to_ascii_uppercase()),
            headers: l
                .headers
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: l.body.as_ref().map(|b| b.get_ref().clone()),
            http2: l.http2.as_ref().is_some_and(|h| *h.get_ref()),
            timeout: l
                .timeout
                .as_ref()
                .map(|_| errs.duration(&l.timeout, Duration::from_secs(10))),
            sla: l.sla.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;

    const LAB: &str =
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\n[load.x]\ntarget = \"recipe-api\"\n";

    #[test]
    fn presets_are_checked_field_by_field() {
        let (l, _, _, _) = one(
            &format!("{LAB}amount = 10\nduration = \"1s\"\n"),
            "`amount` and `duration` both end a run",
        );
        assert!(l == 5 || l == 6);
        let (l, _, _, h) = one(&format!("{LAB}rate = -1.0\n"), "`rate` must be a positive");
        assert_eq!((l, h.as_deref()), (5, Some("e.g. 1000")));
        let (l, _, _, h) = one(&format!("{LAB}sla = \"p99 under 5\"\n"), "");
        assert_eq!(l, 5);
        assert!(h.unwrap().contains("p99<20ms"));
    }
}
