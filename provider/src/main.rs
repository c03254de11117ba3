//! `terraform-provider-modelplane`: started by Terraform or OpenTofu. Run by hand it explains
//! itself; `--debug` serves for a debugger; `docs` regenerates the documentation.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "terraform-provider-modelplane",
    version,
    about = "The Modelplane Terraform/OpenTofu provider."
)]
struct Cli {
    /// Serve without TLS and print TF_REATTACH_PROVIDERS, for running under a debugger.
    #[arg(long)]
    debug: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the documentation (Terraform Registry layout) from the schemas and examples.
    Docs {
        /// Folder to write (or check) the pages in.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
        /// Folder with the example HCL.
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
        /// Only check: exit 1 and list the stale pages when the folder differs.
        #[arg(long)]
        check: bool,
    },
    /// The bundled inference server (`modelplane-serve`): how the local platform runs endpoints.
    #[command(disable_help_flag = true)]
    Server {
        /// modelplane-serve's arguments, e.g. `serve --config server.json`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Some(Command::Server { args }) = cli.command {
        let argv = std::iter::once(std::ffi::OsString::from("modelplane-serve")).chain(args);
        std::process::exit(match modelplane_serve::cli::main_from(argv) {
            c if c == std::process::ExitCode::SUCCESS => 0,
            _ => 2,
        });
    }
    let provider: Arc<dyn tfplugin::Provider> = Arc::new(modelplane_provider::Modelplane::new());
    let code = match cli.command {
        None => tfplugin::plugin::run(
            provider,
            tfplugin::plugin::ServeOptions {
                address: modelplane_provider::ADDRESS.to_string(),
                binary_name: "terraform-provider-modelplane".to_string(),
            },
            cli.debug,
        ),
        Some(Command::Docs {
            out,
            examples,
            check,
        }) => docs(provider, &out, &examples, check),
        Some(Command::Server { .. }) => unreachable!("handled above"),
    };
    std::process::exit(code);
}

fn docs(
    provider: Arc<dyn tfplugin::Provider>,
    out: &std::path::Path,
    examples: &std::path::Path,
    check: bool,
) -> i32 {
    let server = match tfplugin::server::ProviderServer::new(provider) {
        Ok(s) => s,
        Err(problems) => {
            eprintln!("schema errors:\n  {}", problems.join("\n  "));
            return 1;
        }
    };
    let pages = tfplugin::docs::render(&server, "modelplane", examples);
    if check {
        let stale = tfplugin::docs::stale(&pages, out);
        if stale.is_empty() {
            return 0;
        }
        eprintln!("docs are stale; run `cargo xtask docs`:");
        for p in stale {
            eprintln!("  {}", out.join(p).display());
        }
        return 1;
    }
    match tfplugin::docs::write(&pages, out) {
        Ok(()) => {
            println!("wrote {} pages to {}", pages.len(), out.display());
            0
        }
        Err(e) => {
            eprintln!("writing {}: {e}", out.display());
            1
        }
    }
}
