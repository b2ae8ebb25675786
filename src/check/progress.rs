//! A learner's progress through the book: each scenario's last status, kept in
//! `.lab/progress.json` across runs (`lab check --progress` shows it; `lab check --next` runs
//! the first scenario, in book order, that does not pass yet).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::CheckReport;
use super::scenario::{Scenario, Status};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// Scenario name → its last run.
    pub scenarios: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// `pass`, `fail` or `not-applicable`.
    pub status: String,
    /// When it ran (Unix seconds).
    pub at: u64,
    /// The lab it ran against.
    pub lab: String,
}

fn parse(s: &str) -> Option<Status> {
    match s {
        "pass" => Some(Status::Pass),
        "fail" => Some(Status::Fail),
        "not-applicable" => Some(Status::NotApplicable),
        _ => None,
    }
}

fn name(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::NotApplicable => "not-applicable",
    }
}

impl Progress {
    /// The kept progress, or none yet (an unreadable file counts as none).
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// Take a run's results in (scenarios it did not run keep their last status).
    pub fn record(&mut self, r: &CheckReport) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for s in &r.scenarios {
            self.scenarios.insert(
                s.name.clone(),
                Entry {
                    status: name(s.status).into(),
                    at,
                    lab: r.lab.clone(),
                },
            );
        }
    }

    pub fn status(&self, scenario: &str) -> Option<Status> {
        self.scenarios.get(scenario).and_then(|e| parse(&e.status))
    }

    /// The first scenario in book order that does not pass: failing or never run first, then
    /// one that did not apply (the learner's next step is to make it apply).
    pub fn next<'a>(&self, all: &'a [Scenario]) -> Option<&'a str> {
        all.iter()
            .find(|s| matches!(self.status(s.name), None | Some(Status::Fail)))
            .or_else(|| {
                all.iter()
                    .find(|s| self.status(s.name) == Some(Status::NotApplicable))
            })
            .map(|s| s.name)
    }

    /// `ch2  4/7 passing · 1 failing · 2 not applicable · 0 not run`
    pub fn chapter_line(&self, all: &[Scenario], chapter: u8) -> String {
        let of: Vec<&Scenario> = all.iter().filter(|s| s.chapter == chapter).collect();
        let count = |st: Option<Status>| of.iter().filter(|s| self.status(s.name) == st).count();
        let mut out = format!(
            "ch{chapter}  {}/{} passing",
            count(Some(Status::Pass)),
            of.len()
        );
        for (n, what) in [
            (count(Some(Status::Fail)), "failing"),
            (count(Some(Status::NotApplicable)), "not applicable"),
            (count(None), "not run"),
        ] {
            if n > 0 {
                out.push_str(&format!(" · {n} {what}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status) -> super::super::ScenarioResult {
        super::super::ScenarioResult {
            name: name.into(),
            chapter: name[2..3].parse().unwrap(),
            section: String::new(),
            status,
            engine: None,
            duration_ms: 1.0,
            subjects: Vec::new(),
            assertions: Vec::new(),
            figures: Vec::new(),
            notes: Vec::new(),
            not_applicable: None,
            error: None,
        }
    }

    #[test]
    fn next_is_the_first_not_passing_in_book_order_and_progress_survives_a_save() {
        let all = super::super::registry();
        let mut p = Progress::default();
        assert_eq!(p.next(&all), Some(all[0].name));
        let results: Vec<_> = all.iter().map(|s| result(s.name, Status::Pass)).collect();
        p.record(&super::super::report(
            results,
            "lab",
            "started",
            false,
            Default::default(),
        ));
        assert_eq!(p.next(&all), None);
        p.record(&super::super::report(
            vec![
                result("ch2.grpc", Status::NotApplicable),
                result("ch3.stats", Status::Fail),
            ],
            "lab",
            "started",
            false,
            Default::default(),
        ));
        assert_eq!(
            p.next(&all),
            Some("ch3.stats"),
            "a failure before a not-applicable"
        );
        assert!(
            p.chapter_line(&all, 2).contains("1 not applicable"),
            "{}",
            p.chapter_line(&all, 2)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.json");
        p.save(&path).unwrap();
        let back = Progress::load(&path);
        assert_eq!(back.status("ch3.stats"), Some(Status::Fail));
        assert_eq!(back.status("ch2.grpc"), Some(Status::NotApplicable));
    }
}
