//! The store as a Graphite source, and target evaluation over it (renders, alerts and the
//! dashboard's charts all evaluate through [`render_targets`]).

use super::graphite::{self, Ctx, Source};
use crate::store::Store;

/// The store as a Graphite source.
pub struct StoreSource<'a>(pub &'a Store);

impl Source for StoreSource<'_> {
    fn names(&self) -> Vec<String> {
        self.0.series_names()
    }
    fn points(&self, name: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
        self.0.points(name, from, until).unwrap_or_default()
    }
    fn step(&self) -> i64 {
        self.0.step
    }
}

/// Render targets over `[from, until]` (blocking: reads the store).
pub fn render_targets(
    store: &Store,
    targets: &[String],
    from: i64,
    until: i64,
    max_points: Option<usize>,
) -> Result<Vec<graphite::Series>, graphite::RenderError> {
    let source = StoreSource(store);
    let ctx = Ctx::new(&source, from, until);
    if targets.len() > graphite::MAX_TARGETS {
        return Err(graphite::RenderError(format!(
            "{} targets in one request; at most {}",
            targets.len(),
            graphite::MAX_TARGETS
        )));
    }
    let mut out = Vec::new();
    for t in targets {
        let expr = graphite::parse_target(t)?;
        let mut series = graphite::eval(&ctx, &expr)?;
        if let Some(max) = max_points {
            series.iter_mut().for_each(|s| s.limit_points(max));
        }
        out.extend(series);
    }
    Ok(out)
}
