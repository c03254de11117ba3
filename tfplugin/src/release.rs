//! Release artifacts in the conventions of the Terraform Registry and of goreleaser-built
//! providers, and Terraform's provider network mirror layout.
//!
//! For a provider `terraform-provider-NAME` at version `VERSION`:
//!
//! - one archive per platform, `terraform-provider-NAME_VERSION_OS_ARCH.zip`, holding the
//!   single executable `terraform-provider-NAME_vVERSION` ([`package`]);
//! - `terraform-provider-NAME_VERSION_manifest.json`, naming the plugin protocol versions
//!   ([`manifest`]);
//! - `terraform-provider-NAME_VERSION_SHA256SUMS` over the archives and the manifest
//!   ([`sha256sums`]), which a release signs (`…_SHA256SUMS.sig`, a detached GPG signature);
//! - the two checksum schemes Terraform records in `.terraform.lock.hcl`: `zh:` (SHA-256 of
//!   the archive, [`hash_zh`]) and `h1:` (Go's `dirhash` Hash1 over the archive's contents,
//!   [`hash_h1`]);
//! - a static tree for Terraform's provider network mirror protocol ([`network_mirror`]).
//!
//! Archives are deterministic: the same binary gives the same bytes (fixed timestamps,
//! fixed mode, one entry), so their `zh:` checksums are reproducible.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The plugin protocol versions this library serves, as the release manifest lists them.
pub const PROTOCOL_VERSIONS: &[&str] = &["6.0"];

/// `NAME_VERSION_OS_ARCH.zip`: the archive name the Registry and goreleaser use.
pub fn archive_name(name: &str, version: &str, os: &str, arch: &str) -> String {
    format!("{name}_{version}_{os}_{arch}.zip")
}

/// `NAME_vVERSION`: the executable's name inside the archive (the Registry's convention,
/// which Terraform's installer also accepts in a filesystem mirror).
pub fn executable_name(name: &str, version: &str) -> String {
    format!("{name}_v{version}")
}

/// Writes `out_dir/NAME_VERSION_OS_ARCH.zip` holding `binary` as the one file
/// `NAME_vVERSION`, mode 0755, deflated; returns the archive's path.
///
/// The archive is deterministic: its entry's modification time is the zip epoch
/// (1980-01-01 00:00:00) whatever the binary's, so two runs over the same binary give the
/// same bytes. `name` is the full program name, e.g. `terraform-provider-example`.
pub fn package(
    binary: &Path,
    name: &str,
    version: &str,
    os: &str,
    arch: &str,
    out_dir: &Path,
) -> io::Result<PathBuf> {
    package_with_level(binary, name, version, os, arch, out_dir, None)
}

/// [`package`] at a given deflate level (1 fastest … 9 smallest; `None`: the default, 6).
///
/// Level 1 is several times faster and about a quarter larger: worth it where the archive
/// is thrown away (tests), since the `h1:` checksum depends only on the contents.
pub fn package_with_level(
    binary: &Path,
    name: &str,
    version: &str,
    os: &str,
    arch: &str,
    out_dir: &Path,
    level: Option<i32>,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let dest = out_dir.join(archive_name(name, version, os, arch));
    let tmp = out_dir.join(format!(
        ".{}.incoming",
        dest.file_name().unwrap().to_string_lossy()
    ));
    let mut input = BufReader::new(File::open(binary).map_err(|e| annotate(e, "opening", binary))?);
    let result = (|| {
        let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(&tmp)?));
        let options = zip::write::FileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(level)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o755)
            .large_file(std::fs::metadata(binary)?.len() >= u32::MAX as u64);
        zip.start_file(executable_name(name, version), options)?;
        io::copy(&mut input, &mut zip)?;
        zip.finish()?.flush()?;
        std::fs::rename(&tmp, &dest)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(annotate(e, "writing", &dest));
    }
    Ok(dest)
}

/// Writes `out_dir/NAME_VERSION_manifest.json`, the release manifest the Registry reads:
/// `{"version":1,"metadata":{"protocol_versions":["6.0"]}}`. Returns its path.
pub fn manifest(out_dir: &Path, name: &str, version: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{name}_{version}_manifest.json"));
    // Written out by hand to keep goreleaser's key order whatever serde_json's features.
    let protocols = serde_json::to_string(PROTOCOL_VERSIONS).map_err(io::Error::other)?;
    let body = format!("{{\"version\":1,\"metadata\":{{\"protocol_versions\":{protocols}}}}}\n");
    std::fs::write(&path, body).map_err(|e| annotate(e, "writing", &path))?;
    Ok(path)
}

/// Writes `out_dir/NAME_VERSION_SHA256SUMS`: one line `HEX  FILENAME` per file given (the
/// archives and, as goreleaser-built providers do, the manifest), sorted by file name, in
/// `sha256sum`'s format. Returns its path; a release signs this file.
pub fn sha256sums(
    files: &[PathBuf],
    out_dir: &Path,
    name: &str,
    version: &str,
) -> io::Result<PathBuf> {
    let mut lines = Vec::with_capacity(files.len());
    for f in files {
        let file_name = f
            .file_name()
            .ok_or_else(|| io::Error::other(format!("{}: no file name", f.display())))?
            .to_string_lossy()
            .into_owned();
        lines.push((file_name, hex::encode(sha256_file(f)?)));
    }
    lines.sort();
    lines.dedup();
    let mut body = String::new();
    for (file_name, sum) in lines {
        let _ = writeln!(body, "{sum}  {file_name}");
    }
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{name}_{version}_SHA256SUMS"));
    std::fs::write(&path, body).map_err(|e| annotate(e, "writing", &path))?;
    Ok(path)
}

/// The `zh:` checksum of an archive: `zh:` and the hex SHA-256 of its bytes (what
/// `SHA256SUMS` lists, and the "legacy zip hash" Terraform records for a signed release).
pub fn hash_zh(zip: &Path) -> io::Result<String> {
    Ok(format!("zh:{}", hex::encode(sha256_file(zip)?)))
}

/// The `h1:` checksum of an archive, Go's `golang.org/x/mod/sumdb/dirhash.HashZip` with
/// `Hash1` (what Terraform's `getproviders.PackageHashV1` computes): for each entry of the
/// zip, sorted by name, the line `HEX(SHA-256(contents))  NAME\n`; then `h1:` and the
/// standard base64 of the SHA-256 of those lines.
///
/// Only names and contents count: compression, timestamps and modes do not. It equals
/// the same hash over the unpacked folder when the zip holds only files (no folder
/// entries), which is how Terraform checks an installed provider against a lock file.
pub fn hash_h1(zip: &Path) -> io::Result<String> {
    let mut archive = zip::ZipArchive::new(BufReader::new(
        File::open(zip).map_err(|e| annotate(e, "opening", zip))?,
    ))?;
    let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
    names.sort();
    let mut summary = Sha256::new();
    for entry in &names {
        if entry.contains('\n') {
            return Err(io::Error::other(
                "dirhash: filenames with newlines are not supported",
            ));
        }
        let mut file = archive.by_name(entry)?;
        let mut h = Sha256::new();
        io::copy(&mut file, &mut h)?;
        summary.update(format!("{:x}  {entry}\n", h.finalize()));
    }
    Ok(format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    ))
}

/// One platform's archive for [`network_mirror`]: `(os, arch, path to the zip)`.
pub type MirrorArchive<'a> = (&'a str, &'a str, PathBuf);

/// Writes Terraform's provider network mirror protocol as static files under `root`:
///
/// - `root/HOSTNAME/NAMESPACE/TYPE/index.json`: `{"versions":{"VERSION":{}}}` (versions
///   already listed there are kept);
/// - `root/HOSTNAME/NAMESPACE/TYPE/VERSION.json`:
///   `{"archives":{"OS_ARCH":{"url":"ARCHIVE.zip","hashes":["h1:…","zh:…"]}}}`;
/// - the archives copied beside them (the URLs are relative to `VERSION.json`).
///
/// Served over HTTPS at `https://HOST/PATH/`, it is what a CLI configuration's
/// `provider_installation { network_mirror { url = "https://HOST/PATH/" } }` installs from.
/// Terraform checks a downloaded archive against `hashes` before installing it. Returns
/// the `root/HOSTNAME/NAMESPACE/TYPE` folder.
pub fn network_mirror(
    archives: &[MirrorArchive<'_>],
    hostname: &str,
    namespace: &str,
    type_name: &str,
    version: &str,
    root: &Path,
) -> io::Result<PathBuf> {
    let dir = root.join(hostname).join(namespace).join(type_name);
    std::fs::create_dir_all(&dir)?;
    let mut platforms = serde_json::Map::new();
    for (os, arch, zip) in archives {
        let file_name = zip
            .file_name()
            .ok_or_else(|| io::Error::other(format!("{}: no file name", zip.display())))?;
        let dest = dir.join(file_name);
        if std::fs::canonicalize(zip).ok() != std::fs::canonicalize(&dest).ok() {
            std::fs::copy(zip, &dest).map_err(|e| annotate(e, "copying", zip))?;
        }
        platforms.insert(
            format!("{os}_{arch}"),
            serde_json::json!({
                "url": file_name.to_string_lossy(),
                "hashes": [hash_h1(&dest)?, hash_zh(&dest)?],
            }),
        );
    }
    let version_json = serde_json::json!({ "archives": platforms });
    write_json(&dir.join(format!("{version}.json")), &version_json)?;

    let index = dir.join("index.json");
    let mut versions = std::fs::read(&index)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("versions").and_then(|v| v.as_object()).cloned())
        .unwrap_or_default();
    versions.insert(version.to_string(), serde_json::json!({}));
    write_json(&index, &serde_json::json!({ "versions": versions }))?;
    Ok(dir)
}

fn write_json(path: &Path, v: &serde_json::Value) -> io::Result<()> {
    let body = serde_json::to_string_pretty(v).map_err(io::Error::other)?;
    std::fs::write(path, body + "\n").map_err(|e| annotate(e, "writing", path))
}

fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut f = File::open(path).map_err(|e| annotate(e, "opening", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIN: &[u8] = b"#!/bin/sh\necho example\n";

    fn binary(dir: &Path) -> PathBuf {
        let p = dir.join("build-output");
        std::fs::write(&p, BIN).unwrap();
        p
    }

    #[test]
    fn package_is_deterministic_with_one_executable_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = binary(tmp.path());
        let a = package(
            &bin,
            "terraform-provider-example",
            "1.2.3",
            "linux",
            "amd64",
            &tmp.path().join("a"),
        )
        .unwrap();
        assert_eq!(
            a.file_name().unwrap(),
            "terraform-provider-example_1.2.3_linux_amd64.zip"
        );
        // A later build of the same bytes (another mtime) gives the same archive.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(&bin, BIN).unwrap();
        let b = package(
            &bin,
            "terraform-provider-example",
            "1.2.3",
            "linux",
            "amd64",
            &tmp.path().join("b"),
        )
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let mut z = zip::ZipArchive::new(File::open(&a).unwrap()).unwrap();
        assert_eq!(z.len(), 1);
        let mut f = z.by_index(0).unwrap();
        assert_eq!(f.name(), "terraform-provider-example_v1.2.3");
        assert_eq!(f.unix_mode().unwrap() & 0o7777, 0o755);
        assert!(f.is_file());
        let t = f.last_modified();
        assert_eq!((t.year(), t.month(), t.day(), t.hour()), (1980, 1, 1, 0));
        let mut body = Vec::new();
        f.read_to_end(&mut body).unwrap();
        assert_eq!(body, BIN);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(tmp.path().join("a")).unwrap().count(), 1);
    }

    /// The vector was computed once, independently of this code, with coreutils, following
    /// Go's dirhash.Hash1:
    ///
    /// ```sh
    /// f=$(printf '#!/bin/sh\necho example\n' | sha256sum | cut -d' ' -f1)
    /// printf '%s  %s\n' "$f" terraform-provider-example_v1.2.3 \
    ///   | sha256sum | cut -d' ' -f1 | xxd -r -p | base64
    /// # Xs+T9WcJILxCyO4itgttV49a5YiHdKHaOnl/vldJPQ0=
    /// ```
    #[test]
    fn hash_h1_matches_go_dirhash_for_a_package() {
        let tmp = tempfile::tempdir().unwrap();
        let zip = package(
            &binary(tmp.path()),
            "terraform-provider-example",
            "1.2.3",
            "linux",
            "amd64",
            tmp.path(),
        )
        .unwrap();
        assert_eq!(
            hash_h1(&zip).unwrap(),
            "h1:Xs+T9WcJILxCyO4itgttV49a5YiHdKHaOnl/vldJPQ0="
        );
        // zh: is the plain SHA-256 of the archive's bytes.
        let mut h = Sha256::new();
        h.update(std::fs::read(&zip).unwrap());
        assert_eq!(hash_zh(&zip).unwrap(), format!("zh:{:x}", h.finalize()));
    }

    /// Entries are hashed in sorted order, whatever their order in the zip, and compression
    /// does not count. Vector computed once with coreutils:
    ///
    /// ```sh
    /// a=$(printf 'sea\n' | sha256sum | cut -d' ' -f1); b=$(printf 'bee\n' | sha256sum | cut -d' ' -f1)
    /// { printf '%s  %s\n' "$a" a/c.txt; printf '%s  %s\n' "$b" b.txt; } \
    ///   | sha256sum | cut -d' ' -f1 | xxd -r -p | base64
    /// # SUcRs+7Krr+F0gWBE99O1nk04XlkI/evl4QbkdB6y5A=
    /// ```
    #[test]
    fn hash_h1_sorts_entries_and_ignores_compression() {
        let tmp = tempfile::tempdir().unwrap();
        for (i, method) in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ]
        .into_iter()
        .enumerate()
        {
            let path = tmp.path().join(format!("{i}.zip"));
            let mut z = zip::ZipWriter::new(File::create(&path).unwrap());
            let o = zip::write::FileOptions::default().compression_method(method);
            z.start_file("b.txt", o).unwrap();
            z.write_all(b"bee\n").unwrap();
            z.start_file("a/c.txt", o).unwrap();
            z.write_all(b"sea\n").unwrap();
            z.finish().unwrap();
            assert_eq!(
                hash_h1(&path).unwrap(),
                "h1:SUcRs+7Krr+F0gWBE99O1nk04XlkI/evl4QbkdB6y5A="
            );
        }
    }

    #[test]
    fn sums_manifest_and_mirror_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let bin = binary(tmp.path());
        let n = "terraform-provider-example";
        let amd = package(&bin, n, "1.2.3", "linux", "amd64", &out).unwrap();
        let arm = package(&bin, n, "1.2.3", "linux", "arm64", &out).unwrap();
        let m = manifest(&out, n, "1.2.3").unwrap();
        assert_eq!(
            m.file_name().unwrap(),
            "terraform-provider-example_1.2.3_manifest.json"
        );
        assert_eq!(
            std::fs::read_to_string(&m).unwrap(),
            "{\"version\":1,\"metadata\":{\"protocol_versions\":[\"6.0\"]}}\n"
        );

        let sums = sha256sums(&[arm.clone(), m.clone(), amd.clone()], &out, n, "1.2.3").unwrap();
        assert_eq!(
            sums.file_name().unwrap(),
            "terraform-provider-example_1.2.3_SHA256SUMS"
        );
        let text = std::fs::read_to_string(&sums).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let zh = |p: &Path| hash_zh(p).unwrap()[3..].to_string();
        assert_eq!(
            lines,
            vec![
                format!(
                    "{}  terraform-provider-example_1.2.3_linux_amd64.zip",
                    zh(&amd)
                ),
                format!(
                    "{}  terraform-provider-example_1.2.3_linux_arm64.zip",
                    zh(&arm)
                ),
                format!("{}  terraform-provider-example_1.2.3_manifest.json", zh(&m)),
            ]
        );

        let root = tmp.path().join("mirror");
        let dir = network_mirror(
            &[
                ("linux", "amd64", amd.clone()),
                ("linux", "arm64", arm.clone()),
            ],
            "registry.example.com",
            "acme",
            "example",
            "1.2.3",
            &root,
        )
        .unwrap();
        assert_eq!(dir, root.join("registry.example.com/acme/example"));
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        assert_eq!(
            read(dir.join("index.json")),
            serde_json::json!({"versions": {"1.2.3": {}}})
        );
        let h1 = hash_h1(&amd).unwrap();
        assert_eq!(
            read(dir.join("1.2.3.json")),
            serde_json::json!({"archives": {
                "linux_amd64": {"url": "terraform-provider-example_1.2.3_linux_amd64.zip", "hashes": [h1, hash_zh(&amd).unwrap()]},
                "linux_arm64": {"url": "terraform-provider-example_1.2.3_linux_arm64.zip", "hashes": [h1, hash_zh(&arm).unwrap()]},
            }})
        );
        assert_eq!(
            std::fs::read(dir.join("terraform-provider-example_1.2.3_linux_amd64.zip")).unwrap(),
            std::fs::read(&amd).unwrap()
        );
        // A second version is added to the index, not put in place of the first.
        network_mirror(
            &[("linux", "amd64", amd)],
            "registry.example.com",
            "acme",
            "example",
            "1.3.0",
            &root,
        )
        .unwrap();
        assert_eq!(
            read(dir.join("index.json")),
            serde_json::json!({"versions": {"1.2.3": {}, "1.3.0": {}}})
        );
    }
}
