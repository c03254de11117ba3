//! Compiles the plugin protocol from `proto/` with protox (no system protoc needed).

fn main() {
    let protos = ["proto/tfplugin6.proto", "proto/plugin.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds =
        protox::compile(protos, ["proto"]).expect("compiling the plugin protocol .proto files");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("generating the plugin protocol code");
}
