//! Thin binary for a container image holding only web-api: `PORT=3000 TARGET=127.0.0.1:4000 web-api`.
fn main() -> std::process::ExitCode {
    match lab_web_api::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
