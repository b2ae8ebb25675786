//! Thin binary for a container image holding only recipe-api: `PORT=4000 recipe-api`.
fn main() -> std::process::ExitCode {
    match lab_recipe_api::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recipe-api: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
