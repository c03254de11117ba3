//! Shared set-up for the acceptance tests: one provider mirror per test process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use tfplugin::acctest::{Harness, ProviderUnderTest, TestCase};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// A path inside the repository, as an HCL string literal body.
pub fn repo_path(rel: &str) -> String {
    repo().join(rel).display().to_string()
}

pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        Harness::new(
            ProviderUnderTest {
                binary: PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-modelplane")),
                address: modelplane_provider::ADDRESS.to_string(),
                version: modelplane_provider::VERSION.to_string(),
            },
            Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tfacc")),
        )
        .unwrap_or_else(|e| panic!("acceptance harness: {e}"))
    })
}

/// Runs an acceptance test case through real Terraform, when `TF_ACC` is set.
pub fn acc(name: &str, case: TestCase) {
    if !tfplugin::acctest::enabled() {
        eprintln!("{name}: skipped; acceptance tests run with TF_ACC=1 (`cargo xtask test` sets it)");
        return;
    }
    if let Err(e) = harness().run(name, &case) {
        panic!("{e}");
    }
}
