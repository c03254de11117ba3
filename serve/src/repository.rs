//! Model repositories: where versions live. Layout `NAME/VERSION/model.onnx` beside
//! `model.json` (sha256, size, signature, lineage, …). The trait is async and hands back a
//! local file, so object-store backends stream into a local cache behind the same interface.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The part of `model.json` the server needs; other fields are kept as they are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelMeta {
    pub name: String,
    pub version: String,
    pub sha256: String,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("model {name} version {version} is not in the repository at {root}")]
    NotFound {
        name: String,
        version: String,
        root: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid model.json: {reason}")]
    BadMeta { path: String, reason: String },
    #[error("unsupported repository {0:?}: use a directory, file://PATH, s3://BUCKET or az://ACCOUNT/CONTAINER")]
    Unsupported(String),
    #[error("{location}: {reason}")]
    Remote { location: String, reason: String },
}

/// A store of model versions.
#[async_trait::async_trait]
pub trait ModelRepository: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Every version of `name`, ascending (numeric versions compare as numbers).
    async fn versions(&self, name: &str) -> Result<Vec<String>, RepoError>;
    /// The version's `model.json`.
    async fn metadata(&self, name: &str, version: &str) -> Result<ModelMeta, RepoError>;
    /// A local path to the artifact (remote backends download it to a cache first).
    async fn fetch(&self, name: &str, version: &str) -> Result<PathBuf, RepoError>;
    /// The drift baseline stored beside the model (`baseline.json`), if any.
    async fn baseline(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<crate::drift::Baseline>, RepoError>;
    /// The `*.json` files of a registry folder (a shared endpoint's attachments): file name
    /// and a stamp that changes when the file does (size and time, or the ETag).
    async fn list_registry(&self, folder: &str) -> Result<Vec<(String, String)>, RepoError>;
    /// One file of a registry folder; `None` when it is gone.
    async fn read_registry(&self, folder: &str, file: &str) -> Result<Option<Vec<u8>>, RepoError>;
}

/// Opens a repository from a path or URL: a directory, `file://PATH`, `s3://…` or `az://…`
/// (see [`crate::objects`]). Remote artifacts are downloaded into `cache_dir`.
pub async fn open(location: &str, cache_dir: &Path) -> Result<Box<dyn ModelRepository>, RepoError> {
    if let Some(p) = location.strip_prefix("file://") {
        return Ok(Box::new(LocalRepository::new(p)));
    }
    if location.starts_with("s3://") || location.starts_with("az://") {
        let loc =
            crate::objects::Location::parse(location).map_err(|reason| RepoError::Remote {
                location: location.to_string(),
                reason,
            })?;
        let store = loc
            .open(&crate::objects::Auth::from_env())
            .await
            .map_err(|reason| RepoError::Remote {
                location: location.to_string(),
                reason,
            })?;
        return Ok(Box::new(ObjectRepository {
            loc,
            store,
            cache: cache_dir.to_path_buf(),
        }));
    }
    if location.contains("://") {
        return Err(RepoError::Unsupported(location.to_string()));
    }
    Ok(Box::new(LocalRepository::new(location)))
}

/// Where downloaded artifacts are kept: `$XDG_CACHE_HOME/modelplane/models`, else
/// `~/.cache/modelplane/models`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("modelplane/models");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/modelplane/models")
}

/// A bucket or container (S3, S3-compatible, Azure Blob). Artifacts are downloaded once into
/// a local cache, named by their sha256, so a version replaced in the store is fetched again
/// and an unchanged one never is.
pub struct ObjectRepository {
    loc: crate::objects::Location,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    cache: PathBuf,
}

impl ObjectRepository {
    /// A repository on an open store (tests use `object_store`'s in-memory store).
    pub fn new(
        loc: crate::objects::Location,
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        cache: PathBuf,
    ) -> Self {
        ObjectRepository { loc, store, cache }
    }

    fn remote(&self, reason: String) -> RepoError {
        RepoError::Remote {
            location: self.loc.uri(),
            reason,
        }
    }
    fn not_found(&self, name: &str, version: &str) -> RepoError {
        RepoError::NotFound {
            name: name.into(),
            version: version.into(),
            root: self.loc.uri(),
        }
    }
    async fn json(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>, RepoError> {
        let at = self.loc.path(&format!("{name}/{version}/{file}"));
        crate::objects::get_bytes(&self.store, &at)
            .await
            .map_err(|e| self.remote(e))
    }
}

#[async_trait::async_trait]
impl ModelRepository for ObjectRepository {
    fn location(&self) -> String {
        self.loc.uri()
    }

    async fn versions(&self, name: &str) -> Result<Vec<String>, RepoError> {
        let prefix = self.loc.path(name);
        let paths = crate::objects::list(&self.store, &prefix)
            .await
            .map_err(|e| self.remote(e))?;
        let mut out: Vec<String> = paths
            .iter()
            .filter_map(|p| {
                let rel = p
                    .as_ref()
                    .strip_prefix(prefix.as_ref())?
                    .trim_start_matches('/');
                let (version, file) = rel.split_once('/')?;
                (file == "model.json").then(|| version.to_string())
            })
            .collect();
        out.sort_by(|a, b| version_order(a, b));
        Ok(out)
    }

    async fn metadata(&self, name: &str, version: &str) -> Result<ModelMeta, RepoError> {
        let bytes = self
            .json(name, version, "model.json")
            .await?
            .ok_or_else(|| self.not_found(name, version))?;
        serde_json::from_slice(&bytes).map_err(|e| RepoError::BadMeta {
            path: format!("{}/{name}/{version}/model.json", self.loc.uri()),
            reason: e.to_string(),
        })
    }

    async fn fetch(&self, name: &str, version: &str) -> Result<PathBuf, RepoError> {
        let meta = self.metadata(name, version).await?;
        let sha = meta.sha256.to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RepoError::BadMeta {
                path: format!("{}/{name}/{version}/model.json", self.loc.uri()),
                reason: format!("sha256 {sha:?} is not a sha256 digest"),
            });
        }
        let local = self.cache.join(format!("{sha}.onnx"));
        if local.is_file() {
            return Ok(local);
        }
        let from = self.loc.path(&format!("{name}/{version}/model.onnx"));
        match crate::objects::download_file(&self.store, &from, &local, Some(&sha)).await {
            Ok(_) => Ok(local),
            Err(crate::objects::DownloadError::NotFound) => Err(self.not_found(name, version)),
            Err(crate::objects::DownloadError::Other(e)) => Err(self.remote(e)),
        }
    }

    async fn baseline(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<crate::drift::Baseline>, RepoError> {
        let Some(bytes) = self.json(name, version, "baseline.json").await? else {
            return Ok(None);
        };
        crate::drift::Baseline::from_slice(&bytes)
            .map(Some)
            .map_err(|reason| RepoError::BadMeta {
                path: format!("{}/{name}/{version}/baseline.json", self.loc.uri()),
                reason,
            })
    }

    async fn list_registry(&self, folder: &str) -> Result<Vec<(String, String)>, RepoError> {
        use futures::StreamExt;
        let prefix = self.loc.path(folder.trim_end_matches('/'));
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&prefix));
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| self.remote(format!("listing {prefix}: {e}")))?;
            // Files of the folder itself, not of folders below it.
            let direct = m.location.parts().count() == prefix.parts().count() + 1;
            let Some(file) = m
                .location
                .filename()
                .filter(|f| direct && f.ends_with(".json"))
            else {
                continue;
            };
            let stamp = match &m.e_tag {
                Some(t) => t.clone(),
                None => format!(
                    "{}-{}",
                    m.size,
                    m.last_modified.timestamp_nanos_opt().unwrap_or(0)
                ),
            };
            out.push((file.to_string(), stamp));
        }
        Ok(out)
    }

    async fn read_registry(&self, folder: &str, file: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let at = self
            .loc
            .path(&format!("{}/{file}", folder.trim_end_matches('/')));
        crate::objects::get_bytes(&self.store, &at)
            .await
            .map_err(|e| self.remote(e))
    }
}

/// Orders versions: numbers numerically, then other names lexically.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// A directory on this machine.
pub struct LocalRepository {
    root: PathBuf,
}

impl LocalRepository {
    pub fn new(root: impl AsRef<Path>) -> Self {
        LocalRepository {
            root: root.as_ref().to_path_buf(),
        }
    }
    fn dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[async_trait::async_trait]
impl ModelRepository for LocalRepository {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn versions(&self, name: &str) -> Result<Vec<String>, RepoError> {
        let dir = self.root.join(name);
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        while let Some(e) = rd.next_entry().await.map_err(io(&dir))? {
            if e.path().join("model.json").is_file() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort_by(|a, b| version_order(a, b));
        Ok(out)
    }

    async fn metadata(&self, name: &str, version: &str) -> Result<ModelMeta, RepoError> {
        let p = self.dir(name, version).join("model.json");
        let bytes = match tokio::fs::read(&p).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RepoError::NotFound {
                    name: name.into(),
                    version: version.into(),
                    root: self.location(),
                })
            }
            Err(e) => return Err(io(&p)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RepoError::BadMeta {
            path: p.display().to_string(),
            reason: e.to_string(),
        })
    }

    async fn fetch(&self, name: &str, version: &str) -> Result<PathBuf, RepoError> {
        let p = self.dir(name, version).join("model.onnx");
        if tokio::fs::metadata(&p).await.is_err() {
            return Err(RepoError::NotFound {
                name: name.into(),
                version: version.into(),
                root: self.location(),
            });
        }
        Ok(p)
    }

    async fn baseline(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<crate::drift::Baseline>, RepoError> {
        let p = self.dir(name, version).join("baseline.json");
        if !p.is_file() {
            return Ok(None);
        }
        crate::drift::Baseline::read(&p)
            .map(Some)
            .map_err(|reason| RepoError::BadMeta {
                path: p.display().to_string(),
                reason,
            })
    }

    async fn list_registry(&self, folder: &str) -> Result<Vec<(String, String)>, RepoError> {
        let dir = self.root.join(folder);
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        while let Some(e) = rd.next_entry().await.map_err(io(&dir))? {
            let name = e.file_name().to_string_lossy().into_owned();
            // Files being written are named `.NAME.json.incoming-…` and renamed whole.
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            let Ok(meta) = e.metadata().await else {
                continue;
            };
            let at = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push((name, format!("{}-{at}", meta.len())));
        }
        Ok(out)
    }

    async fn read_registry(&self, folder: &str, file: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let p = self.root.join(folder).join(file);
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn meta(sha: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"name": "m", "version": "2", "sha256": sha}))
            .unwrap()
    }

    #[tokio::test]
    async fn remote_artifacts_are_verified_and_cached_by_digest() {
        let mem: std::sync::Arc<dyn object_store::ObjectStore> =
            std::sync::Arc::new(object_store::memory::InMemory::new());
        let loc = crate::objects::Location::parse("s3://models/team?region=us-east-1").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let repo = ObjectRepository::new(loc.clone(), mem.clone(), cache.path().to_path_buf());
        let body = b"onnx bytes".to_vec();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        for (v, with_meta) in [("2", true), ("10", true), ("3", false)] {
            mem.put(&loc.path(&format!("m/{v}/model.onnx")), body.clone().into())
                .await
                .unwrap();
            if with_meta {
                mem.put(&loc.path(&format!("m/{v}/model.json")), meta(&sha).into())
                    .await
                    .unwrap();
            }
        }
        // Only folders with a model.json are versions, in numeric order.
        assert_eq!(repo.versions("m").await.unwrap(), vec!["2", "10"]);
        let p = repo.fetch("m", "2").await.unwrap();
        assert_eq!(p, cache.path().join(format!("{sha}.onnx")));
        assert_eq!(std::fs::read(&p).unwrap(), body);
        // A cached digest is not downloaded again.
        mem.delete(&loc.path("m/2/model.onnx")).await.unwrap();
        assert_eq!(repo.fetch("m", "2").await.unwrap(), p);
        // Bytes that do not match model.json are refused, and nothing is left in the cache.
        std::fs::remove_file(&p).unwrap();
        mem.put(&loc.path("m/10/model.onnx"), b"tampered".to_vec().into())
            .await
            .unwrap();
        let e = repo.fetch("m", "10").await.unwrap_err().to_string();
        assert!(e.contains("replaced or damaged"), "{e}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
        assert!(matches!(
            repo.fetch("m", "7").await,
            Err(RepoError::NotFound { .. })
        ));
        assert!(repo.baseline("m", "2").await.unwrap().is_none());
    }
}
