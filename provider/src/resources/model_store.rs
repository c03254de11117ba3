//! `modelplane_model_store`: where model versions live. `local` is a directory; `s3`,
//! `s3_compatible` and `azure_blob` are a bucket or container (control plane through the cloud
//! SDKs, data plane through `object_store`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use modelplane_serve::objects::{Location, Service};
use serde::{Deserialize, Serialize};
use tfplugin::{Attr, Attribute, AttributePath, Block, Config, Ctx, Diagnostics, Schema, Type};

use crate::stores::{self, Settings, Store};
use crate::ProviderConfig;

pub struct ModelStore {
    pub config: Arc<OnceLock<ProviderConfig>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    pub id: Attr<String>,
    pub name: String,
    pub backend: String,
    pub path: Attr<String>,
    pub create: Option<bool>,
    pub region: Attr<String>,
    pub endpoint: Option<String>,
    pub path_style: Option<bool>,
    pub storage_account: Option<String>,
    pub kms_key_id: Option<String>,
    pub noncurrent_version_days: Option<i64>,
    pub tags: Option<BTreeMap<String, String>>,
    pub force_destroy: Option<bool>,
    pub uri: Attr<String>,
    pub versioning: Attr<String>,
}

/// Days before replaced object versions are deleted, when `noncurrent_version_days` is unset.
const DEFAULT_NONCURRENT_DAYS: i64 = 30;

/// Which attributes each backend takes (besides name, backend and force_destroy).
const ATTRS: &[(&str, &[&str])] = &[
    ("path", &["local"]),
    ("create", &["s3", "s3_compatible", "azure_blob"]),
    ("region", &["s3", "s3_compatible"]),
    ("endpoint", &["s3_compatible", "azure_blob"]),
    ("path_style", &["s3_compatible"]),
    ("storage_account", &["azure_blob"]),
    ("kms_key_id", &["s3", "s3_compatible"]),
    ("noncurrent_version_days", &["s3", "s3_compatible"]),
    ("tags", &["s3", "s3_compatible"]),
];

impl Model {
    fn settings(&self) -> Settings {
        let object = self.backend != "local" && self.backend != "azure_blob";
        Settings {
            create: self.create.unwrap_or(true),
            kms_key_id: self.kms_key_id.clone(),
            noncurrent_version_days: object
                .then(|| {
                    self.noncurrent_version_days
                        .unwrap_or(DEFAULT_NONCURRENT_DAYS)
                })
                .filter(|d| *d > 0),
            tags: self.tags.clone().unwrap_or_default(),
            lenient: self.backend == "s3_compatible",
        }
    }

    /// Whether destroy deletes the bucket or container (adopted ones are left as they were).
    fn owned(&self) -> bool {
        self.backend == "local" || self.create.unwrap_or(true)
    }
}

impl ModelStore {
    fn conn(&self) -> stores::Connection {
        crate::ProviderConfig::of(&self.config).stores()
    }

    fn resolve_path(&self, m: &Model) -> Attr<String> {
        match &m.path {
            Attr::Known(p) => Attr::Known(crate::absolute(p)),
            Attr::Unknown => Attr::Unknown,
            Attr::Null => {
                let cfg = self.config.get().cloned().unwrap_or_default();
                Attr::Known(
                    cfg.state_dir()
                        .join("stores")
                        .join(&m.name)
                        .display()
                        .to_string(),
                )
            }
        }
    }

    /// The store's URI, computed from its declaration; `Unknown` until its inputs are known.
    /// An `s3` store without a region takes the provider's, else the AWS region chain's.
    async fn resolve_uri(&self, m: &Model) -> Attr<String> {
        let conn = crate::ProviderConfig::of(&self.config).stores();
        match m.backend.as_str() {
            "local" => match self.resolve_path(m) {
                Attr::Known(p) => Attr::Known(format!("file://{p}")),
                _ => Attr::Unknown,
            },
            "s3" => {
                let region = match &m.region {
                    Attr::Known(r) => Some(r.clone()),
                    Attr::Unknown => return Attr::Unknown,
                    Attr::Null => match conn.aws_region.clone() {
                        Some(r) => Some(r),
                        None => modelplane_serve::objects::aws_sdk_config(
                            None,
                            conn.auth.aws_profile.clone(),
                        )
                        .await
                        .region()
                        .map(|r| r.to_string()),
                    },
                };
                Attr::Known(
                    Location {
                        service: Service::S3,
                        account: None,
                        bucket: m.name.clone(),
                        prefix: String::new(),
                        region: Some(region.unwrap_or_else(|| "us-east-1".into())),
                        endpoint: conn.aws_endpoint.clone(),
                        path_style: conn.aws_endpoint.is_some(),
                    }
                    .uri(),
                )
            }
            "s3_compatible" => {
                let region = match &m.region {
                    Attr::Known(r) => r.clone(),
                    Attr::Unknown => return Attr::Unknown,
                    Attr::Null => "us-east-1".into(),
                };
                Attr::Known(
                    Location {
                        service: Service::S3,
                        account: None,
                        bucket: m.name.clone(),
                        prefix: String::new(),
                        region: Some(region),
                        endpoint: m.endpoint.clone(),
                        path_style: m.path_style.unwrap_or(true),
                    }
                    .uri(),
                )
            }
            "azure_blob" => Attr::Known(
                Location {
                    service: Service::Azure,
                    account: m.storage_account.clone(),
                    bucket: m.name.clone(),
                    prefix: String::new(),
                    region: None,
                    endpoint: m.endpoint.clone(),
                    path_style: false,
                }
                .uri(),
            ),
            _ => Attr::Unknown,
        }
    }
}

fn open(m: &Model, conn: &stores::Connection, diags: &mut Diagnostics) -> Option<Box<dyn Store>> {
    let uri = m.uri.known()?;
    match stores::open(uri, conn) {
        Ok(s) => Some(s),
        Err(e) => {
            diags.error("Invalid model store", e.to_string());
            None
        }
    }
}

/// The state after the control plane applied a plan: its warnings shown, versioning
/// recorded; `None` (with the error) when it failed.
fn applied(
    mut m: Model,
    result: Result<stores::Report, stores::StoreError>,
    summary: &str,
    diags: &mut Diagnostics,
) -> Option<Model> {
    match result {
        Ok(report) => {
            for w in &report.warnings {
                diags.warning(format!("Model store {}", m.name), w.clone());
            }
            m.versioning = report.versioning.map_or(Attr::Null, Attr::Known);
            Some(m)
        }
        Err(e) => {
            diags.error(summary, e.to_string());
            None
        }
    }
}

/// Checks an Azure container name against Azure's rules.
pub fn check_container_name(n: &str) -> Result<(), String> {
    if n.len() < 3 || n.len() > 63 {
        return Err("must be 3 to 63 characters".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains {c:?}; Azure container names use lowercase letters, digits and '-'"
        ));
    }
    if n.starts_with('-') || n.ends_with('-') {
        return Err("must begin and end with a letter or digit".into());
    }
    if n.contains("--") {
        return Err("must not contain two hyphens in a row".into());
    }
    Ok(())
}

/// Checks an Azure storage account name.
pub fn check_account_name(n: &str) -> Result<(), String> {
    if n.len() < 3
        || n.len() > 24
        || !n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err("must be 3 to 24 lowercase letters and digits".into());
    }
    Ok(())
}

#[tfplugin::async_trait]
impl tfplugin::Resource for ModelStore {
    type Model = Model;

    fn type_name(&self) -> &'static str {
        "modelplane_model_store"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description(
                    "A model store: where immutable model versions live, as `NAME/VERSION/` folders with `model.onnx`, \
                     `model.json` (sha256, signature, lineage, validation report) and `baseline.json` (drift \
                     baseline). Models and endpoints name the store by its `id`, a URI that says how to reach it \
                     and holds no secret.\n\n\
                     - `local`: a directory on this machine, created on apply.\n\
                     - `s3`: an AWS S3 bucket, created (or adopted with `create = false`) with versioning, default \
                     encryption (SSE-S3, or SSE-KMS with `kms_key_id`), public access blocked, a lifecycle rule \
                     for replaced versions and tags. Credentials come from the AWS chain (environment, profiles, \
                     SSO, web identity, instance and container roles).\n\
                     - `s3_compatible`: the same on an on-prem server (MinIO, Ceph RGW) at `endpoint`; a feature \
                     the server lacks is reported as a warning.\n\
                     - `azure_blob`: a container in an existing storage account. Blob versioning is an account \
                     setting: it is detected and reported in `versioning`. Credentials come from the Azure \
                     identity chain, or an account key.\n\n\
                     Like `aws_s3_bucket`, destroy refuses a store that still holds versions unless \
                     `force_destroy` is set. An adopted bucket or container (`create = false`) is never deleted.",
                )
                .attribute(Attribute::new("id", Type::String).computed().stable().description("The store's URI (same as `uri`)."))
                .attribute(Attribute::new("name", Type::String).required().requires_replace().description(
                    "Store name. For `local`: letters, digits, `.`, `_`, `-`. For `s3` and `s3_compatible` it is the \
                     bucket name (S3 rules: 3–63 lowercase letters, digits, `.`, `-`). For `azure_blob` it is the \
                     container name (3–63 lowercase letters, digits, `-`).",
                ))
                .attribute(
                    Attribute::new("backend", Type::String)
                        .required()
                        .requires_replace()
                        .description("`local`, `s3`, `s3_compatible` or `azure_blob`."),
                )
                .attribute(
                    Attribute::new("path", Type::String)
                        .optional()
                        .requires_replace()
                        .description("`local`: the directory. Defaults to `STATE_DIR/stores/NAME`, where `STATE_DIR` is the provider's `local.state_dir`. Relative paths are resolved from where terraform runs."),
                )
                .attribute(Attribute::new("create", Type::Bool).optional().requires_replace().description(
                    "Object stores: `true` (default) creates the bucket or container, and destroy deletes it. \
                     `false` adopts an existing one: its settings are applied, and destroy leaves it and its \
                     contents in place.",
                ))
                .attribute(Attribute::new("region", Type::String).optional().computed().requires_replace().description(
                    "`s3`: the bucket's region (default: the provider's `aws.region`, else the AWS region chain, \
                     else `us-east-1`). `s3_compatible`: the region the server expects in signatures (default \
                     `us-east-1`).",
                ))
                .attribute(Attribute::new("endpoint", Type::String).optional().requires_replace().description(
                    "`s3_compatible` (required): the server's URL, e.g. `https://minio.example.internal:9000`. \
                     `azure_blob`: the blob endpoint with the account, for emulators and sovereign clouds \
                     (default `https://ACCOUNT.blob.core.windows.net`).",
                ))
                .attribute(Attribute::new("path_style", Type::Bool).optional().requires_replace().description(
                    "`s3_compatible`: path-style addressing (`ENDPOINT/BUCKET/KEY`, default `true`); `false` uses \
                     virtual-hosted style (`BUCKET.ENDPOINT/KEY`).",
                ))
                .attribute(Attribute::new("storage_account", Type::String).optional().requires_replace().description(
                    "`azure_blob` (required): the existing storage account's name.",
                ))
                .attribute(Attribute::new("kms_key_id", Type::String).optional().description(
                    "`s3`, `s3_compatible`: default encryption with this KMS key (SSE-KMS, bucket key on); \
                     SSE-S3 (AES-256) when unset.",
                ))
                .attribute(Attribute::new("noncurrent_version_days", Type::Number).optional().description(
                    "`s3`, `s3_compatible`: days a replaced or deleted object version is kept before the \
                     lifecycle rule deletes it (default 30; `0` keeps them). The rule also aborts multipart \
                     uploads left incomplete for 7 days.",
                ))
                .attribute(Attribute::new("tags", Type::map(Type::String)).optional().description(
                    "`s3`, `s3_compatible`: bucket tags.",
                ))
                .attribute(
                    Attribute::new("force_destroy", Type::Bool)
                        .optional()
                        .description("Delete the model versions in the store when the store is destroyed. Default `false`: destroy fails while versions remain."),
                )
                .attribute(Attribute::new("uri", Type::String).computed().stable().description(
                    "The store's URI: `file:///PATH`, `s3://BUCKET?region=R[&endpoint=URL&path_style=true]` or \
                     `az://ACCOUNT/CONTAINER[?endpoint=URL]`.",
                ))
                .attribute(Attribute::new("versioning", Type::String).computed().description(
                    "Object versioning as the service reports it: `Enabled`, `Suspended` or `Disabled`; null for \
                     `local`.",
                )),
        )
    }

    async fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        let backend = config.get::<String>("backend", diags);
        let name = config.get::<String>("name", diags);
        let Attr::Known(b) = backend else {
            crate::check_name(config, diags);
            return;
        };
        if !stores::BACKENDS.contains(&b.as_str()) {
            diags.error_at(
                AttributePath::attr("backend"),
                "Unsupported backend",
                format!("unknown backend {b:?}; use \"local\", \"s3\", \"s3_compatible\" or \"azure_blob\"."),
            );
            return;
        }
        for (attr, backends) in ATTRS {
            if !backends.contains(&b.as_str()) && !config.is_null(attr) {
                diags.error_at(
                    AttributePath::attr(*attr),
                    "Attribute not used by this backend",
                    format!(
                        "`{attr}` applies to backend {}, not {b:?}; remove it.",
                        backends
                            .iter()
                            .map(|x| format!("{x:?}"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                );
            }
        }
        let name_rule = match b.as_str() {
            "s3" | "s3_compatible" => Some((
                "bucket",
                stores::s3::check_bucket_name as fn(&str) -> Result<(), String>,
            )),
            "azure_blob" => Some((
                "container",
                check_container_name as fn(&str) -> Result<(), String>,
            )),
            _ => None,
        };
        match (name_rule, &name) {
            (Some((what, check)), Attr::Known(n)) => {
                if let Err(e) = check(n) {
                    diags.error_at(
                        AttributePath::attr("name"),
                        format!("Invalid {what} name"),
                        format!("name {n:?} is the {what} name and {e}."),
                    );
                }
            }
            (None, _) => crate::check_name(config, diags),
            _ => {}
        }
        if b == "s3_compatible" && config.is_null("endpoint") {
            diags.error_at(
                AttributePath::attr("endpoint"),
                "Missing endpoint",
                "An s3_compatible store needs the server's URL: endpoint = \"https://minio.example.internal:9000\".",
            );
        }
        if let Attr::Known(e) = config.get::<String>("endpoint", diags) {
            if url::Url::parse(&e)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .is_none()
            {
                diags.error_at(
                    AttributePath::attr("endpoint"),
                    "Invalid endpoint",
                    format!("endpoint {e:?} must be an http(s) URL, e.g. \"https://minio.example.internal:9000\"."),
                );
            }
        }
        if b == "azure_blob" {
            match config.get::<String>("storage_account", diags) {
                Attr::Null => diags.error_at(
                    AttributePath::attr("storage_account"),
                    "Missing storage account",
                    "An azure_blob store lives in an existing storage account: storage_account = \"acmemodels\".",
                ),
                Attr::Known(a) => {
                    if let Err(e) = check_account_name(&a) {
                        diags.error_at(
                            AttributePath::attr("storage_account"),
                            "Invalid storage account name",
                            format!("storage_account {a:?} {e}."),
                        );
                    }
                }
                Attr::Unknown => {}
            }
        }
        if let Attr::Known(d) = config.get::<i64>("noncurrent_version_days", diags) {
            if !(0..=36500).contains(&d) {
                diags.error_at(
                    AttributePath::attr("noncurrent_version_days"),
                    "Invalid noncurrent_version_days",
                    format!("noncurrent_version_days = {d}: use 0 (keep replaced versions) to 36500 days."),
                );
            }
        }
        if let Attr::Known(p) = config.get::<String>("path", diags) {
            if p.trim().is_empty() {
                diags.error_at(
                    AttributePath::attr("path"),
                    "Empty path",
                    "Set `path` to a directory, or leave it out for the default.",
                );
            }
        }
    }

    async fn modify_plan(
        &self,
        prior: Option<&Model>,
        plan: &mut Model,
        config: &Config,
        _ctx: &mut Ctx,
    ) {
        if let Some(p) = prior {
            plan.region = p.region.clone();
            plan.versioning = p.versioning.clone();
            return;
        }
        // An unset region is computed here, not left unknown: the URI depends on it.
        if config.is_null("region") {
            plan.region = Attr::Null;
        }
        // The URI is known at plan time, so models can be planned against a new store.
        let uri = self.resolve_uri(plan).await;
        if let Attr::Known(u) = &uri {
            if plan.backend != "local" && plan.backend != "azure_blob" && plan.region.is_null() {
                plan.region = Location::parse(u)
                    .ok()
                    .and_then(|l| l.region)
                    .map_or(Attr::Null, Attr::Known);
            }
        }
        if plan.backend != "local" && plan.backend != "azure_blob" && plan.region.is_null() {
            plan.region = Attr::Unknown;
        }
        if plan.backend == "local" || plan.backend == "azure_blob" {
            plan.region = Attr::Null;
        }
        plan.uri = uri.clone();
        plan.id = uri;
    }

    async fn create(&self, mut plan: Model, ctx: &mut Ctx) -> Option<Model> {
        // The URI planned is the one created (no second region lookup that could differ).
        let uri = match &plan.uri {
            Attr::Known(u) => Attr::Known(u.clone()),
            _ => self.resolve_uri(&plan).await,
        };
        let Attr::Known(uri) = uri else {
            ctx.diags.error_at(
                AttributePath::attr("path"),
                "Unknown store location",
                "`path`, `region`, `endpoint` and `storage_account` must be known at apply.",
            );
            return None;
        };
        plan.uri = Attr::Known(uri.clone());
        plan.id = Attr::Known(uri.clone());
        if plan.backend == "s3" || plan.backend == "s3_compatible" {
            plan.region = Location::parse(&uri)
                .ok()
                .and_then(|l| l.region)
                .map_or(Attr::Null, Attr::Known);
        }
        let store = open(&plan, &self.conn(), &mut ctx.diags)?;
        let result = store.create(&plan.settings()).await;
        applied(
            plan,
            result,
            "Cannot create the model store",
            &mut ctx.diags,
        )
    }

    async fn read(&self, mut state: Model, ctx: &mut Ctx) -> Option<Model> {
        let store = open(&state, &self.conn(), &mut ctx.diags)?;
        match store.exists().await {
            Ok(true) => {
                // A backend that cannot tell cheaply keeps what create or update recorded.
                if let Ok(stores::Report {
                    versioning: Some(v),
                    ..
                }) = store.inspect().await
                {
                    state.versioning = Attr::Known(v);
                }
                Some(state)
            }
            Ok(false) => None,
            Err(e) => {
                ctx.diags
                    .error("Cannot read the model store", e.to_string());
                Some(state)
            }
        }
    }

    async fn update(&self, _prior: Model, plan: Model, ctx: &mut Ctx) -> Option<Model> {
        // Encryption, lifecycle, tags and force_destroy change in place.
        let store = open(&plan, &self.conn(), &mut ctx.diags)?;
        let result = store.configure(&plan.settings()).await;
        applied(
            plan,
            result,
            "Cannot update the model store",
            &mut ctx.diags,
        )
    }

    async fn delete(&self, state: Model, ctx: &mut Ctx) {
        if !state.owned() {
            // Adopted: it was there before Terraform and stays after.
            return;
        }
        let Some(store) = open(&state, &self.conn(), &mut ctx.diags) else {
            return;
        };
        if let Err(e) = store.destroy(state.force_destroy.unwrap_or(false)).await {
            ctx.diags
                .error("Cannot destroy the model store", e.to_string());
        }
    }

    async fn import(&self, id: &str, ctx: &mut Ctx) -> Option<Model> {
        let store = match stores::open(id, &self.conn()) {
            Ok(s) => s,
            Err(e) => {
                ctx.diags.error(
                    "Invalid import ID",
                    format!(
                        "{e}. Import a store by its URI: file:///ABSOLUTE/PATH, s3://BUCKET?region=REGION \
                         (with &endpoint=URL&path_style=true for an S3-compatible server) or \
                         az://ACCOUNT/CONTAINER."
                    ),
                );
                return None;
            }
        };
        let empty = Model {
            id: Attr::Known(store.uri()),
            name: String::new(),
            backend: "local".into(),
            path: Attr::Null,
            create: None,
            region: Attr::Null,
            endpoint: None,
            path_style: None,
            storage_account: None,
            kms_key_id: None,
            noncurrent_version_days: None,
            tags: None,
            force_destroy: None,
            uri: Attr::Known(store.uri()),
            versioning: Attr::Null,
        };
        if !id.starts_with("file://") {
            let loc = Location::parse(id).ok()?;
            let conn = crate::ProviderConfig::of(&self.config).stores();
            let m = match loc.service {
                Service::Azure => Model {
                    name: loc.bucket.clone(),
                    backend: "azure_blob".into(),
                    storage_account: loc.account.clone(),
                    endpoint: loc.endpoint.clone(),
                    ..empty
                },
                // An endpoint that is not the provider's override is an S3-compatible server.
                Service::S3 if loc.endpoint.is_some() && loc.endpoint != conn.aws_endpoint => {
                    Model {
                        name: loc.bucket.clone(),
                        backend: "s3_compatible".into(),
                        region: loc.region.clone().map_or(Attr::Null, Attr::Known),
                        endpoint: loc.endpoint.clone(),
                        // Path style is the default for S3-compatible servers.
                        path_style: (!loc.path_style).then_some(false),
                        ..empty
                    }
                }
                Service::S3 => Model {
                    name: loc.bucket.clone(),
                    backend: "s3".into(),
                    region: loc.region.clone().map_or(Attr::Null, Attr::Known),
                    ..empty
                },
            };
            return match store.exists().await {
                Ok(true) => {
                    let mut m = m;
                    if let Ok(r) = store.inspect().await {
                        m.versioning = r.versioning.map_or(Attr::Null, Attr::Known);
                    }
                    Some(m)
                }
                Ok(false) => {
                    ctx.diags.error(
                        "Cannot import the model store",
                        format!("{id}: the bucket or container does not exist."),
                    );
                    None
                }
                Err(e) => {
                    ctx.diags
                        .error("Cannot import the model store", e.to_string());
                    None
                }
            };
        }
        let path = store.repository();
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A store at the default place was declared without `path`.
        let default = self.resolve_path(&Model {
            name: name.clone(),
            ..empty.clone()
        });
        let path = if default.known() == Some(&path) {
            Attr::Null
        } else {
            Attr::Known(path)
        };
        Some(Model {
            name,
            path,
            ..empty
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_names_follow_azure_rules() {
        assert!(check_container_name("models-prod").is_ok());
        for (bad, why) in [
            ("ab", "3 to 63"),
            ("Models", "lowercase"),
            ("a--b", "two hyphens"),
            ("-ab", "begin and end"),
        ] {
            let e = check_container_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_account_name("acmemodels01").is_ok());
        assert!(check_account_name("acme-models").is_err());
    }
}
