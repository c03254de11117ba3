//! Stores in a bucket or container (`s3`, `s3_compatible`, `azure_blob`). The control plane
//! (the bucket or container itself) goes through the cloud SDKs in [`super::s3`] and
//! [`super::azure`]; model versions travel through `object_store` ([`modelplane_serve::objects`]),
//! streamed and hashed, in parts for large files, with retries.

use std::sync::Arc;

use modelplane_serve::objects::{self, Auth, Location, Service};
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::OnceCell;

use super::{Report, Settings, Source, Store, StoreError, Upload};

pub struct RemoteStore {
    loc: Location,
    auth: Auth,
    data: OnceCell<Arc<dyn ObjectStore>>,
}

impl RemoteStore {
    pub fn new(loc: Location, auth: Auth) -> Self {
        RemoteStore {
            loc,
            auth,
            data: OnceCell::new(),
        }
    }

    async fn data(&self) -> Result<&Arc<dyn ObjectStore>, StoreError> {
        self.data
            .get_or_try_init(|| async { self.loc.open(&self.auth).await })
            .await
            .map_err(StoreError::Remote)
    }

    fn path(&self, name: &str, version: &str, file: &str) -> object_store::path::Path {
        self.loc.path(&format!("{name}/{version}/{file}"))
    }

    fn what(&self) -> String {
        match self.loc.service {
            Service::S3 => format!("bucket {}", self.loc.bucket),
            Service::Azure => format!(
                "container {} of storage account {}",
                self.loc.bucket,
                self.loc.account.as_deref().unwrap_or_default()
            ),
        }
    }

    /// Whether the versioning of the Azure account keeps replaced blobs: a probe blob's write
    /// answers with a version id only when blob versioning is on.
    async fn azure_versioning(&self) -> Result<String, StoreError> {
        let data = self.data().await?;
        let probe = self.loc.path(".modelplane-versioning-probe");
        let put = data
            .put(&probe, b"probe".to_vec().into())
            .await
            .map_err(|e| StoreError::Remote(format!("{}: {e}", self.what())))?;
        let _ = data.delete(&probe).await;
        Ok(if put.version.is_some() {
            "Enabled".into()
        } else {
            "Disabled".into()
        })
    }

    async fn report(&self) -> Result<Report, StoreError> {
        match self.loc.service {
            Service::S3 => Ok(Report {
                versioning: Some(super::s3::versioning(&self.loc, &self.auth).await?),
                warnings: vec![],
            }),
            Service::Azure => {
                let versioning = self.azure_versioning().await?;
                let mut warnings = Vec::new();
                if versioning != "Enabled" {
                    warnings.push(format!(
                        "blob versioning is off for storage account {}, so a replaced or deleted \
                         model file cannot be recovered. It is an account setting: enable it with \
                         `az storage account blob-service-properties update --enable-versioning \
                         true` or the azurerm_storage_account's blob_properties.versioning_enabled",
                        self.loc.account.as_deref().unwrap_or_default()
                    ));
                }
                Ok(Report {
                    versioning: Some(versioning),
                    warnings,
                })
            }
        }
    }
}

fn remote(e: String) -> StoreError {
    StoreError::Remote(e)
}

#[tfplugin::async_trait]
impl Store for RemoteStore {
    fn uri(&self) -> String {
        self.loc.uri()
    }
    fn repository(&self) -> String {
        self.loc.uri()
    }
    fn version_uri(&self, name: &str, version: &str) -> String {
        self.loc.join(&format!("{name}/{version}")).uri()
    }

    async fn exists(&self) -> Result<bool, StoreError> {
        match self.loc.service {
            Service::S3 => super::s3::exists(&self.loc, &self.auth).await,
            Service::Azure => super::azure::exists(&self.loc, &self.auth).await,
        }
    }

    async fn create(&self, s: &Settings) -> Result<Report, StoreError> {
        match self.loc.service {
            Service::S3 => super::s3::create(&self.loc, &self.auth, s).await,
            Service::Azure => {
                if s.create {
                    super::azure::create(&self.loc, &self.auth).await?;
                } else if !self.exists().await? {
                    return Err(StoreError::NotFound(format!(
                        "{} does not exist (create = false adopts an existing container); create \
                         it, or set create = true",
                        self.what()
                    )));
                }
                self.report().await
            }
        }
    }

    async fn configure(&self, s: &Settings) -> Result<Report, StoreError> {
        match self.loc.service {
            Service::S3 => super::s3::configure(&self.loc, &self.auth, s).await,
            Service::Azure => self.report().await,
        }
    }

    async fn inspect(&self) -> Result<Report, StoreError> {
        match self.loc.service {
            Service::S3 => self.report().await,
            // Azure's versioning is known only by writing a probe blob: not on every refresh
            // (with versioning on, each probe would leave a version behind). Create and update
            // report it.
            Service::Azure => Ok(Report::default()),
        }
    }

    async fn destroy(&self, force: bool) -> Result<(), StoreError> {
        if !force {
            let versions = self.list().await?;
            if !versions.is_empty() {
                return Err(super::still_holds(&self.what(), &versions));
            }
        }
        match self.loc.service {
            Service::S3 => super::s3::delete(&self.loc, &self.auth).await,
            Service::Azure => super::azure::delete(&self.loc, &self.auth).await,
        }
    }

    async fn list(&self) -> Result<Vec<(String, String)>, StoreError> {
        let data = self.data().await?;
        let root = self.loc.path("");
        let paths = objects::list(data, &root)
            .await
            .map_err(|e| remote(format!("{}: {e}", self.what())))?;
        let prefix = root.as_ref().trim_end_matches('/');
        let mut out: Vec<(String, String)> = paths
            .iter()
            .filter_map(|p| {
                let rel = p.as_ref().strip_prefix(prefix)?.trim_start_matches('/');
                let mut it = rel.split('/');
                match (it.next(), it.next(), it.next(), it.next()) {
                    (Some(n), Some(v), Some("model.json"), None) => {
                        Some((n.to_string(), v.to_string()))
                    }
                    _ => None,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| modelplane_serve::repository::version_order(&a.1, &b.1))
        });
        Ok(out)
    }

    async fn put_version(
        &self,
        name: &str,
        version: &str,
        files: Vec<Upload>,
    ) -> Result<(), StoreError> {
        let data = self.data().await?;
        // A version is there once its model.json is: refuse to overwrite one.
        let meta = self.path(name, version, "model.json");
        match data.head(&meta).await {
            Ok(_) => {
                return Err(StoreError::Conflict(format!(
                    "{} already exists",
                    self.version_uri(name, version)
                )))
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(format!("{}: {e}", self.what()))),
        }
        let (metas, rest): (Vec<Upload>, Vec<Upload>) =
            files.into_iter().partition(|u| u.name == "model.json");
        for u in rest.into_iter().chain(metas) {
            let to = self.path(name, version, &u.name);
            match u.from {
                Source::File(p) => objects::upload_file(data, &to, &p).await.map(|_| ()),
                Source::Bytes(b) => objects::upload_bytes(data, &to, b).await,
            }
            .map_err(remote)?;
        }
        Ok(())
    }

    async fn get(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let data = self.data().await?;
        objects::get_bytes(data, &self.path(name, version, file))
            .await
            .map_err(remote)
    }

    async fn download(
        &self,
        name: &str,
        version: &str,
        file: &str,
        to: &std::path::Path,
        want: Option<&str>,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let data = self.data().await?;
        match objects::download_file(data, &self.path(name, version, file), to, want).await {
            Ok(d) => Ok(Some(d)),
            Err(objects::DownloadError::NotFound) => Ok(None),
            Err(objects::DownloadError::Other(e)) => Err(StoreError::Remote(e)),
        }
    }

    async fn digest(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let data = self.data().await?;
        objects::digest(data, &self.path(name, version, file))
            .await
            .map_err(remote)
    }

    async fn put_file(
        &self,
        name: &str,
        version: &str,
        file: &str,
        content: Vec<u8>,
    ) -> Result<(), StoreError> {
        let data = self.data().await?;
        objects::upload_bytes(data, &self.path(name, version, file), content)
            .await
            .map_err(remote)
    }

    async fn list_files(&self, name: &str, version: &str) -> Result<Vec<String>, StoreError> {
        let data = self.data().await?;
        let folder = self.loc.path(&format!("{name}/{version}"));
        let paths = objects::list(data, &folder)
            .await
            .map_err(|e| remote(format!("{}: {e}", self.what())))?;
        let prefix = format!("{}/", folder.as_ref());
        let mut out: Vec<String> = paths
            .iter()
            .filter_map(|p| p.as_ref().strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(String::from)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete_file(&self, name: &str, version: &str, file: &str) -> Result<(), StoreError> {
        let data = self.data().await?;
        match data.delete(&self.path(name, version, file)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(format!("{}: {e}", self.what()))),
        }
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let data = self.data().await?;
        // model.json first: the version disappears at once for readers, then its files go.
        let meta = self.path(name, version, "model.json");
        match data.delete(&meta).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(format!("{}: {e}", self.what()))),
        }
        let folder = self.loc.path(&format!("{name}/{version}"));
        let paths = objects::list(data, &folder)
            .await
            .map_err(|e| remote(format!("{}: {e}", self.what())))?;
        for p in paths {
            match data.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote(format!("{}: {e}", self.what()))),
            }
        }
        Ok(())
    }
}
