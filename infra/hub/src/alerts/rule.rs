//! Alert rules and their standing: what a rule checks (a Graphite target compared as Cabot
//! does, an HTTP endpoint, a health state), for how long, and how it stands now.

use lab_service_kit::health::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cmp {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
}

impl Cmp {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "<" => Self::Lt,
            "<=" => Self::Le,
            "==" => Self::Eq,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Check {
    /// Fails when `target` over the last `window_s` compares true against `value`.
    Metric {
        target: String,
        check: Cmp,
        value: f64,
        window_s: i64,
    },
    /// Fails when `GET url` does not answer `status` (and a body matching `text`) in time.
    Http {
        url: String,
        status: u16,
        text: Option<String>,
        timeout_ms: u64,
    },
    /// Fails when an instance of `service` is at `state` or worse.
    Health { service: String, state: Level },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub name: String,
    #[serde(flatten)]
    pub check: Check,
    /// How long it must fail before it fires (milliseconds; 0: at the first failing evaluation).
    #[serde(default)]
    pub for_ms: u64,
    /// `WARNING`, `ERROR` or `CRITICAL` (Cabot's importance).
    #[serde(default = "default_importance")]
    pub importance: String,
    /// Who added it, when not lab.toml (`lab check ch4.alerting`): its events say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

fn default_importance() -> String {
    "ERROR".into()
}

/// A rule's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Failing, not yet for long enough.
    Pending,
    Firing,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleState {
    pub rule: Rule,
    pub status: Status,
    /// When it began failing (epoch ms), while it fails.
    pub failing_since_ms: Option<i64>,
    /// When `status` last changed.
    pub since_ms: i64,
    pub detail: String,
    pub evaluations: u64,
    pub fired: u64,
    /// Added over the API (not from lab.toml).
    pub runtime: bool,
}

impl RuleState {
    pub fn new(rule: Rule, runtime: bool) -> Self {
        Self {
            rule,
            status: Status::Ok,
            failing_since_ms: None,
            since_ms: crate::clock::now_ms(),
            detail: "not evaluated yet".into(),
            evaluations: 0,
            fired: 0,
            runtime,
        }
    }
}
