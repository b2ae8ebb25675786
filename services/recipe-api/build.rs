//! Generates the gRPC server and client from contracts/recipe.proto with protox (a pure-Rust
//! protoc), so building needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=contracts/recipe.proto");
    let fds = protox::compile(["contracts/recipe.proto"], ["contracts"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
