//! `modelplane-serve`: the inference server's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Modelplane's inference server and its tools.
#[derive(Parser)]
#[command(name = "modelplane-serve", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the signature of an ONNX model (digest, opset, inputs and outputs) as JSON.
    Inspect {
        /// Path to the .onnx file.
        model: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { model } => match modelplane_serve::signature::read(&model) {
            Ok(sig) => {
                println!("{}", serde_json::to_string_pretty(&sig).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
