//! `lab config schema | validate`.

use crate::cli::ConfigCommand;
use crate::config::{Ports, Run};
use crate::exit;
use crate::render::{self, OK};

use super::Env;

pub fn run(env: &Env, cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Schema => {
            print!("{}", crate::config::raw::schema_json());
            Ok(exit::OK)
        }
        ConfigCommand::Validate => {
            let cfg = match env.load_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let instances: usize = cfg.services.iter().map(|s| s.replicas).sum();
            render::line(format!(
                "{} {}: lab `{}`, {} services, {instances} instances; start order: {}",
                env.style.green(OK),
                env.file.display(),
                cfg.name,
                cfg.services.len(),
                cfg.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
            for s in &cfg.services {
                let what = match &s.run {
                    Run::Builtin(b) => format!("builtin {}", b.as_str()),
                    Run::Command { argv, .. } => format!("command {}", argv.join(" ")),
                };
                let ports = match &s.ports {
                    Ports::Auto => "free ports".to_owned(),
                    Ports::Fixed(p) => p.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
                };
                let role = match (s.role, s.serves.is_empty()) {
                    (Some(r), true) => format!("  role {}", r.as_str()),
                    (Some(r), false) => format!(
                        "  role {} serving {}",
                        r.as_str(),
                        s.serves
                            .iter()
                            .map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    (None, _) => "  no role (`lab check` holds it to no contract; set `role = \"recipe-api\"` or \"web-api\")".to_owned(),
                };
                render::line(format!(
                    "  {} ×{}  {what}  ports {ports}{role}",
                    s.name, s.replicas
                ));
            }
            Ok(exit::OK)
        }
    }
}
