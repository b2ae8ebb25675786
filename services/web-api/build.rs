//! Generates the gRPC client from recipe-api's contract (the single source of truth) with
//! protox, so building needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../recipe-api/contracts/recipe.proto");
    let fds = protox::compile(["recipe.proto"], ["../recipe-api/contracts"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
