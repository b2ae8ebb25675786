//! `lab down`: stop the lab recorded under the state dir, whether its supervisor is alive or
//! was killed; prove no port was left bound.

use crate::cli::DownArgs;
use crate::error::exit;
use crate::render::{self, FAIL, OK, WARN};

use super::env::Env;

pub async fn run(env: &Env, args: DownArgs) -> anyhow::Result<u8> {
    let style = env.style;
    let report = lab_supervisor::down::down(&env.state_dir, args.grace, args.volumes).await?;
    if !report.found {
        // Nothing recorded: still remove whatever the engine holds with this lab's labels
        // (state lost, or a docker lab whose `up` died before recording anything).
        if let Ok(cfg) = crate::config::load(&env.file)
            && let Ok(swept) = lab_supervisor::down::sweep_docker(
                &crate::config::lower::docker::docker_spec(&cfg, &env.state_dir),
                args.volumes,
            )
            .await
            && !swept.is_empty()
        {
            print_swept(&swept, &style);
            return Ok(exit::OK);
        }
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
    if let Some(swept) = report.swept.as_ref().filter(|s| !s.is_empty()) {
        print_swept(swept, &style);
    }
    if let Some(e) = &report.docker_error {
        render::line(format!(
            "{} the lab's containers could not be removed: {e}\n  = hint: start the engine and run `lab down` again (the state is kept)",
            style.red(FAIL)
        ));
        return Ok(exit::FAILED);
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

fn print_swept(s: &lab_supervisor::runtime::docker::Swept, style: &crate::render::Style) {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    render::line(format!(
        "{} removed by label: containers {}; networks {}; volumes {}",
        style.green(OK),
        list(&s.containers),
        list(&s.networks),
        list(&s.volumes)
    ));
}
