//! The bundled container image, written as an OCI image layout with no container engine.
//!
//! One layer holds, and nothing else (no shell, no package manager, no distribution):
//!
//! | path | what |
//! |---|---|
//! | `/modelplane-serve` | the server binary, stripped of symbols |
//! | the binary's shared libraries (glibc's loader, `libc`, `libm`, `libgcc_s`) | at the paths the binary asks for, so the binary is self-contained |
//! | `/etc/ssl/certs/ca-certificates.crt` | CA certificates, for object stores over TLS |
//! | `/etc/passwd`, `/etc/group` | `root` and `nonroot` (65532) |
//! | `/etc/modelplane/` | where an engine mounts the endpoint's configuration |
//! | `/var/cache/modelplane/` | artifact cache, owned by `nonroot` |
//! | `/tmp` | mode 1777 |
//!
//! The image runs as `65532:65532`. Every file has mtime 0 and owner 0:0 unless said above,
//! entries are sorted and gzip carries no timestamp, so the same binary gives the same digest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

/// Where the binary lives in the image.
pub const BINARY: &str = "/modelplane-serve";
/// Where the endpoint's configuration is mounted; the default command serves it.
pub const CONFIG_DIR: &str = "/etc/modelplane";
/// The artifact cache in the image.
pub const CACHE_DIR: &str = "/var/cache/modelplane";
/// The non-root user (and group) the image runs as.
pub const USER: u32 = 65532;
/// Media types.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What goes into the image besides the binary.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The server binary (a `modelplane-serve` build).
    pub binary: PathBuf,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision` (the source commit), when known.
    pub revision: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// `created` and the label of the same name (RFC 3339); the epoch when not given, so
    /// that digests are reproducible.
    pub created: Option<String>,
    /// The tag recorded as `org.opencontainers.image.ref.name` in the layout's index.
    pub tag: String,
    /// gzip level of the layer, 0–9.
    pub compression: u32,
}

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Built {
    /// `sha256:…` of the manifest: the image's digest in any registry it is pushed to.
    pub digest: String,
    /// Size of the manifest, the config and the compressed layer: what a pull transfers.
    pub compressed_bytes: u64,
    /// Size of the files in the layer.
    pub uncompressed_bytes: u64,
}

/// Errors name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Other(String),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.to_string();
    move |e| Error::Io(what, e)
}

/// A file of the layer: where it goes, its bytes or `None` for a directory, mode and owner.
struct Entry {
    data: Option<Vec<u8>>,
    mode: u32,
    owner: u32,
}

/// The shared libraries a dynamically linked binary needs, as `ldd` resolves them on this
/// machine (path in the image, file to copy). A static binary needs none.
fn shared_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io(
            "ldd (from libc-bin) is needed to find the binary's libraries",
        ))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": a static binary.
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            return Err(Error::Other(format!(
                "{}: a library is missing on this machine: {line}",
                binary.display()
            )));
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)".
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            libs.push((path.to_string(), PathBuf::from(path)));
        }
    }
    Ok(libs)
}

/// The binary without its symbol table (`strip` from binutils), or as it is when `strip` is
/// not installed.
fn stripped(binary: &Path) -> Result<Vec<u8>, Error> {
    // Unique per call: images may be built side by side in one process.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = std::env::temp_dir().join(format!(
        "modelplane-image-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let ok = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&tmp)
        .arg(binary)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let bytes = if ok {
        std::fs::read(&tmp).map_err(io(tmp.display()))
    } else {
        tracing::warn!("strip is not installed: the binary goes into the image with its symbols");
        std::fs::read(binary).map_err(io(binary.display()))
    };
    let _ = std::fs::remove_file(&tmp);
    bytes
}

fn layer_entries(spec: &Spec) -> Result<BTreeMap<String, Entry>, Error> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let dir = |mode, owner| Entry {
        data: None,
        mode,
        owner,
    };
    let file = |data: Vec<u8>, mode| Entry {
        data: Some(data),
        mode,
        owner: 0,
    };
    files.insert(BINARY.into(), file(stripped(&spec.binary)?, 0o755));
    for (at, from) in shared_libraries(&spec.binary)? {
        let data = std::fs::read(&from).map_err(io(from.display()))?;
        files.insert(at, file(data, 0o755));
    }
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let data = std::fs::read(certs).map_err(io(format!(
        "{} (install the ca-certificates package)",
        certs.display()
    )))?;
    files.insert(certs.display().to_string(), file(data, 0o644));
    files.insert(
        "/etc/passwd".into(),
        file(
            format!(
                "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n"
            )
            .into_bytes(),
            0o644,
        ),
    );
    files.insert(
        "/etc/group".into(),
        file(
            format!("root:x:0:\nnonroot:x:{USER}:\n").into_bytes(),
            0o644,
        ),
    );
    files.insert(CONFIG_DIR.into(), dir(0o755, 0));
    files.insert(CACHE_DIR.into(), dir(0o755, USER));
    files.insert("/home/nonroot".into(), dir(0o700, USER));
    files.insert("/tmp".into(), dir(0o1777, 0));
    // Parent folders of everything, owned by root.
    let parents: Vec<String> = files
        .keys()
        .flat_map(|p| {
            Path::new(p)
                .ancestors()
                .skip(1)
                .filter(|a| a != &Path::new("/"))
                .map(|a| a.display().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for p in parents {
        files.entry(p).or_insert_with(|| dir(0o755, 0));
    }
    Ok(files)
}

/// The layer as an uncompressed tar (sorted, mtime 0).
fn layer_tar(files: &BTreeMap<String, Entry>) -> Result<(Vec<u8>, u64), Error> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    let mut size = 0u64;
    for (path, e) in files {
        let rel = path.trim_start_matches('/');
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(u64::from(e.owner));
        h.set_gid(u64::from(e.owner));
        h.set_mode(e.mode);
        match &e.data {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{rel}/"), std::io::empty())
                    .map_err(io(path))?;
            }
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                size += d.len() as u64;
                b.append_data(&mut h, rel, d.as_slice()).map_err(io(path))?;
            }
        }
    }
    Ok((b.into_inner().map_err(io("layer"))?, size))
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Writes a blob into `out/blobs/sha256/` and returns its descriptor.
fn put_blob(out: &Path, media_type: &str, b: &[u8]) -> Result<serde_json::Value, Error> {
    let digest = sha256(b);
    let path = out
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(&path, b).map_err(io(path.display()))?;
    Ok(json!({ "mediaType": media_type, "digest": digest, "size": b.len() }))
}

/// Builds the image into `out` as an OCI image layout (`oci-layout`, `index.json`, `blobs/`),
/// replacing what was there.
pub fn build(spec: &Spec, out: &Path) -> Result<Built, Error> {
    let files = layer_entries(spec)?;
    let (tar, uncompressed_bytes) = layer_tar(&files)?;
    let diff_id = sha256(&tar);
    let mut gz = flate2::GzBuilder::new().mtime(0).write(
        Vec::new(),
        flate2::Compression::new(spec.compression.min(9)),
    );
    gz.write_all(&tar).map_err(io("gzip"))?;
    let layer = gz.finish().map_err(io("gzip"))?;

    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io(out.display()))?;
    }
    std::fs::create_dir_all(out.join("blobs/sha256")).map_err(io(out.display()))?;

    let created = spec
        .created
        .clone()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("title", Some("modelplane-serve")),
        (
            "description",
            Some("Modelplane's inference server: ONNX models over the Open Inference Protocol v2 (REST and gRPC)"),
        ),
        ("version", Some(spec.version.as_str())),
        ("revision", spec.revision.as_deref()),
        ("source", Some(spec.source.as_str())),
        ("licenses", Some("Apache-2.0")),
        ("created", Some(created.as_str())),
    ] {
        if let Some(v) = v {
            labels.insert(format!("org.opencontainers.image.{k}"), json!(v));
        }
    }
    let config = json!({
        "created": created,
        "architecture": arch(),
        "os": "linux",
        "config": {
            "User": format!("{USER}:{USER}"),
            "Entrypoint": [BINARY],
            "Cmd": ["serve", "--config", format!("{CONFIG_DIR}/config.json")],
            "Env": [
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                format!("MODELPLANE_CACHE_DIR={CACHE_DIR}"),
            ],
            "ExposedPorts": { "8080/tcp": {}, "8081/tcp": {} },
            "WorkingDir": "/",
            "StopSignal": "SIGTERM",
            // Docker's extension of the image config (OCI tools ignore it): the health check,
            // in exec form because there is no shell.
            "Healthcheck": {
                "Test": ["CMD", BINARY, "health"],
                "Interval": 10_000_000_000u64,
                "Timeout": 5_000_000_000u64,
            },
            "Labels": labels,
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "cargo xtask image" }],
    });
    let config_bytes = serde_json::to_vec(&config).map_err(|e| Error::Other(e.to_string()))?;
    let config_desc = put_blob(out, CONFIG, &config_bytes)?;
    let layer_desc = put_blob(out, LAYER, &layer)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
        "annotations": labels,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Other(e.to_string()))?;
    let mut manifest_desc = put_blob(out, MANIFEST, &manifest_bytes)?;
    manifest_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": spec.tag });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc] });
    std::fs::write(
        out.join("index.json"),
        serde_json::to_vec(&index).unwrap_or_default(),
    )
    .map_err(io("index.json"))?;
    std::fs::write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io("oci-layout"))?;
    Ok(Built {
        digest: manifest_desc["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        compressed_bytes: (manifest_bytes.len() + config_bytes.len() + layer.len()) as u64,
        uncompressed_bytes,
    })
}

/// Writes the image's files as a folder tree instead of a layout (owners and modes
/// included, which needs root): what `serve/Containerfile` copies into a `scratch` image, so
/// that `docker build` gives the same contents.
pub fn write_rootfs(spec: &Spec, out: &Path) -> Result<u64, Error> {
    let files = layer_entries(spec)?;
    let mut size = 0;
    for (path, e) in &files {
        let p = out.join(path.trim_start_matches('/'));
        match &e.data {
            None => std::fs::create_dir_all(&p).map_err(io(p.display()))?,
            Some(d) => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent.display()))?;
                }
                std::fs::write(&p, d).map_err(io(p.display()))?;
                size += d.len() as u64;
            }
        }
    }
    // Modes and owners after every file is in place (a 0700 folder would block its own
    // contents otherwise); owners only where we may.
    let root = running_as_root();
    for (path, e) in files.iter().rev() {
        let p = out.join(path.trim_start_matches('/'));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(e.mode))
            .map_err(io(p.display()))?;
        if root {
            std::os::unix::fs::chown(&p, Some(e.owner), Some(e.owner)).map_err(io(p.display()))?;
        }
    }
    Ok(size)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The OCI name of this machine's architecture.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An image read back from an OCI image layout: what a registry push needs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    /// The manifest's bytes, exactly as written (its sha256 is the digest).
    pub manifest: Vec<u8>,
    pub digest: String,
    /// The tag recorded in the index, if any.
    pub tag: Option<String>,
    /// Descriptors of the config and the layers: `(media type, digest, size)`.
    pub blobs: Vec<(String, String, u64)>,
    /// The config's `org.opencontainers.image.*` labels.
    pub labels: BTreeMap<String, String>,
}

impl Layout {
    /// Reads the first image of a layout's `index.json`.
    pub fn open(dir: &Path) -> Result<Layout, Error> {
        let index_path = dir.join("index.json");
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index_path).map_err(io(format!(
                "{} is not an OCI image layout (build one with `cargo xtask image`)",
                dir.display()
            )))?)
            .map_err(|e| Error::Other(format!("{}: {e}", index_path.display())))?;
        let m = index["manifests"]
            .get(0)
            .ok_or_else(|| Error::Other(format!("{}: no image in it", index_path.display())))?;
        let digest = m["digest"].as_str().unwrap_or_default().to_string();
        let tag = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .map(String::from);
        let manifest = std::fs::read(Self::blob_path(dir, &digest)?)
            .map_err(io(format!("manifest {digest}")))?;
        if sha256(&manifest) != digest {
            return Err(Error::Other(format!(
                "{}: the manifest does not match its digest {digest}; the layout is damaged",
                dir.display()
            )));
        }
        let mj: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(|e| Error::Other(format!("manifest {digest}: {e}")))?;
        let desc = |d: &serde_json::Value| {
            (
                d["mediaType"].as_str().unwrap_or_default().to_string(),
                d["digest"].as_str().unwrap_or_default().to_string(),
                d["size"].as_u64().unwrap_or(0),
            )
        };
        let mut blobs = vec![desc(&mj["config"])];
        blobs.extend(mj["layers"].as_array().into_iter().flatten().map(desc));
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(Self::blob_path(dir, &blobs[0].1)?).map_err(io("image config"))?,
        )
        .map_err(|e| Error::Other(format!("image config: {e}")))?;
        let labels = config["config"]["Labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        Ok(Layout {
            dir: dir.to_path_buf(),
            manifest,
            digest,
            tag,
            blobs,
            labels,
        })
    }

    fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, Error> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Other(format!("{digest:?} is not a sha256 digest")))?;
        Ok(dir.join("blobs/sha256").join(hex))
    }

    /// The bytes of a blob of this layout.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let p = Self::blob_path(&self.dir, digest)?;
        std::fs::read(&p).map_err(io(p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(binary: &Path) -> Spec {
        Spec {
            binary: binary.to_path_buf(),
            version: "0.1.0".into(),
            revision: Some("abc".into()),
            source: "https://example.invalid/modelplane".into(),
            created: None,
            tag: "0.1.0".into(),
            compression: 1,
        }
    }

    #[test]
    fn layout_is_reproducible_and_complete() {
        // Any dynamically linked binary will do: this test executable.
        let exe = std::env::current_exe().unwrap();
        let td = tempfile::tempdir().unwrap();
        let a = build(&spec(&exe), &td.path().join("a")).unwrap();
        let b = build(&spec(&exe), &td.path().join("b")).unwrap();
        assert_eq!(a.digest, b.digest, "same input, same digest");
        let l = Layout::open(&td.path().join("a")).unwrap();
        assert_eq!(l.digest, a.digest);
        assert_eq!(l.tag.as_deref(), Some("0.1.0"));
        assert_eq!(l.labels["org.opencontainers.image.revision"], "abc");
        assert_eq!(l.blobs.len(), 2);
        // The layer holds the binary, its loader and libc, the certificates and the users.
        let layer = l.blob(&l.blobs[1].1).unwrap();
        let mut names = Vec::new();
        let mut owners = BTreeMap::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            owners.insert(p.clone(), e.header().uid().unwrap());
            names.push(p);
        }
        for want in [
            "modelplane-serve",
            "etc/ssl/certs/ca-certificates.crt",
            "etc/passwd",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert!(names.iter().any(|n| n.contains("libc.so")), "{names:?}");
        assert!(names.iter().any(|n| n.contains("ld-linux")), "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with("/sh")), "no shell");
        assert_eq!(owners["var/cache/modelplane/"], u64::from(USER));
        // A changed label changes the digest.
        let mut s = spec(&exe);
        s.revision = Some("def".into());
        assert_ne!(build(&s, &td.path().join("c")).unwrap().digest, a.digest);
    }

    #[test]
    fn rootfs_holds_the_layer_files() {
        let exe = std::env::current_exe().unwrap();
        let td = tempfile::tempdir().unwrap();
        write_rootfs(&spec(&exe), td.path()).unwrap();
        for f in [
            "modelplane-serve",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
        ] {
            assert!(td.path().join(f).is_file(), "{f}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(td.path().join("tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
    }

    #[test]
    fn a_damaged_layout_is_refused() {
        let td = tempfile::tempdir().unwrap();
        let err = Layout::open(td.path()).unwrap_err().to_string();
        assert!(err.contains("not an OCI image layout"), "{err}");
        let exe = std::env::current_exe().unwrap();
        let built = build(&spec(&exe), td.path()).unwrap();
        let hex = built.digest.trim_start_matches("sha256:");
        std::fs::write(td.path().join("blobs/sha256").join(hex), b"{}").unwrap();
        let err = Layout::open(td.path()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
