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
    #[error("unsupported repository {0:?}: use a directory path or a file:// URL")]
    Unsupported(String),
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
}

/// Opens a repository from a path or URL.
pub fn open(location: &str) -> Result<Box<dyn ModelRepository>, RepoError> {
    if let Some(p) = location.strip_prefix("file://") {
        return Ok(Box::new(LocalRepository::new(p)));
    }
    if location.contains("://") {
        return Err(RepoError::Unsupported(location.to_string()));
    }
    Ok(Box::new(LocalRepository::new(location)))
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
}
