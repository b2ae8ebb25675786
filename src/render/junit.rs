//! JUnit XML for CI, from the same report as the table and `--json`.

use std::fmt::Write;

use crate::check::{CheckReport, Status};

pub fn render(report: &CheckReport) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = report
        .scenarios
        .iter()
        .filter(|s| {
            s.status == Status::Fail || (report.strict && s.status == Status::NotApplicable)
        })
        .count();
    let skipped = if report.strict {
        0
    } else {
        report.not_applicable
    };
    let _ = writeln!(
        x,
        "<testsuites name=\"lab check\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        report.scenarios.len(),
        report.duration_ms / 1e3
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        esc(&format!("lab check ({})", report.lab)),
        report.scenarios.len(),
        report.duration_ms / 1e3
    );
    for s in &report.scenarios {
        let _ = writeln!(
            x,
            "    <testcase classname=\"ch{}\" name=\"{}\" time=\"{:.3}\">",
            s.chapter,
            esc(&s.name),
            s.duration_ms / 1e3
        );
        if !s.figures.is_empty() || s.engine.is_some() {
            x.push_str("      <properties>\n");
            if let Some(e) = &s.engine {
                let _ = writeln!(
                    x,
                    "        <property name=\"engine\" value=\"{}\"/>",
                    esc(e)
                );
            }
            for f in &s.figures {
                let _ = writeln!(
                    x,
                    "        <property name=\"{}\" value=\"{}\"/>",
                    esc(&f.name),
                    esc(&format!("{} {}", f.value, f.unit))
                );
            }
            x.push_str("      </properties>\n");
        }
        if let (Status::NotApplicable, Some(na), false) =
            (s.status, &s.not_applicable, report.strict)
        {
            let _ = writeln!(
                x,
                "      <skipped message=\"{}\"/>",
                esc(&format!(
                    "not applicable: {}; to apply it: {}",
                    na.why, na.fix
                ))
            );
        } else if s.status != Status::Pass {
            let failed: Vec<String> = s
                .assertions
                .iter()
                .filter(|a| !a.ok)
                .map(|a| match &a.expected {
                    Some(e) => format!("{}: expected {e}; got {}", a.name, a.detail),
                    None => format!("{}: {}", a.name, a.detail),
                })
                .collect();
            let message = s
                .error
                .clone()
                .or_else(|| {
                    s.not_applicable.as_ref().map(|na| {
                        format!(
                            "not applicable (--strict): {}; to apply it: {}",
                            na.why, na.fix
                        )
                    })
                })
                .unwrap_or_else(|| failed.join("; "));
            let _ = writeln!(
                x,
                "      <failure message=\"{}\">{}</failure>",
                esc(&message),
                esc(&failed.join("\n"))
            );
        }
        let mut out = String::new();
        for subj in &s.subjects {
            let _ = writeln!(out, "against {}", subj.what);
        }
        for a in &s.assertions {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if a.ok { "ok  " } else { "FAIL" },
                a.name,
                a.detail
            );
        }
        for f in &s.figures {
            let _ = writeln!(out, "figure {} = {} {}", f.name, f.value, f.unit);
        }
        let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&out));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// XML text and attribute values: the lab's one escaper.
use lab_net::html::escape as esc;
