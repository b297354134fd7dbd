//! Compiles the .proto files with protox (pure Rust), so no system `protoc` is needed.

const PROTOS: &[&str] = &[
    "types.proto",
    "process.proto",
    "rib.proto",
    "fea.proto",
    "dataplane.proto",
    "routerd.proto",
    "static.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        // Addresses decode as slices of the received buffer, not one allocation each.
        .bytes(".")
        .compile_fds(fds)?;
    for p in PROTOS {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    Ok(())
}
