//! lab.toml: [`raw`] (serde mirror with spans) → [`validate`] (every error, with line:col) →
//! [`LabConfig`] → [`lower`] (ports, addresses, the hub's and proxy's configs, containers) →
//! `lab_supervisor::Plan`.

pub mod diagnostic;
pub mod lower;
pub mod model;
pub mod raw;
pub mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::{LabConfig, Ports, Run, Service, Target};
pub use raw::schema_json;

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

/// The largest lab.toml read (a path at /dev/zero is not read until memory runs out).
pub const MAX_FILE: u64 = 1 << 20;

/// Read, parse and validate the lab.toml at `path`.
pub fn load(path: &Path) -> Result<LabConfig, ConfigError> {
    use std::io::Read as _;
    let display = path.display().to_string();
    let read_err = |source| ConfigError::Read {
        path: display.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(read_err(std::io::Error::other(format!(
            "it is over {} MiB, which no lab.toml needs",
            MAX_FILE >> 20
        ))));
    }
    let source = String::from_utf8(bytes)
        .map_err(|_| read_err(std::io::Error::other("it is not UTF-8 text")))?;
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
    let raw: raw::RawLab = toml::from_str(source).map_err(|e| invalid(type_errors(source, &e)))?;
    validate::validate(raw, source, path, display).map_err(invalid)
}

/// Every type error and unknown key of `source`, not just the first that stopped the whole
/// file: it is parsed as TOML again and each section (each service, alert, preset) taken on
/// its own, so one mistake hides no other. Falls back to `first` (a syntax error, say).
fn type_errors(source: &str, first: &toml::de::Error) -> Vec<Diagnostic> {
    use serde::Deserialize;
    use toml::de::{DeTable, DeValue, ValueDeserializer};
    let Ok(doc) = DeTable::parse(source) else {
        return vec![diagnostic::from_toml(first)];
    };
    fn check<'i, T: Deserialize<'i>>(v: toml::Spanned<DeValue<'i>>, out: &mut Vec<Diagnostic>) {
        if let Err(e) = T::deserialize(ValueDeserializer::from(v)) {
            out.push(diagnostic::from_toml(&e));
        }
    }
    // Each entry of a `[section.NAME]` table on its own.
    fn each<'i, T: Deserialize<'i>>(v: toml::Spanned<DeValue<'i>>, out: &mut Vec<Diagnostic>) {
        let span = v.span();
        match v.into_inner() {
            DeValue::Table(t) => {
                for (_, entry) in t {
                    check::<T>(entry, out);
                }
            }
            other => check::<indexmap::IndexMap<String, T>>(toml::Spanned::new(span, other), out),
        }
    }
    let mut out = Vec::new();
    const TOP: [&str; 9] = [
        "name",
        "environment",
        "runtime",
        "services",
        "proxy",
        "hub",
        "alerts",
        "load",
        "faults",
    ];
    for (key, value) in doc.into_inner() {
        match key.get_ref().as_ref() {
            "name" | "environment" => check::<String>(value, &mut out),
            "runtime" => check::<raw::RuntimeKind>(value, &mut out),
            "services" => each::<raw::RawService>(value, &mut out),
            "proxy" => check::<raw::RawProxy>(value, &mut out),
            "hub" => check::<raw::RawHub>(value, &mut out),
            "alerts" => each::<raw::RawAlert>(value, &mut out),
            "load" => each::<raw::RawLoad>(value, &mut out),
            "faults" => check::<raw::RawFaults>(value, &mut out),
            other => {
                let mut d = Diagnostic::new(key.span(), format!("unknown field `{other}`"));
                let list = TOP.map(|k| format!("`{k}`")).join(", ");
                d.hint = Some(match diagnostic::did_you_mean(other, TOP) {
                    Some(best) => format!("did you mean `{best}`? (expected one of {list})"),
                    None => format!("expected one of {list}"),
                });
                out.push(d);
            }
        }
    }
    if out.is_empty() {
        out.push(diagnostic::from_toml(first));
    }
    out.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
    out
}

/// [`validate::runnable`] as the diagnostics of `cfg`'s file, or `None` when all can run.
pub fn unrunnable(cfg: &LabConfig, runtime: raw::RuntimeKind) -> Option<Diagnostics> {
    let items = validate::runnable(cfg, runtime);
    (!items.is_empty()).then(|| Diagnostics {
        path: cfg.display_path.clone(),
        source: cfg.source.clone(),
        items,
    })
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
        let src = "[services.a]\ncommand = [\"node\", \"x.js\"]\nthreads = 2\n[services.b]\nbuiltin = \"recipe-api\"\nrespawn = true\nthreads = 0\n";
        let Err(ConfigError::Invalid(d)) = parse(src, Path::new("/x/lab.toml"), "lab.toml") else {
            panic!("accepted")
        };
        let text = d.to_string();
        assert!(
            text.contains("lab.toml:3:11: `threads` only applies to built-in services"),
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
        // A learner's cluster master declares what it forks; the lab passes nothing on.
        let master = "[services.recipe-api]\ncommand = [\"node\", \"producer-http-basic-master.js\"]\nworkers = 2\n";
        let cfg =
            parse(master, Path::new("/x/lab.toml"), "lab.toml").unwrap_or_else(|e| panic!("{e}"));
        let m = cfg.service("recipe-api").unwrap().process;
        assert_eq!((m.workers, m.respawn), (2, false));
    }

    fn invalid(src: &str) -> String {
        match parse(src, Path::new("/x/lab.toml"), "lab.toml") {
            Err(ConfigError::Invalid(d)) => d.to_string(),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted:\n{src}"),
        }
    }

    fn valid(src: &str) -> LabConfig {
        parse(src, Path::new("/x/lab.toml"), "lab.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn roles_default_to_builtin_then_name_and_several_services_share_one() {
        use raw::{Builtin, Serve};
        let cfg = valid(
            r#"
[services.recipe-api]
builtin = "recipe-api"
[services.recipe-graphql]
command = ["node", "recipe-api/producer-graphql.js"]
role = "recipe-api"
serves = ["graphql"]
[services.web-api]
command = ["node", "web-api/consumer-http-basic.js"]
env = { TARGET = "recipe-api" }
[services.web-graphql]
command = ["node", "web-api/consumer-graphql.js"]
role = "web-api"
target_protocol = "graphql"
env = { TARGET = "recipe-graphql" }
[services.other]
command = ["python3", "x.py"]
"#,
        );
        let role = |n: &str| cfg.service(n).unwrap().role;
        assert_eq!(role("recipe-api"), Some(Builtin::RecipeApi));
        assert_eq!(role("recipe-graphql"), Some(Builtin::RecipeApi));
        assert_eq!(role("web-api"), Some(Builtin::WebApi), "by its name");
        assert_eq!(role("web-graphql"), Some(Builtin::WebApi));
        assert_eq!(role("other"), None);
        let serves = |n: &str| cfg.service(n).unwrap().serves.clone();
        assert_eq!(
            serves("recipe-api"),
            [Serve::Http, Serve::Gzip, Serve::Graphql, Serve::Grpc],
            "the built-in serves everything"
        );
        assert_eq!(serves("recipe-graphql"), [Serve::Graphql]);
        assert!(serves("web-api").is_empty());
        // A command service without a health section is probed over tcp, as the book's
        // producers (no /health route) can answer; with a path, over http.
        assert_eq!(
            cfg.service("recipe-graphql").unwrap().health.check,
            lab_supervisor::HealthCheck::Tcp
        );
        assert_eq!(
            cfg.service("recipe-api").unwrap().health.check,
            lab_supervisor::HealthCheck::Http {
                path: "/health".into()
            }
        );
        let with_path =
            valid("[services.a]\ncommand = [\"x\"]\n[services.a.health]\npath = \"/ping\"\n");
        assert_eq!(
            with_path.service("a").unwrap().health.check,
            lab_supervisor::HealthCheck::Http {
                path: "/ping".into()
            }
        );
    }

    #[test]
    fn serves_https_implies_tls_and_a_command_producer_serves_http_by_default() {
        use raw::{Protocol, Serve};
        let cfg = valid(
            r#"
[services.recipe-api]
command = ["node", "recipe-api/producer-http-basic.js"]
[services.recipe-https]
command = ["node", "recipe-api/producer-https-basic.js"]
role = "recipe-api"
serves = ["https"]
[services.tls-builtin]
builtin = "recipe-api"
protocol = "https"
"#,
        );
        let s = cfg.service("recipe-api").unwrap();
        assert_eq!(
            (s.serves.clone(), s.protocol),
            (vec![Serve::Http], Protocol::Http)
        );
        let s = cfg.service("recipe-https").unwrap();
        assert_eq!(
            (s.serves.clone(), s.protocol),
            (vec![Serve::Https], Protocol::Https)
        );
        assert_eq!(
            cfg.service("tls-builtin").unwrap().serves,
            [Serve::Https, Serve::Gzip, Serve::Graphql, Serve::Grpc]
        );
    }

    #[test]
    fn roles_and_serves_are_validated_with_spans_and_hints() {
        let text = invalid("[services.a]\ncommand = [\"x\"]\nrole = \"recipe\"\n");
        assert!(text.contains("lab.toml:3:8"), "{text}");
        assert!(text.contains("recipe-api"), "{text}");

        let text = invalid(
            "[services.a]\ncommand = [\"x\"]\nrole = \"recipe-api\"\nserves = [\"http\", \"https\"]\n",
        );
        assert!(
            text.contains("lab.toml:4:10: `serves` has both http and https"),
            "{text}"
        );

        let text = invalid(
            "[services.a]\ncommand = [\"x\"]\nrole = \"recipe-api\"\nprotocol = \"http\"\nserves = [\"https\"]\n",
        );
        assert!(
            text.contains("lab.toml:4:12: `protocol = \"http\"`, but `serves` has https"),
            "{text}"
        );

        let text = invalid(
            "[services.w]\ncommand = [\"x\"]\nrole = \"web-api\"\nserves = [\"graphql\"]\n",
        );
        assert!(text.contains("`serves` describes a producer"), "{text}");

        let text = invalid(
            "[services.a]\ncommand = [\"x\"]\nrole = \"recipe-api\"\nserves = [\"soap\"]\n",
        );
        assert!(text.contains("lab.toml:4:"), "{text}");

        // A consumer asking its producer for a protocol the producer does not serve.
        let text = invalid(
            r#"[services.recipe-api]
command = ["x"]
serves = ["http"]
[services.web-api]
command = ["y"]
target_protocol = "grpc"
env = { TARGET = "recipe-api" }
"#,
        );
        assert!(
            text.contains(
                "lab.toml:6:19: `web-api` calls `recipe-api` over grpc, but `recipe-api` serves http"
            ),
            "{text}"
        );
        assert!(text.contains("add \"grpc\" to `serves`"), "{text}");

        let text = invalid(
            r#"[services.recipe-graphql]
command = ["x"]
role = "recipe-api"
serves = ["graphql"]
[services.web-api]
command = ["y"]
env = { TARGET = "recipe-graphql" }
"#,
        );
        assert!(
            text.contains("add `target_protocol = \"graphql\"` to [services.web-api]"),
            "{text}"
        );
    }

    #[test]
    fn what_would_trip_lab_up_is_refused_by_validation() {
        let text = invalid(
            "[services.a]\ncommand = [\"x\\u0000y\"]\n[services.b]\nbuiltin = \"recipe-api\"\nhost = \"not-an-ip\"\nreplicas = 100000\nenv = { \"K\\u0000\" = \"v\" }\n[services.b.health]\ninterval = \"0s\"\n[services.b.backoff]\ninitial = \"0s\"\n[hub]\n[alerts.x]\nhttp = \"http://127.0.0.1:1/\"\nstatus = 999\n",
        );
        for want in [
            "lab.toml:2:11: `command` holds a NUL character",
            "lab.toml:5:8: host \"not-an-ip\" is not an IP address",
            "lab.toml:6:12: `replicas` is at most 256",
            "cannot be an environment variable",
            "lab.toml:9:12: interval \"0s\" is below the least the lab takes",
            "lab.toml:11:11: backoff `initial` \"0s\" is below the least the lab takes",
            "lab.toml:15:10: status 999 is not an HTTP status",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // A program that is not there is named before anything starts (process runtime only).
        let cfg = valid("[services.a]\ncommand = [\"no-such-program-here\", \"x.js\"]\n");
        let d = unrunnable(&cfg, raw::RuntimeKind::Process).expect("refused");
        assert!(
            d.to_string()
                .contains("lab.toml:2:11: `a` runs \"no-such-program-here\", which is not on PATH"),
            "{d}"
        );
        assert!(unrunnable(&cfg, raw::RuntimeKind::Docker).is_none());
        let cfg = valid("[services.a]\ncommand = [\"sh\", \"-c\", \"true\"]\n");
        assert!(unrunnable(&cfg, raw::RuntimeKind::Process).is_none());
        // A file past the size cap is not read to the end.
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("lab.toml");
        std::fs::write(&big, vec![b'#'; (MAX_FILE + 10) as usize]).unwrap();
        let e = load(&big).unwrap_err().to_string();
        assert!(e.contains("over 1 MiB"), "{e}");
    }

    #[test]
    fn hub_retention_reads_sizes_and_ages_with_floors() {
        let cfg = valid(
            "[services.a]\nbuiltin = \"recipe-api\"\n[hub]\nretention = { max_size = \"2GiB\", max_age = \"12h\" }\n",
        );
        let r = cfg.hub.unwrap().config.retention;
        assert_eq!((r.max_bytes, r.max_age_ms), (2 << 30, 12 * 3_600_000));
        let text = invalid(
            "[services.a]\nbuiltin = \"recipe-api\"\n[hub]\nretention = { max_size = \"5MB\", max_age = \"10m\" }\n",
        );
        assert!(
            text.contains("retention `max_size` is under 10MB"),
            "{text}"
        );
        assert!(
            text.contains("retention `max_age` \"10m\" is below the least"),
            "{text}"
        );
        let text = invalid(
            "[services.a]\nbuiltin = \"recipe-api\"\n[hub]\nretention = { max_size = \"lots\" }\n",
        );
        assert!(text.contains("cannot read the size \"lots\""), "{text}");
        // README's [hub] block is a valid hub.
        let readme = include_str!("../../README.md");
        let at = readme
            .find("[hub]\nlogs_port")
            .expect("README documents [hub]");
        let len = readme[at..].find("```").unwrap();
        let src = format!(
            "[services.a]\nbuiltin = \"recipe-api\"\n{}",
            &readme[at..at + len]
        );
        let cfg =
            parse(&src, Path::new("/x/lab.toml"), "README.md").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.hub.unwrap().config.retention.max_bytes, 1_000_000_000);
    }

    #[test]
    fn type_errors_and_unknown_keys_hide_no_other_error() {
        let text = invalid(
            "nam = \"x\"\n[services.a]\nbuiltin = \"recipe-api\"\nreplicas = \"two\"\n[services.b]\nbuiltin = \"web-api\"\nprot = \"http\"\n[hub]\nflush_interval = 10\n",
        );
        for want in [
            "lab.toml:1:1: unknown field `nam`",
            "did you mean `name`?",
            "lab.toml:4:12: invalid type: string \"two\"",
            "lab.toml:7:1: unknown field `prot`",
            "lab.toml:9:18: invalid type: integer `10`",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // A syntax error is still the one it is.
        let text = invalid("[services.a\nbuiltin = 1\n");
        assert!(text.contains("lab.toml:1:"), "{text}");
    }
}
