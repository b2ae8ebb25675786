use std::process::ExitCode;

use clap::Parser;

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
