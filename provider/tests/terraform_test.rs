//! `terraform test` of the HCL modules: each of modules/endpoint and the blueprints has
//! `tests/*.tftest.hcl` files (mocked-provider unit runs; real runs on the local platform for
//! modules/endpoint and blueprints/local). Each is run here through real Terraform with the
//! provider under test installed as for the other acceptance tests, in a temporary copy of
//! the repository's `modules/`, `blueprints/` and `examples/quickstart/` (the tests' relative
//! paths and module sources stay valid, and `.terraform/` never lands in the repository).
//!
//! One `#[test]` per module: they run side by side, a failure names its module, and one
//! module reruns alone (`… -- terraform_test::blueprint_local`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;

/// The modules under test: test name and folder.
const MODULES: &[(&str, &str)] = &[
    ("module_endpoint", "modules/endpoint"),
    ("blueprint_aws", "blueprints/aws"),
    ("blueprint_azure", "blueprints/azure"),
    ("blueprint_edge", "blueprints/edge"),
    ("blueprint_hybrid_migration", "blueprints/hybrid-migration"),
    ("blueprint_local", "blueprints/local"),
    (
        "blueprint_on_prem_kubernetes",
        "blueprints/on-prem-kubernetes",
    ),
];

#[test]
fn module_endpoint() {
    terraform_test("module_endpoint");
}

#[test]
fn blueprint_aws() {
    terraform_test("blueprint_aws");
}

#[test]
fn blueprint_azure() {
    terraform_test("blueprint_azure");
}

#[test]
fn blueprint_edge() {
    terraform_test("blueprint_edge");
}

#[test]
fn blueprint_hybrid_migration() {
    terraform_test("blueprint_hybrid_migration");
}

#[test]
fn blueprint_local() {
    terraform_test("blueprint_local");
}

#[test]
fn blueprint_on_prem_kubernetes() {
    terraform_test("blueprint_on_prem_kubernetes");
}

/// Every blueprint and module is in `MODULES` and has test files (a new blueprint without
/// tests fails here, TF_ACC or not).
#[test]
fn every_module_has_terraform_tests() {
    let repo = common::repo();
    let mut missing = Vec::new();
    for parent in ["modules", "blueprints"] {
        for entry in std::fs::read_dir(repo.join(parent)).unwrap() {
            let path = entry.unwrap().path();
            if !path.join("main.tf").is_file() {
                continue;
            }
            let rel = format!("{parent}/{}", path.file_name().unwrap().to_string_lossy());
            if !MODULES.iter().any(|(_, m)| *m == rel) {
                missing.push(format!("{rel}: not in terraform_test.rs MODULES"));
            }
        }
    }
    for (_, rel) in MODULES {
        let tests = repo.join(rel).join("tests");
        let n = std::fs::read_dir(&tests)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".tftest.hcl"))
                })
                .count()
            })
            .unwrap_or(0);
        if n == 0 {
            missing.push(format!("{rel}: no tests/*.tftest.hcl"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

fn terraform_test(name: &str) {
    if !tfplugin::acctest::enabled() {
        eprintln!("terraform_test::{name}: skipped; acceptance tests run with TF_ACC=1");
        return;
    }
    let rel = MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, rel)| *rel)
        .unwrap();
    let (wd, _guard) = common::harness()
        .workdir(&format!("tftest-{name}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let repo = common::repo();
    for dir in ["modules", "blueprints", "examples/quickstart"] {
        copy_tree(&repo.join(dir), &wd.dir.join(dir))
            .unwrap_or_else(|e| panic!("copying {dir}: {e}"));
    }
    // The local platform's state (servers, stores) in a folder of its own; its servers are
    // killed when it drops, whatever happened.
    let local = common::Local::new(&format!("tftest-{name}"));
    let module = wd.dir.join(rel);
    let terraform = |args: &[&str]| {
        let mut c = wd.command(args);
        c.current_dir(&module)
            .env("XDG_STATE_HOME", local.path())
            .env_remove("TF_CLI_ARGS_init")
            .env_remove("TF_CLI_ARGS_test");
        c.output()
            .unwrap_or_else(|e| panic!("{name}: running terraform: {e}"))
    };

    let start = Instant::now();
    let init = terraform(&["init", "-input=false", "-no-color"]);
    assert!(
        init.status.success(),
        "{name}: terraform init failed ({}):\n{}{}",
        init.status,
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr)
    );
    let init_time = start.elapsed();

    let start = Instant::now();
    let test = terraform(&["test", "-no-color", "-json"]);
    let test_time = start.elapsed();
    let report = Report::parse(&String::from_utf8_lossy(&test.stdout));
    eprintln!(
        "terraform_test::{name}: {rel}: init {}, test {}: {}",
        secs(init_time),
        secs(test_time),
        report.line()
    );
    let ok = test.status.success()
        && report.status.as_deref() == Some("pass")
        && report.passed == report.runs
        && report.runs > 0
        && report.not_passed.is_empty();
    assert!(
        ok,
        "{name}: terraform test in {rel} failed ({}): {}\n{}\n{}",
        test.status,
        report.line(),
        report.messages.join("\n"),
        String::from_utf8_lossy(&test.stderr)
    );
    let left = local.processes();
    assert!(
        left.is_empty(),
        "{name}: terraform test left servers running: pids {left:?}"
    );
}

/// What `terraform test -json` said.
#[derive(Default)]
struct Report {
    /// Run blocks found, in all files.
    runs: usize,
    status: Option<String>,
    passed: usize,
    failed: usize,
    errored: usize,
    skipped: usize,
    /// `FILE/RUN: STATUS` of each run that did not pass.
    not_passed: Vec<String>,
    /// Every message, diagnostics with their detail: the failure's explanation.
    messages: Vec<String>,
}

impl Report {
    fn parse(out: &str) -> Report {
        let mut r = Report::default();
        for line in out.lines() {
            let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
                r.messages.push(line.to_string());
                continue;
            };
            let message = j["@message"].as_str().unwrap_or_default().to_string();
            match j["type"].as_str().unwrap_or_default() {
                "test_abstract" => {
                    r.runs = j["test_abstract"]
                        .as_object()
                        .map(|files| {
                            files
                                .values()
                                .map(|runs| runs.as_array().map_or(0, Vec::len))
                                .sum()
                        })
                        .unwrap_or(0);
                }
                "test_run" => {
                    let run = &j["test_run"];
                    // Progress lines ("in progress", "tearing down") say nothing of the outcome.
                    let Some(status) = run["status"].as_str() else {
                        continue;
                    };
                    if status != "pass" {
                        r.not_passed.push(format!(
                            "{}/{}: {status}",
                            run["path"].as_str().unwrap_or_default(),
                            run["run"].as_str().unwrap_or_default()
                        ));
                    }
                }
                "test_summary" => {
                    let s = &j["test_summary"];
                    r.status = s["status"].as_str().map(String::from);
                    let n = |k: &str| s[k].as_u64().unwrap_or(0) as usize;
                    (r.passed, r.failed, r.errored, r.skipped) =
                        (n("passed"), n("failed"), n("errored"), n("skipped"));
                }
                "diagnostic" => {
                    let d = &j["diagnostic"];
                    let at = match (j["@testfile"].as_str(), j["@testrun"].as_str()) {
                        (Some(f), Some(run)) => format!("{f}/{run}: "),
                        (Some(f), None) => format!("{f}: "),
                        _ => String::new(),
                    };
                    let range = d["range"]["filename"]
                        .as_str()
                        .map(|f| {
                            format!(
                                " ({f}:{})",
                                d["range"]["start"]["line"].as_u64().unwrap_or(0)
                            )
                        })
                        .unwrap_or_default();
                    let mut m = format!(
                        "{at}{}: {}{range}",
                        d["severity"].as_str().unwrap_or("error"),
                        d["summary"].as_str().unwrap_or_default(),
                    );
                    // A failed assertion: its condition and the values it saw.
                    if let Some(code) = d["snippet"]["code"].as_str() {
                        m.push_str(&format!("\n  {}", code.trim()));
                    }
                    for v in d["snippet"]["values"].as_array().into_iter().flatten() {
                        m.push_str(&format!(
                            "\n    {} {}",
                            v["traversal"].as_str().unwrap_or_default(),
                            v["statement"].as_str().unwrap_or_default()
                        ));
                    }
                    let detail = d["detail"].as_str().unwrap_or_default();
                    if !detail.is_empty() {
                        m.push_str(&format!("\n  {}", detail.replace('\n', "\n  ")));
                    }
                    r.messages.push(m);
                    continue;
                }
                _ => {}
            }
            r.messages.push(message);
        }
        r
    }

    fn line(&self) -> String {
        let mut s = format!(
            "{} runs: {} passed, {} failed, {} errored, {} skipped",
            self.runs, self.passed, self.failed, self.errored, self.skipped
        );
        if !self.not_passed.is_empty() {
            s.push_str(&format!(" [{}]", self.not_passed.join(", ")));
        }
        s
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Copies a folder, without what Terraform left in it (`.terraform/`, lock files, state).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == ".terraform" || n == ".terraform.lock.hcl" || n.starts_with("terraform.tfstate") {
            continue;
        }
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
