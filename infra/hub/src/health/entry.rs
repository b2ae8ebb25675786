//! What the hub knows of each polled instance.

use lab_service_kit::health::Level;

use crate::config::HealthTarget;

/// What the hub knows of one instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub service: String,
    pub instance: usize,
    pub url: String,
    /// None until the first probe answers (or, after [`STARTUP_GRACE`], fails).
    pub state: Option<Level>,
    /// When the state last changed (epoch ms).
    pub since_ms: Option<i64>,
    /// What the last probe saw (`200 OK`, `connection refused`, …).
    pub detail: String,
    pub probes: u64,
}

pub fn entries(targets: &[HealthTarget]) -> Vec<Entry> {
    targets
        .iter()
        .map(|t| Entry {
            service: t.service.clone(),
            instance: t.instance,
            url: t.url.clone(),
            state: None,
            since_ms: None,
            detail: "not probed yet".into(),
            probes: 0,
        })
        .collect()
}
