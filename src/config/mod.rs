//! lab.toml: [`raw`] (serde mirror with spans) → [`validate`] (every error, with line:col) →
//! [`LabConfig`] → [`plan`] (ports and addresses resolved) → `lab_supervisor::Plan`.

pub mod containers;
pub mod diagnostic;
pub mod plan;
pub mod raw;
pub mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use validate::{LabConfig, Ports, Run, Service, Target};

/// Why a lab.toml could not be used. Both map to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Read, parse and validate the lab.toml at `path`.
pub fn load(path: &Path) -> Result<LabConfig, ConfigError> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: display.clone(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    parse(&source, &abs, &display)
}

/// Parse and validate `source` as if read from `path` (shown as `display`).
pub fn parse(source: &str, path: &Path, display: &str) -> Result<LabConfig, ConfigError> {
    let invalid = |items| {
        ConfigError::Invalid(Diagnostics {
            path: display.to_owned(),
            source: source.to_owned(),
            items,
        })
    };
    let raw: raw::RawLab =
        toml::from_str(source).map_err(|e| invalid(vec![diagnostic::from_toml(&e)]))?;
    validate::validate(raw, source, path, display).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_matches_the_config_types() {
        let committed = include_str!("../../schema/lab.schema.json");
        assert!(
            committed == raw::schema_json(),
            "schema/lab.schema.json is stale: regenerate it with `cargo test -p lab -- --ignored regenerate_schemas`"
        );
    }

    #[test]
    fn the_default_lab_is_valid_and_starts_recipe_api_first() {
        let src = include_str!("../../lab.toml");
        let cfg =
            parse(src, Path::new("/x/lab.toml"), "lab.toml").unwrap_or_else(|e| panic!("{e}"));
        let order: Vec<&str> = cfg.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["recipe-api", "web-api"]);
        assert_eq!(
            cfg.service("web-api").unwrap().target,
            Some(Target::Service("recipe-api".into()))
        );
        assert_eq!(
            cfg.service("recipe-api").unwrap().ports,
            Ports::Fixed(vec![4000, 4001])
        );
        let proxy = cfg.proxy.expect("the book's proxy in front of web-api");
        assert_eq!(
            (proxy.frontends[0].service.as_str(), proxy.frontends[0].port),
            ("web-api", 3000)
        );
    }

    #[test]
    fn the_readme_tour_is_a_valid_lab() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n").expect("README has a toml block") + 8;
        let len = readme[start..].find("```").expect("closed block");
        let cfg = parse(
            &readme[start..start + len],
            Path::new("/x/lab.toml"),
            "README.md",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.services.len(), 2);
    }

    #[test]
    fn the_readme_proxy_section_is_valid() {
        let readme = include_str!("../../README.md");
        let at = readme
            .find("[proxy]\nengine")
            .expect("README documents [proxy]");
        let len = readme[at..].find("```").expect("closed block");
        let src = format!(
            "[services.web-api]\nbuiltin = \"web-api\"\nreplicas = 2\n{}",
            &readme[at..at + len]
        );
        let cfg =
            parse(&src, Path::new("/x/lab.toml"), "README.md").unwrap_or_else(|e| panic!("{e}"));
        let p = cfg.proxy.expect("a proxy");
        let f = &p.frontends[0].settings;
        assert_eq!(
            (f.server_maxconn, f.queue_timeout_ms, f.compression.len()),
            (Some(2), 5000, 2)
        );
    }

    #[test]
    fn the_readme_load_preset_is_valid() {
        let readme = include_str!("../../README.md");
        let at = readme
            .find("[load.smoke]")
            .expect("README documents [load.NAME]");
        let len = readme[at..].find("```").expect("closed block");
        let src = format!(
            "[services.recipe-api]\nbuiltin = \"recipe-api\"\n{}",
            &readme[at..at + len]
        );
        let cfg =
            parse(&src, Path::new("/x/lab.toml"), "README.md").unwrap_or_else(|e| panic!("{e}"));
        let p = &cfg.load[0];
        assert_eq!(
            (p.name.as_str(), p.connections, p.rate),
            ("smoke", Some(10), Some(2000.0))
        );
    }

    #[test]
    fn every_error_is_collected_not_just_the_first() {
        let src = "[services.a]\nbuiltin = \"recipe-api\"\nreplicas = 0\ndepends_on = [\"nope\"]\n[services.a.health]\npath = \"health\"\n";
        let Err(ConfigError::Invalid(d)) = parse(src, Path::new("/x/lab.toml"), "lab.toml") else {
            panic!("accepted")
        };
        let text = d.to_string();
        assert_eq!(d.items.len(), 3, "{text}");
        assert!(
            text.contains("lab.toml:3:12: `replicas` must be at least 1"),
            "{text}"
        );
        assert!(
            text.contains("lab.toml:4:15: `a` depends on `nope`"),
            "{text}"
        );
        assert!(
            text.contains("lab.toml:6:8: health path \"health\" must start with '/'"),
            "{text}"
        );
    }

    #[test]
    fn process_model_is_for_builtin_services_and_consistent() {
        let src = "[services.a]\ncommand = [\"node\", \"x.js\"]\nworkers = 2\n[services.b]\nbuiltin = \"recipe-api\"\nrespawn = true\nthreads = 0\n";
        let Err(ConfigError::Invalid(d)) = parse(src, Path::new("/x/lab.toml"), "lab.toml") else {
            panic!("accepted")
        };
        let text = d.to_string();
        assert!(
            text.contains("lab.toml:3:11: `workers` only applies to built-in services"),
            "{text}"
        );
        assert!(
            text.contains("lab.toml:6:11: `respawn` needs `workers` of 2 or more"),
            "{text}"
        );
        assert!(
            text.contains("lab.toml:7:11: `threads` must be from 1 to 256"),
            "{text}"
        );

        let ok = "[services.b]\nbuiltin = \"recipe-api\"\nworkers = 2\nrespawn = true\nthreads = 2\noffload = true\n";
        let cfg = parse(ok, Path::new("/x/lab.toml"), "lab.toml").unwrap_or_else(|e| panic!("{e}"));
        let m = cfg.service("b").unwrap().process;
        assert_eq!(
            (m.workers, m.respawn, m.threads, m.offload),
            (2, true, 2, true)
        );
    }
}
