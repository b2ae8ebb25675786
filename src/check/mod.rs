//! `lab check`: a registry of named scenarios, each a real experiment over the wire that makes
//! assertions and reports measured figures.
//!
//! Scenarios only talk to services over HTTP, so they hold a learner's own implementation
//! (`command = [...]`) to the book's contract exactly as they hold ours; behaviour that is
//! stricter in our services than in the book is covered by our own tests, never here.

pub mod ch1;
pub mod ch2;
pub mod ch3;
pub mod ch3_faults;
pub mod ch3_load;
pub mod ch3_proxy;
pub mod ch4;
pub mod ch5;
pub mod contract;
pub mod deps;
pub mod edges;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod spawn;
pub mod wire;

pub use report::*;
pub use scenario::*;

/// Every scenario, in chapter order.
pub fn registry() -> Vec<Scenario> {
    let mut all = ch1::scenarios();
    all.extend(ch2::scenarios());
    all.extend(ch3::scenarios());
    all.extend(ch4::scenarios());
    all.extend(ch5::scenarios());
    all.sort_by_key(|s| s.chapter);
    all
}

/// Pick scenarios by `all`, chapters (`ch1`) or names (`ch1.sample-app`), each once, in the
/// order the selectors are given.
pub fn select_many(mut all: Vec<Scenario>, whats: &[String]) -> Result<Vec<Scenario>, String> {
    let mut picked = Vec::new();
    for what in whats {
        let names: Vec<&str> = select(registry(), what)?.iter().map(|s| s.name).collect();
        let (take, keep): (Vec<Scenario>, Vec<Scenario>) =
            all.into_iter().partition(|s| names.contains(&s.name));
        picked.extend(take);
        all = keep;
    }
    Ok(picked)
}

/// Pick scenarios by `all`, a chapter (`ch1`) or a name (`ch1.sample-app`).
pub fn select(all: Vec<Scenario>, what: &str) -> Result<Vec<Scenario>, String> {
    let picked: Vec<Scenario> = all.into_iter().filter(|s| matches(s, what)).collect();
    if picked.is_empty() {
        let names: Vec<&str> = registry().iter().map(|s| s.name).collect();
        let hint = crate::config::diagnostic::did_you_mean(what, names.iter().copied())
            .map(|b| format!("did you mean `{b}`? "))
            .unwrap_or_default();
        return Err(format!(
            "no scenario matches \"{what}\"; {hint}`lab check --list` shows them all"
        ));
    }
    Ok(picked)
}

fn matches(s: &Scenario, what: &str) -> bool {
    what == "all"
        || s.name == what
        || what.strip_prefix("ch").and_then(|n| n.parse::<u8>().ok()) == Some(s.chapter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_report_schema_matches_the_report_types() {
        let committed = include_str!("../../schema/check-report.schema.json");
        assert!(
            committed == report_schema_json(),
            "schema/check-report.schema.json is stale: regenerate it with `cargo test -p lab -- --ignored regenerate_schemas`"
        );
    }

    /// Checks know a service only over the wire and by the contract files, never by its code,
    /// and what they report is never Rust's debug formatting.
    #[test]
    fn checks_use_no_service_code_and_no_debug_formatting() {
        let mut paths = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/check"
        ))];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    paths.push(p);
                }
            }
        }
        let mut files = 0;
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            files += 1;
            for banned in [concat!("lab_", "recipe_api"), concat!("lab_", "web_api")] {
                assert!(
                    !text.contains(banned),
                    "{} uses {banned}: checks speak to services over the wire only",
                    path.display()
                );
            }
            // Outside tests, no `{:?}` in what a result says.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for (i, line) in code.lines().enumerate() {
                assert!(
                    !line.contains(":?}") && !line.contains("{:?}"),
                    "{}:{}: debug formatting in a check: {line}",
                    path.display(),
                    i + 1
                );
            }
        }
        assert!(files >= 10, "read the check modules");
    }

    #[test]
    fn selection_by_all_chapter_and_name() {
        assert_eq!(select(registry(), "all").unwrap().len(), registry().len());
        assert!(
            select(registry(), "ch1")
                .unwrap()
                .iter()
                .all(|s| s.chapter == 1)
        );
        assert_eq!(select(registry(), "ch1.not-found").unwrap().len(), 1);
        assert!(select(registry(), "ch9").is_err());
        let names: std::collections::HashSet<_> = registry().iter().map(|s| s.name).collect();
        assert_eq!(names.len(), registry().len(), "scenario names are unique");
    }

    /// Writes both committed schemas from the types: `cargo test -p lab -- --ignored regenerate_schemas`.
    #[test]
    #[ignore]
    fn regenerate_schemas() {
        std::fs::write(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/schema/check-report.schema.json"
            ),
            report_schema_json(),
        )
        .unwrap();
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/lab.schema.json"),
            crate::config::schema_json(),
        )
        .unwrap();
    }
}
