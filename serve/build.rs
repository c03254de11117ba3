//! Compiles the Open Inference Protocol gRPC API with protox (no system protoc needed).

fn main() {
    println!("cargo:rerun-if-changed=proto/inference.proto");
    let fds = protox::compile(["proto/inference.proto"], ["proto"])
        .expect("compiling proto/inference.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("generating the inference gRPC code");
}
