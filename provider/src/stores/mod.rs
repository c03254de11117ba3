//! Model stores: where immutable model versions live, as `NAME/VERSION/` folders holding
//! `model.onnx`, `model.json` and optionally `baseline.json`. A store is named by its URI
//! (the `id` of `modelplane_model_store`), which says how to reach it and never holds a secret:
//! `file:///abs/path` for `local`, `s3://BUCKET?region=…[&endpoint=…&path_style=true]` for
//! `s3` and `s3_compatible`, `az://ACCOUNT/CONTAINER[?endpoint=…]` for `azure_blob`.
//!
//! Every backend implements [`Store`]; resources only ever talk to the trait.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub mod azure;
pub mod local;
pub mod remote;
pub mod s3;

/// How this provider reaches object stores: credentials from the provider block (the rest
/// comes from the standard chains); see [`crate::ProviderConfig::stores`].
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub auth: modelplane_serve::objects::Auth,
    /// `aws.region`: the region of new `s3` stores when they set none.
    pub aws_region: Option<String>,
    /// `aws.endpoint_url`: an S3 endpoint override for `s3` stores (emulators, gateways).
    pub aws_endpoint: Option<String>,
}

/// What a store's control plane applies on create and update.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `false` adopts an existing bucket or container.
    pub create: bool,
    /// SSE-KMS key; SSE-S3 when unset.
    pub kms_key_id: Option<String>,
    /// Days before replaced object versions are deleted; none keeps them.
    pub noncurrent_version_days: Option<i64>,
    pub tags: BTreeMap<String, String>,
    /// S3-compatible servers: a feature the server lacks is a warning, not an error.
    pub lenient: bool,
}

/// What a store's control plane found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Versioning status (`Enabled`, `Suspended`, `Disabled`); `None` where there is none.
    pub versioning: Option<String>,
    pub warnings: Vec<String>,
}

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
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Remote(String),
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
    /// Creates the store (or, with `create = false`, adopts an existing one) and applies the
    /// settings.
    async fn create(&self, settings: &Settings) -> Result<Report, StoreError>;
    /// Applies changed settings to an existing store.
    async fn configure(&self, settings: &Settings) -> Result<Report, StoreError>;
    /// What the store's control plane reports now (versioning).
    async fn inspect(&self) -> Result<Report, StoreError>;
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
    /// Streams one file of a version to `to` (never whole in memory), checking its sha256
    /// against `want` when given; returns the sha256 and size, `None` when it does not exist.
    async fn download(
        &self,
        name: &str,
        version: &str,
        file: &str,
        to: &std::path::Path,
        want: Option<&str>,
    ) -> Result<Option<(String, u64)>, StoreError>;
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
    /// The names of a version's files, sorted; empty when the folder holds none. Approvals
    /// and the audit log (see [`crate::governance`]) are files found this way.
    async fn list_files(&self, name: &str, version: &str) -> Result<Vec<String>, StoreError>;
    /// Removes one file of a version, if it is there.
    async fn delete_file(&self, name: &str, version: &str, file: &str) -> Result<(), StoreError>;
    /// Removes a version; one already gone is success.
    async fn delete_version(&self, name: &str, version: &str) -> Result<(), StoreError>;
    /// The URI of a version's folder.
    fn version_uri(&self, name: &str, version: &str) -> String;
}

/// The error of a destroy that would delete model versions without `force_destroy`.
pub fn still_holds(what: &str, versions: &[(String, String)]) -> StoreError {
    let shown: Vec<String> = versions
        .iter()
        .take(5)
        .map(|(n, v)| format!("{n}/{v}"))
        .collect();
    StoreError::Conflict(format!(
        "{what} still holds {} model version(s) ({}{}); destroy those modelplane_model \
         resources first, or set force_destroy = true to delete them with the store",
        versions.len(),
        shown.join(", "),
        if versions.len() > 5 { ", …" } else { "" }
    ))
}

/// The backends of `modelplane_model_store`.
pub const BACKENDS: &[&str] = &["local", "s3", "s3_compatible", "azure_blob"];

/// Opens the store an ID names, with the provider's credentials.
pub fn open(id: &str, connection: &Connection) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = id.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(StoreError::BadUri(format!(
                "store ID {id:?} must be file:///ABSOLUTE/PATH"
            )));
        }
        return Ok(Box::new(local::LocalStore::new(PathBuf::from(path))));
    }
    if id.starts_with("s3://") || id.starts_with("az://") {
        let loc = modelplane_serve::objects::Location::parse(id).map_err(StoreError::BadUri)?;
        return Ok(Box::new(remote::RemoteStore::new(
            loc,
            connection.auth.clone(),
        )));
    }
    Err(StoreError::BadUri(format!(
        "{id:?} is not a model store ID; use the `id` of a modelplane_model_store (e.g. \
         file:///var/lib/models, s3://BUCKET?region=REGION or az://ACCOUNT/CONTAINER)"
    )))
}

/// The store, name and version of a version's URI: its `uri` (`file:///PATH/NAME/VERSION`,
/// `s3://BUCKET/PREFIX/NAME/VERSION?region=…`, `az://ACCOUNT/CONTAINER/PREFIX/NAME/VERSION`)
/// or its `id` (`STORE_ID/NAME/VERSION`).
pub fn parse_version(uri: &str) -> Result<crate::ids::VersionId, StoreError> {
    let bad = |why: &str| {
        StoreError::BadUri(format!(
            "{uri:?} is not a model version's URI ({why}); use another version's `uri` or `id`, e.g. modelplane_model.onprem.uri"
        ))
    };
    // The id form puts the store's query before NAME/VERSION.
    if let Some((_, after)) = uri.split_once('?') {
        if after.contains('/') {
            return uri.parse().map_err(|_| bad("no NAME/VERSION"));
        }
    }
    if let Some(path) = uri.strip_prefix("file://") {
        let mut parts = path.trim_end_matches('/').rsplitn(3, '/');
        let (version, name, store) = (parts.next(), parts.next(), parts.next());
        return match (version, name, store) {
            (Some(v), Some(n), Some(s)) if !v.is_empty() && !n.is_empty() && s.starts_with('/') => {
                Ok(crate::ids::VersionId::new(&format!("file://{s}"), n, v))
            }
            _ => Err(bad("not file:///STORE/NAME/VERSION")),
        };
    }
    if uri.starts_with("s3://") || uri.starts_with("az://") {
        let mut loc =
            modelplane_serve::objects::Location::parse(uri).map_err(StoreError::BadUri)?;
        let segments: Vec<String> = loc
            .prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if segments.len() < 2 {
            return Err(bad("no NAME/VERSION after the bucket or container"));
        }
        let (name, version) = (
            segments[segments.len() - 2].clone(),
            segments[segments.len() - 1].clone(),
        );
        loc.prefix = segments[..segments.len() - 2].join("/");
        return Ok(crate::ids::VersionId::new(&loc.uri(), name, version));
    }
    Err(bad("unknown scheme"))
}

/// The store ID of a server's `repository` (a directory for local stores, else the ID).
pub fn id_of_repository(repository: &str) -> String {
    if repository.contains("://") {
        repository.to_string()
    } else {
        format!("file://{repository}")
    }
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
    fn segments_are_checked() {
        assert!(check_segment("digits-v2.1_b").is_ok());
        assert!(check_segment("").is_err());
        assert!(check_segment("../etc").is_err());
        assert!(check_segment("a/b").unwrap_err().contains("'/'"));
    }

    #[test]
    fn version_uris_name_their_store() {
        let v = parse_version("file:///srv/models/iris/3").unwrap();
        assert_eq!(
            (v.store.as_str(), v.name.as_str(), v.version.as_str()),
            ("file:///srv/models", "iris", "3")
        );
        let v = parse_version("s3://models/team-a/iris/3?region=eu-west-1").unwrap();
        assert_eq!(v.store, "s3://models/team-a?region=eu-west-1");
        assert_eq!((v.name.as_str(), v.version.as_str()), ("iris", "3"));
        let v = parse_version("s3://models?region=eu-west-1/iris/3").unwrap();
        assert_eq!(v.store, "s3://models?region=eu-west-1");
        let v = parse_version("az://acct/models/iris/3").unwrap();
        assert_eq!(v.store, "az://acct/models");
        assert!(parse_version("s3://models/iris").is_err());
        assert!(parse_version("file://relative/iris/3").is_err());
        assert!(parse_version("gs://b/iris/3")
            .unwrap_err()
            .to_string()
            .contains("modelplane_model.onprem.uri"));
    }

    #[test]
    fn only_store_uris_open() {
        let open = |id: &str| open(id, &Connection::default());
        assert!(open("file:///tmp/x").is_ok());
        assert!(open("s3://models?region=eu-west-1").is_ok());
        assert!(open("az://acct/models").is_ok());
        assert!(open("az://acct").is_err());
        assert_eq!(id_of_repository("/srv/models"), "file:///srv/models");
        assert_eq!(id_of_repository("s3://m?region=x"), "s3://m?region=x");
        assert!(open("file://relative").is_err());
        assert!(open("acme-models")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("modelplane_model_store"));
    }
}
