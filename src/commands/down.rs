//! `lab down`: stop the lab recorded under the state dir, whether its supervisor is alive or
//! was killed; prove no port was left bound.

use crate::cli::DownArgs;
use crate::exit;
use crate::render::{self, FAIL, OK, WARN};

use super::Env;

pub async fn run(env: &Env, args: DownArgs) -> anyhow::Result<u8> {
    let style = env.style;
    let report = lab_supervisor::down::down(&env.state_dir, args.grace).await?;
    if !report.found {
        if report.strays.is_empty() {
            render::line(format!(
                "no lab is running here (nothing recorded under {})",
                env.state_dir.display()
            ));
        } else {
            render::line(format!(
                "{} killed {} unrecorded process(es) of this lab: {:?}",
                style.yellow(WARN),
                report.strays.len(),
                report.strays
            ));
        }
        return Ok(exit::OK);
    }
    if report.supervisor_stopped {
        render::line(format!(
            "{} lab {} stopped by its supervisor",
            style.green(OK),
            report.name
        ));
    }
    for (inst, forced) in &report.stopped_here {
        let how = if *forced {
            "killed (SIGKILL after the grace period)"
        } else {
            "stopped"
        };
        render::line(format!("  {inst} {how}"));
    }
    if !report.supervisor_stopped {
        render::line(format!(
            "{} lab {} stopped ({} instance(s) were still running without a supervisor)",
            style.green(OK),
            report.name,
            report.stopped_here.len()
        ));
    }
    if !report.strays.is_empty() {
        render::line(format!(
            "{} also killed unrecorded process(es) of this lab: {:?}",
            style.yellow(WARN),
            report.strays
        ));
    }
    if report.still_bound.is_empty() {
        Ok(exit::OK)
    } else {
        render::line(format!(
            "{} still bound after stop: {}",
            style.red(FAIL),
            report.still_bound.join(", ")
        ));
        Ok(exit::FAILED)
    }
}
