//! Compiles the gRPC contract with a vendored `protoc`, so a machine with only cargo can build.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let protos = [
        "proto/qbosync/v1/common.proto",
        "proto/qbosync/v1/customer_sync.proto",
        "proto/qbosync/v1/connection.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        // Junk request bodies are INVALID_ARGUMENT, not tonic-prost's INTERNAL (see the codec).
        .codec_path("crate::grpc::codec::ProtoCodec")
        .file_descriptor_set_path(out_dir.join("qbosync_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
