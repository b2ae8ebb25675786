use std::process::ExitCode;

use clap::Parser;

/// Every process of the lab (services, hub, proxy, load generator) allocates through mimalloc:
/// their many small, short-lived buffers cost glibc's malloc several times more (issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = lab::cli::Cli::parse();
    match lab::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let (code, text) = lab::exit_code_of(&e);
            if let Some(text) = text {
                eprintln!("{text}");
            }
            ExitCode::from(code)
        }
    }
}
