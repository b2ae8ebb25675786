//! One file per subcommand. Each loads what it needs, calls into the crates and renders; the
//! logic lives in `config/`, `check/` and the `infra/` crates.

mod check;
mod config;
mod context;
mod down;
mod env;
mod fault;
mod hub;
mod load;
mod logs;
mod running;
mod status;
mod up;

use crate::cli::{Cli, Command};
use crate::error::exit;
pub use env::Env;
use env::{init_tracing, runtime};

pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    // `serve` runs a service with its own runtime and tracing; nothing of lab's may be set up first.
    if let Command::Serve(args) = &cli.command {
        use crate::cli::ServeWhich;
        return match (args.service, &args.config) {
            (ServeWhich::RecipeApi, _) => lab_recipe_api::main().map_err(anyhow::Error::from),
            (ServeWhich::WebApi, _) => lab_web_api::main().map_err(anyhow::Error::from),
            (ServeWhich::Proxy, Some(config)) => {
                lab_proxy::main(config).map_err(anyhow::Error::from)
            }
            (ServeWhich::Proxy, None) => Err(crate::error::Usage::lab(
                "`lab serve proxy` needs --config FILE (or the config as JSON)",
            )),
            (ServeWhich::Hub, Some(config)) => {
                init_tracing();
                lab_hub::main(config).map_err(anyhow::Error::from)
            }
            (ServeWhich::Hub, None) => Err(crate::error::Usage::lab(
                "`lab serve hub` needs --config FILE (or the config as JSON); `lab hub` runs one from lab.toml",
            )),
            (ServeWhich::Edges, Some(config)) => {
                init_tracing();
                lab_edges::main(config).map_err(anyhow::Error::from)
            }
            (ServeWhich::Edges, None) => Err(crate::error::Usage::lab(
                "`lab serve edges` needs --config FILE (as `lab up` writes it to .lab/edges/edges.json)",
            )),
            (ServeWhich::SlowServer, _) => crate::slow::main(),
        }
        .map(|()| exit::OK);
    }
    init_tracing();
    let env = Env::new(&cli);
    match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Config(c) => config::run(&env, c),
        Command::Init(a) => config::init(&env, a),
        Command::Up(a) => up::run(&env, a),
        Command::Down(a) => runtime()?.block_on(down::run(&env, a)),
        Command::Status(a) => runtime()?.block_on(status::run(&env, a)),
        Command::Logs(a) => runtime()?.block_on(logs::run(&env, a)),
        Command::Fault(c) => runtime()?.block_on(fault::run(&env, c)),
        Command::Check(a) => runtime()?.block_on(check::run(&env, a)),
        Command::Load(a) => load::run(&env, *a),
        Command::Hub(a) => hub::run(&env, a),
        Command::Alerts(a) => runtime()?.block_on(hub::alerts(&env, a)),
        Command::Probe(a) => probe(a),
        Command::Images(crate::cli::ImagesCommand::Build { binary }) => {
            let exe = match binary {
                Some(b) => b,
                None => std::env::current_exe()?,
            };
            match runtime()?.block_on(crate::images::build(&exe)) {
                Ok(built) => {
                    for b in &built {
                        crate::render::line(format!(
                            "{} {} ({}, {:.1} MB)",
                            env.style.green(crate::render::OK),
                            b.reference,
                            b.id.get(..19).unwrap_or(&b.id),
                            b.bytes as f64 / 1e6,
                        ));
                    }
                    if let Some(b) = built.first() {
                        crate::render::line(format!(
                            "  lab images: two layers under each: the libraries ({}), then {}",
                            b.files[1..].join(" "),
                            b.files[0]
                        ));
                    }
                    Ok(exit::OK)
                }
                Err(e) => {
                    eprintln!("lab images build: {e:#}");
                    Ok(exit::FAILED)
                }
            }
        }
        Command::Export(what) => {
            let cfg = env.load_config()?;
            let yaml = match what {
                crate::cli::ExportCommand::Compose => crate::export::compose_yaml(&cfg),
                crate::cli::ExportCommand::K8s => crate::export::k8s_yaml(&cfg),
            }
            .map_err(crate::error::Usage::text)?;
            crate::render::line(yaml.trim_end());
            Ok(exit::OK)
        }
        Command::Bench(crate::cli::BenchCommand::Protocols(a)) => {
            load::compare(&env, a.connections, a.duration, a.proxy_engine, a.json)
        }
    }
}

/// `lab probe URL`: one GET on a small current-thread runtime; quiet on success, the reason on
/// stderr on failure (Docker keeps the last output of a healthcheck).
fn probe(a: crate::cli::ProbeArgs) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = match &a.ca {
        Some(ca) => lab_net::client::Client::with_tls(lab_net::tls::client_config(ca)?),
        None => lab_net::client::Client::new(),
    };
    match rt.block_on(client.get(&a.url, a.timeout)) {
        Ok(r) if r.status.is_success() => Ok(exit::OK),
        Ok(r) => {
            eprintln!("{} answered {}", a.url, r.status);
            Ok(exit::FAILED)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(exit::FAILED)
        }
    }
}
