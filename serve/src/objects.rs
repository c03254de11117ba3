//! Object-store locations and their credential chains, shared by the server (which reads
//! model versions from them) and the provider (which writes them).
//!
//! A location is a URI that says how to reach a bucket or container, never with a secret:
//!
//! - `s3://BUCKET[/PREFIX][?region=R][&endpoint=URL][&path_style=true]`: AWS S3, or an
//!   S3-compatible server (MinIO, Ceph RGW) at `endpoint`.
//! - `az://ACCOUNT/CONTAINER[/PREFIX][?endpoint=URL]`: Azure Blob Storage; `endpoint` for
//!   emulators and sovereign clouds (default `https://ACCOUNT.blob.core.windows.net`).
//!
//! Credentials come from the standard chains:
//! - S3: the AWS SDK's default chain (environment, shared profiles, SSO, web identity,
//!   container and instance metadata), bridged into `object_store`.
//! - Azure: an account key when one is given (`AZURE_STORAGE_KEY`, or the `AccountKey` of
//!   `AZURE_STORAGE_CONNECTION_STRING`), else the Azure identity chain: workload identity,
//!   client secret (`AZURE_CLIENT_ID` / `AZURE_TENANT_ID` / `AZURE_CLIENT_SECRET`), managed
//!   identity, then the Azure CLI.
//!
//! Transfers stream: uploads go through multipart (S3) or blocks (Azure) in 10 MiB parts,
//! downloads are written to disk as they arrive, and both hash as they go. `object_store`
//! retries failed requests with exponential backoff.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::azure::{AzureCredential, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, CredentialProvider, GetOptions, ObjectStore,
    ObjectStoreExt, RetryConfig,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Part size for multipart uploads. With 4 parts in flight an upload holds about 50 MB,
/// whatever the file's size; S3's 10,000-part limit puts the largest artifact at 97 GiB.
pub const PART_SIZE: usize = 10 * 1024 * 1024;
/// Parts in flight at once during an upload.
const UPLOAD_CONCURRENCY: usize = 4;
/// The user metadata key that carries an object's sha256.
pub const SHA256_METADATA: &str = "sha256";

/// Which service a location names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    S3,
    Azure,
}

/// A bucket or container (and a prefix inside it), without credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub service: Service,
    /// The storage account (Azure only).
    pub account: Option<String>,
    /// The bucket (S3) or container (Azure).
    pub bucket: String,
    /// Folder inside the bucket, without leading or trailing `/`; empty for the root.
    pub prefix: String,
    /// S3 region; `None` takes the AWS region chain, else `us-east-1`.
    pub region: Option<String>,
    /// Service endpoint override.
    pub endpoint: Option<String>,
    /// S3 path-style addressing (`ENDPOINT/BUCKET/KEY`), usual for on-prem servers.
    pub path_style: bool,
}

/// Credentials given explicitly (provider settings); everything else comes from the chains.
#[derive(Clone, Default)]
pub struct Auth {
    /// AWS shared-config profile.
    pub aws_profile: Option<String>,
    /// Azure storage account key (base64). Never logged or stored.
    pub azure_account_key: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("aws_profile", &self.aws_profile)
            .field(
                "azure_account_key",
                &self.azure_account_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Auth {
    /// Settings from the environment: `AWS_PROFILE` is read by the AWS chain itself;
    /// the Azure key from `AZURE_STORAGE_KEY` or `AZURE_STORAGE_CONNECTION_STRING`.
    pub fn from_env() -> Auth {
        Auth {
            aws_profile: None,
            azure_account_key: azure_key_from_env(),
        }
    }
}

fn azure_key_from_env() -> Option<String> {
    let non_empty = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    non_empty("AZURE_STORAGE_KEY")
        .or_else(|| non_empty("AZURE_STORAGE_ACCOUNT_KEY"))
        .or_else(|| {
            non_empty("AZURE_STORAGE_CONNECTION_STRING").and_then(|cs| {
                cs.split(';')
                    .find_map(|kv| kv.trim().strip_prefix("AccountKey="))
                    .map(str::to_string)
            })
        })
}

impl Location {
    /// Parses a location URI; the error says what is wrong and how to write it.
    pub fn parse(uri: &str) -> Result<Location, String> {
        let url = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not a valid URI: {e}"))?;
        let service = match url.scheme() {
            "s3" => Service::S3,
            "az" => Service::Azure,
            other => {
                return Err(format!(
                "{uri:?}: unsupported scheme {other:?}; use s3://BUCKET or az://ACCOUNT/CONTAINER"
            ))
            }
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let mut segments: Vec<String> = url
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let (account, bucket) = match service {
            Service::S3 => (None, host),
            Service::Azure => {
                if segments.is_empty() {
                    return Err(format!("{uri:?}: write az://ACCOUNT/CONTAINER[/PREFIX]"));
                }
                (Some(host), segments.remove(0))
            }
        };
        if bucket.is_empty() || account.as_deref() == Some("") {
            return Err(format!(
                "{uri:?}: no bucket or container; write s3://BUCKET or az://ACCOUNT/CONTAINER"
            ));
        }
        let mut loc = Location {
            service,
            account,
            bucket,
            prefix: segments.join("/"),
            region: None,
            endpoint: None,
            path_style: false,
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), service) {
                ("region", Service::S3) => loc.region = Some(v.into_owned()),
                ("endpoint", _) => loc.endpoint = Some(v.trim_end_matches('/').to_string()),
                ("path_style", Service::S3) => loc.path_style = v == "true",
                (other, _) => {
                    return Err(format!(
                        "{uri:?}: unknown parameter {other:?} (known: {})",
                        match service {
                            Service::S3 => "region, endpoint, path_style",
                            Service::Azure => "endpoint",
                        }
                    ))
                }
            }
        }
        Ok(loc)
    }

    /// The canonical URI of this location (parameters in a fixed order).
    pub fn uri(&self) -> String {
        let mut s = match self.service {
            Service::S3 => format!("s3://{}", self.bucket),
            Service::Azure => format!(
                "az://{}/{}",
                self.account.as_deref().unwrap_or_default(),
                self.bucket
            ),
        };
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(r) = &self.region {
            q.append_pair("region", r);
        }
        if let Some(e) = &self.endpoint {
            q.append_pair("endpoint", e);
        }
        if self.path_style {
            q.append_pair("path_style", "true");
        }
        let q = q.finish();
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q);
        }
        s
    }

    /// The same location one folder down.
    pub fn join(&self, folder: &str) -> Location {
        let mut l = self.clone();
        l.prefix = if l.prefix.is_empty() {
            folder.trim_matches('/').to_string()
        } else {
            format!("{}/{}", l.prefix, folder.trim_matches('/'))
        };
        l
    }

    /// The object path of `rel` (e.g. `iris/2/model.onnx`) inside this location.
    pub fn path(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Connects to the bucket or container with the credential chain of its service.
    pub async fn open(&self, auth: &Auth) -> Result<Arc<dyn ObjectStore>, String> {
        let retry = RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(120),
            ..RetryConfig::default()
        };
        let allow_http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let client = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout(Duration::from_secs(300));
        match self.service {
            Service::S3 => {
                let sdk = aws_sdk_config(self.region.clone(), auth.aws_profile.clone()).await;
                let region = sdk
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "us-east-1".to_string());
                let Some(chain) = sdk.credentials_provider() else {
                    return Err("no AWS credential chain available".into());
                };
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&self.bucket)
                    .with_region(region)
                    .with_credentials(Arc::new(AwsChain::new(chain)))
                    .with_retry(retry)
                    .with_client_options(client);
                if let Some(e) = &self.endpoint {
                    b = b
                        .with_endpoint(e)
                        .with_virtual_hosted_style_request(!self.path_style);
                }
                b.build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                    .map_err(|e| format!("S3 bucket {}: {e}", self.bucket))
            }
            Service::Azure => {
                let account = self.account.clone().unwrap_or_default();
                let mut b = MicrosoftAzureBuilder::new()
                    .with_account(&account)
                    .with_container_name(&self.bucket)
                    .with_retry(retry)
                    .with_client_options(client);
                if let Some(e) = &self.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b = match azure_auth(auth)? {
                    AzureAuth::Key(k) => b.with_access_key(k),
                    AzureAuth::Token(t) => b.with_credentials(Arc::new(AzureChain(t))),
                };
                b.build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                    .map_err(|e| format!("Azure container {account}/{}: {e}", self.bucket))
            }
        }
    }
}

/// The AWS SDK configuration from the default chains, with an explicit region or profile.
pub async fn aws_sdk_config(
    region: Option<String>,
    profile: Option<String>,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    loader.load().await
}

/// The AWS SDK's credential chain as an `object_store` credential provider, with credentials
/// kept until five minutes before they expire.
#[derive(Debug)]
struct AwsChain {
    chain: aws_credential_types::provider::SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl AwsChain {
    fn new(chain: aws_credential_types::provider::SharedCredentialsProvider) -> Self {
        AwsChain {
            chain,
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for AwsChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut cached = self.cached.lock().await;
        if let Some((c, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        let creds =
            self.chain
                .provide_credentials()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "S3",
                    source: format!(
                    "no AWS credentials: {e}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     AWS_PROFILE, or run where an instance or pod role is available"
                )
                    .into(),
                })?;
        let c = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        *cached = Some((c.clone(), creds.expiry()));
        Ok(c)
    }
}

/// How to authenticate to Azure Storage.
pub enum AzureAuth {
    /// A shared account key (emulators, on-prem, or when given explicitly).
    Key(String),
    /// An Entra ID token credential from the identity chain.
    Token(Arc<dyn azure_core::credentials::TokenCredential>),
}

/// The Azure credential in force: an explicit or environment account key, else the identity
/// chain in the order of Azure's `DefaultAzureCredential`.
pub fn azure_auth(auth: &Auth) -> Result<AzureAuth, String> {
    if let Some(k) = auth.azure_account_key.clone().or_else(azure_key_from_env) {
        return Ok(AzureAuth::Key(k));
    }
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let err = |what: &str, e: azure_core::Error| format!("Azure {what} credential: {e}");
    let cred: Arc<dyn azure_core::credentials::TokenCredential> =
        if set("AZURE_FEDERATED_TOKEN_FILE") {
            azure_identity::WorkloadIdentityCredential::new(None)
                .map_err(|e| err("workload identity", e))?
        } else if set("AZURE_CLIENT_SECRET") {
            let var = |k: &str| std::env::var(k).unwrap_or_default();
            azure_identity::ClientSecretCredential::new(
                &var("AZURE_TENANT_ID"),
                var("AZURE_CLIENT_ID"),
                var("AZURE_CLIENT_SECRET").into(),
                None,
            )
            .map_err(|e| err("client secret", e))?
        } else if set("IDENTITY_ENDPOINT") || set("MSI_ENDPOINT") {
            azure_identity::ManagedIdentityCredential::new(None)
                .map_err(|e| err("managed identity", e))?
        } else {
            azure_identity::DeveloperToolsCredential::new(None).map_err(|e| err("Azure CLI", e))?
        };
    Ok(AzureAuth::Token(cred))
}

/// The scope of Azure Storage tokens.
pub const AZURE_STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// An Azure identity credential as an `object_store` bearer-token provider (the identity
/// crate caches tokens until they near expiry).
#[derive(Debug)]
struct AzureChain(Arc<dyn azure_core::credentials::TokenCredential>);

#[async_trait::async_trait]
impl CredentialProvider for AzureChain {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        let t = self
            .0
            .get_token(&[AZURE_STORAGE_SCOPE], None)
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "MicrosoftAzure",
                source: format!(
                    "no Azure credentials: {e}. Set AZURE_STORAGE_KEY (or \
                     AZURE_STORAGE_CONNECTION_STRING), a service principal \
                     (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), workload or \
                     managed identity, or sign in with `az login`"
                )
                .into(),
            })?;
        Ok(Arc::new(AzureCredential::BearerToken(
            t.token.secret().to_string(),
        )))
    }
}

/// Uploads a local file in parts, streaming; the object carries `sha256` as user metadata.
/// Returns the sha256 and size of what was sent.
pub async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    to: &Path,
    from: &FsPath,
) -> Result<(String, u64), String> {
    let mut file = tokio::fs::File::open(from)
        .await
        .map_err(|e| format!("{}: {e}", from.display()))?;
    // The digest goes into the object's metadata, so it is computed before the upload.
    let (sha, size) = crate::signature::file_digest_async(from)
        .await
        .map_err(|e| format!("{}: {e}", from.display()))?;
    let mut attrs = Attributes::new();
    attrs.insert(
        Attribute::Metadata(SHA256_METADATA.into()),
        sha.clone().into(),
    );
    let mut w =
        object_store::buffered::BufWriter::with_capacity(store.clone(), to.clone(), PART_SIZE)
            .with_max_concurrency(UPLOAD_CONCURRENCY)
            .with_attributes(attrs);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut sent = Sha256::new();
    let mut n_sent = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| format!("{}: {e}", from.display()))?;
        if n == 0 {
            break;
        }
        sent.update(&buf[..n]);
        n_sent += n as u64;
        if let Err(e) = w.write_all(&buf[..n]).await {
            let _ = w.abort().await;
            return Err(format!("upload of {to}: {e}"));
        }
    }
    let got = hex::encode(sent.finalize());
    if got != sha || n_sent != size {
        let _ = w.abort().await;
        return Err(format!(
            "{} changed while it was uploaded; upload it again",
            from.display()
        ));
    }
    w.shutdown()
        .await
        .map_err(|e| format!("upload of {to}: {e}"))?;
    Ok((sha, size))
}

/// Uploads bytes in one request, with their sha256 as user metadata.
pub async fn upload_bytes(
    store: &Arc<dyn ObjectStore>,
    to: &Path,
    bytes: Vec<u8>,
) -> Result<(), String> {
    let sha = hex::encode(Sha256::digest(&bytes));
    let mut attrs = Attributes::new();
    attrs.insert(Attribute::Metadata(SHA256_METADATA.into()), sha.into());
    store
        .put_opts(
            to,
            bytes.into(),
            object_store::PutOptions {
                attributes: attrs,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("upload of {to}: {e}"))
}

/// A whole (small) object; `None` when it does not exist.
pub async fn get_bytes(store: &Arc<dyn ObjectStore>, at: &Path) -> Result<Option<Vec<u8>>, String> {
    match store.get(at).await {
        Ok(r) => r
            .bytes()
            .await
            .map(|b| Some(b.to_vec()))
            .map_err(|e| format!("download of {at}: {e}")),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("download of {at}: {e}")),
    }
}

/// Size and the sha256 recorded in the metadata at upload (if any) of an object; `None` when
/// it does not exist. One HEAD request.
pub async fn head(
    store: &Arc<dyn ObjectStore>,
    at: &Path,
) -> Result<Option<(Option<String>, u64)>, String> {
    let options = GetOptions {
        head: true,
        ..Default::default()
    };
    match store.get_opts(at, options).await {
        Ok(r) => Ok(Some((
            r.attributes
                .get(&Attribute::Metadata(SHA256_METADATA.into()))
                .map(|v| v.to_string()),
            r.meta.size,
        ))),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("{at}: {e}")),
    }
}

/// Size and sha256 of an object; `None` when it does not exist. The digest recorded at upload
/// is used; an object written by other tools is hashed by reading it.
pub async fn digest(
    store: &Arc<dyn ObjectStore>,
    at: &Path,
) -> Result<Option<(String, u64)>, String> {
    match head(store, at).await? {
        None => return Ok(None),
        Some((Some(sha), size)) => return Ok(Some((sha, size))),
        Some((None, _)) => {}
    }
    let mut stream = match store.get(at).await {
        Ok(r) => r.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(format!("{at}: {e}")),
    };
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download of {at}: {e}"))?;
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    Ok(Some((hex::encode(h.finalize()), n)))
}

/// Downloads an object to a local file as it arrives (never whole in memory), checking its
/// sha256. The file appears under its final name only when complete and verified.
pub async fn download_file(
    store: &Arc<dyn ObjectStore>,
    from: &Path,
    to: &FsPath,
    want_sha256: Option<&str>,
) -> Result<(String, u64), DownloadError> {
    let mut stream = match store.get(from).await {
        Ok(r) => r.into_stream(),
        Err(object_store::Error::NotFound { .. }) => return Err(DownloadError::NotFound),
        Err(e) => return Err(DownloadError::Other(format!("download of {from}: {e}"))),
    };
    let dir = to.parent().unwrap_or(FsPath::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| DownloadError::Other(format!("{}: {e}", dir.display())))?;
    let part = to.with_extension(format!("part-{}", std::process::id()));
    let local = |e: std::io::Error| DownloadError::Other(format!("{}: {e}", part.display()));
    let file = tokio::fs::File::create(&part).await.map_err(local)?;
    let mut w = tokio::io::BufWriter::with_capacity(4 << 20, file);
    let mut h = Sha256::new();
    let mut n = 0u64;
    let result = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| DownloadError::Other(format!("download of {from}: {e}")))?;
            h.update(&chunk);
            n += chunk.len() as u64;
            w.write_all(&chunk).await.map_err(local)?;
        }
        w.flush().await.map_err(local)?;
        w.get_ref().sync_all().await.map_err(local)?;
        Ok::<_, DownloadError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    let got = hex::encode(h.finalize());
    if let Some(want) = want_sha256 {
        if !got.eq_ignore_ascii_case(want) {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(DownloadError::Other(format!(
                "{from}: sha256 is {got}, but model.json records {want}; the artifact was \
                 replaced or damaged in the store. Register the version again"
            )));
        }
    }
    tokio::fs::rename(&part, to)
        .await
        .map_err(|e| DownloadError::Other(format!("{}: {e}", to.display())))?;
    Ok((got, n))
}

#[derive(Debug)]
pub enum DownloadError {
    NotFound,
    Other(String),
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownloadError::NotFound => f.write_str("not found"),
            DownloadError::Other(s) => f.write_str(s),
        }
    }
}

/// Every object path under `prefix` (recursively).
pub async fn list(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<Path>, String> {
    let prefix = if prefix.as_ref().is_empty() {
        None
    } else {
        Some(prefix)
    };
    let mut out = Vec::new();
    let mut s = store.list(prefix);
    while let Some(m) = s.next().await {
        out.push(m.map_err(|e| format!("listing: {e}"))?.location);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip() {
        for uri in [
            "s3://models",
            "s3://models/team/a?region=eu-west-1",
            "s3://models?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true",
            "az://acct/models",
            "az://devstoreaccount1/models/p?endpoint=http%3A%2F%2F127.0.0.1%3A10000%2Fdevstoreaccount1",
        ] {
            let l = Location::parse(uri).unwrap();
            assert_eq!(l.uri(), uri);
        }
        let l =
            Location::parse("s3://models/team?endpoint=http://h:9000/&path_style=true").unwrap();
        assert_eq!(l.endpoint.as_deref(), Some("http://h:9000"));
        assert!(l.path_style);
        assert_eq!(
            l.path("iris/1/model.json").as_ref(),
            "team/iris/1/model.json"
        );
        let a = Location::parse("az://acct/c").unwrap();
        assert_eq!(
            (a.account.as_deref(), a.bucket.as_str()),
            (Some("acct"), "c")
        );
        assert_eq!(a.join("iris/2").prefix, "iris/2");
    }

    #[test]
    fn bad_locations_say_how_to_write_them() {
        for (uri, want) in [
            ("gs://x", "unsupported scheme"),
            ("az://acct", "az://ACCOUNT/CONTAINER"),
            ("s3://b?colour=red", "unknown parameter \"colour\""),
            ("az://a/c?region=x", "known: endpoint"),
        ] {
            let e = Location::parse(uri).unwrap_err();
            assert!(e.contains(want), "{uri}: {e}");
        }
    }

    #[test]
    fn account_keys_are_not_printed() {
        let a = Auth {
            aws_profile: None,
            azure_account_key: Some("c2VjcmV0".into()),
        };
        assert!(!format!("{a:?}").contains("c2VjcmV0"));
    }
}
