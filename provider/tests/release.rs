//! Release packaging end to end: the provider packaged with `tfplugin::release` (what
//! `cargo xtask release` writes), served as a provider network mirror over HTTPS, installed
//! by the real `terraform init`, locked for two platforms, and refused when tampered with.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tfplugin::release;

const NAME: &str = "terraform-provider-modelplane";

/// Serves `root` as static files over HTTPS on 127.0.0.1, with a leaf certificate for
/// 127.0.0.1 and localhost from a CA of its own. Returns the base URL, the CA's PEM and
/// the request paths it has answered.
fn serve_mirror(
    rt: &tokio::runtime::Runtime,
    root: PathBuf,
) -> (String, String, Arc<Mutex<Vec<String>>>) {
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();

    async fn file(
        State((root, hits)): State<(PathBuf, Arc<Mutex<Vec<String>>>)>,
        req: Request,
    ) -> Response {
        let path = req.uri().path().to_string();
        hits.lock().unwrap().push(path.clone());
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return StatusCode::NOT_FOUND.into_response();
        }
        match tokio::fs::read(root.join(rel)).await {
            Ok(body) => {
                let ty = if rel.ends_with(".json") {
                    "application/json"
                } else {
                    "application/zip"
                };
                ([(header::CONTENT_TYPE, ty)], body).into_response()
            }
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new()
        .fallback(file)
        .with_state((root, hits.clone()));
    let (base, ca_pem) = crate::common::https::serve(rt, app);
    (format!("{base}/"), ca_pem, hits)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `hashes` of the one provider in a `.terraform.lock.hcl`.
fn locked_hashes(lock: &str) -> BTreeSet<String> {
    let start = lock
        .find("hashes = [")
        .unwrap_or_else(|| panic!("no hashes in the lock file:\n{lock}"));
    let body = &lock[start..];
    let body = &body[..body.find(']').expect("end of hashes")];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn network_mirror_install_lock_and_tamper() {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "release::network_mirror_install_lock_and_tamper: skipped; acceptance tests run with TF_ACC=1"
        );
        return;
    }
    let terraform = tfplugin::acctest::terraform_binary().unwrap();
    let version = modelplane_provider::VERSION;
    let address = modelplane_provider::ADDRESS;
    let [host, namespace, type_name] = address.split('/').collect::<Vec<_>>()[..] else {
        panic!("ADDRESS {address} is not HOST/NAMESPACE/TYPE");
    };
    let tmp = tempfile::Builder::new()
        .prefix("release-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let dist = tmp.path().join("dist");

    // The suite has no arm64 toolchain: the arm64 archive holds the amd64 test build with a
    // marker appended (`cargo xtask release --target aarch64-unknown-linux-gnu` builds the
    // real one). The marker only keeps the two archives' contents, and so their `h1:`
    // checksums, apart, so that the lock file shows one entry per platform: identical
    // archives would give identical checksums, which the lock file deduplicates.
    // Level 1 deflate: five times faster than the default on a 250 MB debug binary built
    // without optimisation; checksums are over the archives as written, whatever the level.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-modelplane"));
    let t = std::time::Instant::now();
    let amd64 =
        release::package_with_level(&bin, NAME, version, "linux", "amd64", &dist, Some(1)).unwrap();
    let stand_in = tmp.path().join("arm64-stand-in").join(NAME);
    std::fs::create_dir_all(stand_in.parent().unwrap()).unwrap();
    std::fs::copy(&bin, &stand_in).unwrap();
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&stand_in)
            .unwrap();
        f.write_all(b"\nmodelplane release test: linux_arm64 stand-in\n")
            .unwrap();
    }
    eprintln!(
        "release: the linux_arm64 archive holds the linux_amd64 test build (with a marker \
         appended): the suite has no arm64 toolchain; `cargo xtask release --target \
         aarch64-unknown-linux-gnu` builds the real one"
    );
    let arm64 =
        release::package_with_level(&stand_in, NAME, version, "linux", "arm64", &dist, Some(1))
            .unwrap();
    let mirror_root = tmp.path().join("mirror");
    let mirror_dir = release::network_mirror(
        &[
            ("linux", "amd64", amd64.clone()),
            ("linux", "arm64", arm64.clone()),
        ],
        host,
        namespace,
        type_name,
        version,
        &mirror_root,
    )
    .unwrap();
    let (h1_amd64, zh_amd64) = (
        release::hash_h1(&amd64).unwrap(),
        release::hash_zh(&amd64).unwrap(),
    );
    let (h1_arm64, zh_arm64) = (
        release::hash_h1(&arm64).unwrap(),
        release::hash_zh(&arm64).unwrap(),
    );
    assert_ne!(h1_amd64, h1_arm64);
    eprintln!(
        "release: packaged and hashed in {:.0}s",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, ca_pem, hits) = serve_mirror(&rt, mirror_root.clone());
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let cli_config = tmp.path().join("terraformrc");
    std::fs::write(
        &cli_config,
        format!("provider_installation {{\n  network_mirror {{\n    url = \"{url}\"\n  }}\n}}\n"),
    )
    .unwrap();
    let config = format!(
        "terraform {{\n  required_providers {{\n    modelplane = {{\n      source  = \"{address}\"\n      version = \"{version}\"\n    }}\n  }}\n}}\n"
    );
    let workdir = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("main.tf"), &config).unwrap();
        d
    };
    let tf = |dir: &Path, args: &[&str]| -> Output {
        Command::new(&terraform)
            .args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            // Go's crypto/x509 reads the trusted CAs from here on Linux.
            .env("SSL_CERT_FILE", &ca)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_CLI_ARGS")
            .env_remove("TF_CLI_ARGS_init")
            .output()
            .unwrap()
    };
    let ok = |dir: &Path, args: &[&str]| -> String {
        let o = tf(dir, args);
        let out = text(&o);
        assert!(o.status.success(), "terraform {}:\n{out}", args.join(" "));
        out
    };
    let prefix = format!("/{host}/{namespace}/{type_name}/");
    let zip_url = |z: &Path| format!("{prefix}{}", z.file_name().unwrap().to_string_lossy());

    // 1. `terraform init` installs from the mirror, checking the archive against the
    // checksums the mirror lists.
    let dir = workdir("work");
    let out = ok(&dir, &["init", "-no-color", "-input=false"]);
    // Terraform names providers of registry.terraform.io without the host.
    let shown = address
        .strip_prefix("registry.terraform.io/")
        .unwrap_or(address);
    assert!(
        out.contains(&format!("Installing {shown} v{version}"))
            && out.contains(&format!("Installed {shown} v{version} (verified checksum)"))
            && out.contains("calculate lock file checksums locally"),
        "{out}"
    );
    {
        let hits = hits.lock().unwrap();
        for want in [
            format!("{prefix}index.json"),
            format!("{prefix}{version}.json"),
            zip_url(&amd64),
        ] {
            assert!(
                hits.contains(&want),
                "the mirror never served {want}: {hits:?}"
            );
        }
        assert!(!hits.contains(&zip_url(&arm64)), "{hits:?}");
    }
    let lock = std::fs::read_to_string(dir.join(".terraform.lock.hcl")).unwrap();
    eprintln!("release: lock file after init:\n{lock}");
    // A mirror's checksums are not signed, so Terraform records only the one it computed
    // from the package it installed: `h1:` of linux_amd64 (over the unpacked files, equal
    // to ours over the zip's entries). The `zh:` ones come only from a registry's signed
    // SHA256SUMS.
    assert_eq!(locked_hashes(&lock), BTreeSet::from([h1_amd64.clone()]));

    // 2. `providers lock` for both platforms, from the same mirror. Without -net-mirror it
    // would ask the origin registry, whatever the CLI configuration says.
    let out = ok(
        &dir,
        &[
            "providers",
            "lock",
            "-no-color",
            &format!("-net-mirror={url}"),
            "-platform=linux_amd64",
            "-platform=linux_arm64",
        ],
    );
    assert!(hits.lock().unwrap().contains(&zip_url(&arm64)), "{out}");
    let lock = std::fs::read_to_string(dir.join(".terraform.lock.hcl")).unwrap();
    eprintln!("release: lock file after providers lock:\n{lock}");
    // Terraform downloads each platform's archive and records the `h1:` it computes; the
    // mirror's `zh:` are not recorded (unsigned, as above).
    let locked = locked_hashes(&lock);
    assert_eq!(
        locked,
        BTreeSet::from([h1_amd64.clone(), h1_arm64.clone()]),
        "zh: {zh_amd64} {zh_arm64}\n{lock}"
    );
    assert!(
        lock.contains(&format!("version     = \"{version}\"")),
        "{lock}"
    );

    // 3. The installed binary runs: Terraform gets its schema through the plugin protocol.
    let o = tf(&dir, &["providers", "schema", "-json"]);
    assert!(o.status.success(), "{}", text(&o));
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &schema["provider_schemas"][address];
    assert!(
        p["resource_schemas"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{}",
        serde_json::to_string(&schema).unwrap()
    );

    // 4. A tampered mirror is refused by a fresh `terraform init`, nothing installed.
    let served = mirror_dir.join(amd64.file_name().unwrap());
    let refused = |name: &str| -> String {
        let fresh = workdir(name);
        let o = tf(&fresh, &["init", "-no-color", "-input=false"]);
        let out = text(&o);
        eprintln!("release: init from the {name} mirror:\n{out}");
        assert!(!o.status.success(), "{out}");
        let installed = fresh
            .join(".terraform/providers")
            .join(host)
            .join(namespace)
            .join(type_name)
            .join(version);
        assert!(!installed.exists(), "{} exists", installed.display());
        // Terraform wraps its messages: one line, one space between words.
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // (a) One byte of the amd64 archive changed after the index was written: the deflate
    // stream no longer decodes, so Terraform fails while computing the `h1:` checksum.
    let mut bytes = std::fs::read(&served).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&served, bytes).unwrap();
    let out = refused("tampered");
    assert!(
        out.contains("failed to verify provider package checksums"),
        "{out}"
    );
    // (b) A well-formed archive with other contents (the arm64 one) in its place: both
    // checksums computed, neither listed.
    std::fs::copy(&arm64, &served).unwrap();
    let out = refused("swapped");
    // Terraform 1.11: "provider package doesn't match the any of the expected checksums".
    assert!(out.contains("expected checksums"), "{out}");
}
