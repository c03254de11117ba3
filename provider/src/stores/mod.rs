//! Model stores: where immutable model versions live, as `NAME/VERSION/` folders holding
//! `model.onnx`, `model.json` and optionally `baseline.json`. A store is named by its URI
//! (the `id` of `modelplane_model_store`): `file:///abs/path` for `local`.
//!
//! Every backend implements [`Store`]; resources only ever talk to the trait.

use std::path::PathBuf;

pub mod local;

/// What went wrong talking to a store, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    BadUri(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Conflict(String),
}

/// A file of a model version, by name inside its folder.
pub struct Upload {
    pub name: String,
    pub from: Source,
}

pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A store of model versions.
#[tfplugin::async_trait]
pub trait Store: Send + Sync {
    /// The store's URI, its ID in Terraform.
    fn uri(&self) -> String;
    /// Where a server reads this store from (a directory for `local`).
    fn repository(&self) -> String;
    /// Whether the store itself exists.
    async fn exists(&self) -> Result<bool, StoreError>;
    /// Creates the store; an existing, empty one is taken over.
    async fn create(&self) -> Result<(), StoreError>;
    /// Deletes the store and, with `force`, every version in it.
    async fn destroy(&self, force: bool) -> Result<(), StoreError>;
    /// Every `(name, version)` with a `model.json`, sorted.
    async fn list(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Writes a version atomically: readers see all its files or none. `model.json` must be
    /// among the uploads; it is written last.
    async fn put_version(
        &self,
        name: &str,
        version: &str,
        files: Vec<Upload>,
    ) -> Result<(), StoreError>;
    /// One file of a version; `None` when it does not exist.
    async fn get(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// sha256 and size of one file of a version; `None` when it does not exist.
    async fn digest(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<(String, u64)>, StoreError>;
    /// Replaces one file of an existing version (metadata updates).
    async fn put_file(
        &self,
        name: &str,
        version: &str,
        file: &str,
        content: Vec<u8>,
    ) -> Result<(), StoreError>;
    /// Removes one file of a version, if it is there.
    async fn delete_file(&self, name: &str, version: &str, file: &str) -> Result<(), StoreError>;
    /// Removes a version; one already gone is success.
    async fn delete_version(&self, name: &str, version: &str) -> Result<(), StoreError>;
    /// The URI of a version's folder.
    fn version_uri(&self, name: &str, version: &str) -> String;
}

/// The backends a store ID may name.
pub const BACKENDS: &[&str] = &["local"];

/// Opens the store an ID names.
pub fn open(id: &str) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = id.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(StoreError::BadUri(format!(
                "store ID {id:?} must be file:///ABSOLUTE/PATH"
            )));
        }
        return Ok(Box::new(local::LocalStore::new(PathBuf::from(path))));
    }
    Err(StoreError::BadUri(format!(
        "{id:?} is not a model store ID; use the `id` of a modelplane_model_store (e.g. file:///var/lib/models)"
    )))
}

/// A model version's ID: `STORE_ID/NAME/VERSION`.
pub fn version_id(store: &str, name: &str, version: &str) -> String {
    format!("{}/{name}/{version}", store.trim_end_matches('/'))
}

/// Splits a model version ID into store ID, name and version.
pub fn parse_version_id(id: &str) -> Option<(String, String, String)> {
    let mut parts = id.rsplitn(3, '/');
    let version = parts.next()?;
    let name = parts.next()?;
    let store = parts.next()?;
    if version.is_empty() || name.is_empty() || !store.contains("://") {
        return None;
    }
    Some((store.to_string(), name.to_string(), version.to_string()))
}

/// Checks a model name or version: letters, digits, `.`, `_`, `-`; not starting with `.`.
pub fn check_segment(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err("must not start with '.' or '-'".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_round_trip() {
        let id = version_id("file:///var/lib/models", "iris", "2");
        assert_eq!(id, "file:///var/lib/models/iris/2");
        assert_eq!(
            parse_version_id(&id),
            Some(("file:///var/lib/models".into(), "iris".into(), "2".into()))
        );
        assert_eq!(parse_version_id("iris/2"), None);
        assert_eq!(parse_version_id("file:///x/iris/"), None);
    }

    #[test]
    fn segments_are_checked() {
        assert!(check_segment("digits-v2.1_b").is_ok());
        assert!(check_segment("").is_err());
        assert!(check_segment("../etc").is_err());
        assert!(check_segment("a/b").unwrap_err().contains("'/'"));
    }

    #[test]
    fn only_store_uris_open() {
        assert!(open("file:///tmp/x").is_ok());
        assert!(open("file://relative").is_err());
        assert!(open("acme-models")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("modelplane_model_store"));
    }
}
