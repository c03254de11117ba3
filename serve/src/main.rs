//! `modelplane-serve`: the inference server and its tools.

fn main() -> std::process::ExitCode {
    modelplane_serve::cli::main_from(std::env::args_os())
}
