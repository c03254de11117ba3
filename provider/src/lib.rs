//! # terraform-provider-modelplane
//!
//! The Modelplane provider on top of `tfplugin`. One file per resource and data source:
//!
//! | Terraform type | code | docs | example | tests |
//! |---|---|---|---|---|
//! | `modelplane_gpu_cluster` | `resources/gpu_cluster.rs` | `docs/resources/gpu_cluster.md` | `examples/resources/modelplane_gpu_cluster/` | `tests/gpu_cluster.rs` |
//! | `modelplane_model_store` | `resources/model_store.rs` | `docs/resources/model_store.md` | `examples/resources/modelplane_model_store/` | `tests/model_store.rs`, `tests/model_store_cloud.rs` |
//! | `modelplane_model` | `resources/model.rs` | `docs/resources/model.md` | `examples/resources/modelplane_model/` | `tests/model.rs` |
//! | `modelplane_endpoint` | `resources/endpoint/` | `docs/resources/endpoint.md` | `examples/resources/modelplane_endpoint/` | `tests/endpoint.rs` |
//! | `modelplane_monitor` | `resources/monitor/` | `docs/resources/monitor.md` | `examples/resources/modelplane_monitor/` | `tests/monitor.rs` |
//! | `modelplane_serving_image` | `resources/serving_image.rs` | `docs/resources/serving_image.md` | `examples/resources/modelplane_serving_image/` | `tests/container.rs` |
//! | `modelplane_gpu_inventory` (data) | `data_sources/gpu_inventory.rs` | `docs/data-sources/gpu_inventory.md` | `examples/data-sources/modelplane_gpu_inventory/` | `tests/gpu_cluster.rs` |
//! | `modelplane_models` (data) | `data_sources/models.rs` | `docs/data-sources/models.md` | `examples/data-sources/modelplane_models/` | `tests/model.rs` |
//! | `modelplane_cost_estimate` (data) | `data_sources/cost_estimate.rs` | `docs/data-sources/cost_estimate.md` | `examples/data-sources/modelplane_cost_estimate/` | `tests/cost.rs` |
//! | `modelplane_model_signature` (data) | `data_sources/model_signature.rs` | `docs/data-sources/model_signature.md` | `examples/data-sources/modelplane_model_signature/` | `tests/model_signature.rs` |
//!
//! Behind them: [`ids`] (the IDs resources hand each other), [`platforms`] (where clusters and
//! endpoints run, one module per platform behind one trait), [`stores`] (where versions live,
//! one module per backend behind one trait), [`monitoring`] (rules, routes and dashboards,
//! and the managed Prometheus and Alertmanager) and [`cost`] (the price table, estimates and
//! budgets).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tfplugin::{
    Attr, Attribute, AttributePath, Block, Config, Diagnostics, NestedBlock, Nesting, Schema, Type,
};

pub mod cost;
pub mod data_sources;
pub mod governance;
pub mod ids;
pub mod monitoring;
pub mod platforms;
pub mod registry;
pub mod resources;
pub mod stores;

/// The provider's registry address.
pub const ADDRESS: &str = "registry.terraform.io/modelplane/modelplane";
/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings from the `provider "modelplane"` block, handed as values to the platforms and
/// stores that use them (nothing is kept in a process-global).
#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    pub terraform_version: String,
    /// The `local` block.
    pub local: LocalSettings,
    /// The `kubernetes` block: how `kubernetes` clusters are reached.
    pub kubernetes: platforms::kubernetes::KubeTarget,
    /// The `aws` block.
    pub aws: AwsSettings,
    /// The `azure` block.
    pub azure: AzureSettings,
    /// The `pricing` block.
    pub pricing: cost::Pricing,
    /// The `governance` block.
    pub governance: governance::Policy,
}

/// The `local` block.
#[derive(Clone, Debug, Default)]
pub struct LocalSettings {
    /// Where the local platform keeps endpoint state.
    pub state_dir: Option<String>,
}

/// The `aws` block; credentials come from the AWS default chain.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// The URL of `aws` clusters' Kubernetes API servers, in place of the one EKS reports.
    pub kubernetes_endpoint_url: Option<String>,
}

/// The `azure` block; credentials come from the Azure identity chain.
#[derive(Clone, Default)]
pub struct AzureSettings {
    pub subscription_id: Option<String>,
    pub tenant_id: Option<String>,
    pub storage_account_key: Option<String>,
    /// The resource group of `azure` clusters.
    pub resource_group: Option<String>,
    /// Where new `azure` resources go, e.g. `westeurope`.
    pub location: Option<String>,
    /// Azure Resource Manager's URL: a sovereign cloud's, or a test's.
    pub arm_endpoint: Option<String>,
    /// The URL `azure` clusters' Kubernetes API is reached at, in place of the one AKS reports.
    pub kubernetes_endpoint_url: Option<String>,
    /// Use the IMDS managed identity of the VM Terraform runs on.
    pub use_managed_identity: bool,
}

impl std::fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSettings")
            .field("subscription_id", &self.subscription_id)
            .field("tenant_id", &self.tenant_id)
            .field(
                "storage_account_key",
                &self.storage_account_key.as_ref().map(|_| "(sensitive)"),
            )
            .field("resource_group", &self.resource_group)
            .field("location", &self.location)
            .field("arm_endpoint", &self.arm_endpoint)
            .field("kubernetes_endpoint_url", &self.kubernetes_endpoint_url)
            .field("use_managed_identity", &self.use_managed_identity)
            .finish()
    }
}

impl ProviderConfig {
    /// The provider's configuration, or the defaults before it is configured (validation).
    pub fn of(config: &OnceLock<ProviderConfig>) -> ProviderConfig {
        config.get().cloned().unwrap_or_default()
    }

    /// How this provider reaches object stores.
    pub fn stores(&self) -> stores::Connection {
        stores::Connection {
            auth: modelplane_serve::objects::Auth {
                aws_profile: self.aws.profile.clone(),
                azure_account_key: self.azure.storage_account_key.clone(),
            },
            aws_region: self.aws.region.clone(),
            aws_endpoint: self.aws.endpoint_url.clone(),
        }
    }

    /// Environment a server on this machine needs to reach its store with this provider's
    /// credentials.
    pub fn server_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(p) = &self.aws.profile {
            env.push(("AWS_PROFILE".to_string(), p.clone()));
        }
        if let Some(k) = &self.azure.storage_account_key {
            env.push(("AZURE_STORAGE_KEY".to_string(), k.clone()));
        }
        env
    }

    /// Where the local platform keeps its state: `local.state_dir`, else
    /// `$XDG_STATE_HOME/modelplane`, else `~/.local/state/modelplane`.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.local.state_dir {
            return PathBuf::from(absolute(d));
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("modelplane");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        home.join(".local/state/modelplane")
    }
}

/// Makes a path absolute against the working directory (where terraform runs).
pub fn absolute(p: &str) -> String {
    let path = std::path::Path::new(p);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    // Normalise `.` and `..` without touching the file system (the folder may not exist yet).
    let mut out = std::path::PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.display().to_string()
}

/// Checks the `name` of a cluster, store or endpoint: letters, digits, `.`, `_`, `-`.
pub fn check_name(config: &Config, diags: &mut Diagnostics) {
    if let Attr::Known(n) = config.get::<String>("name", diags) {
        if let Err(e) = crate::stores::check_segment(&n) {
            diags.error_at(
                AttributePath::attr("name"),
                "Invalid name",
                format!("name {n:?} {e}."),
            );
        }
    }
}

/// The Modelplane provider.
#[derive(Default)]
pub struct Modelplane {
    config: Arc<OnceLock<ProviderConfig>>,
}

impl Modelplane {
    pub fn new() -> Self {
        Self::default()
    }
}

fn provider_schema() -> Schema {
    let block = |desc: &str, attrs: Vec<Attribute>| {
        let mut b = Block::new().description(desc);
        for a in attrs {
            b = b.attribute(a);
        }
        b
    };
    Schema::new(
        Block::new()
            .description(
                "Modelplane puts machine-learning models into production with `terraform apply`: GPU clusters, \
                 model stores, immutable model versions, serving endpoints and monitoring, with one vocabulary on \
                 this machine, container engines, Kubernetes, AWS and Azure.\n\nEvery block is optional. \
                 Credentials come from each platform's standard chain (AWS: environment, profiles, SSO, IMDS; \
                 Azure: environment, CLI, managed identity; Kubernetes: kubeconfig) and never land in state.",
            )
            .block(NestedBlock::new(
                "local",
                Nesting::Single,
                block(
                    "Settings for the `local` platform (this machine).",
                    vec![Attribute::new("state_dir", Type::String).optional().description(
                        "Folder for endpoint state (configs, logs, pids). Defaults to `$XDG_STATE_HOME/modelplane` \
                         or `~/.local/state/modelplane`.",
                    )],
                ),
            ))
            .block(NestedBlock::new(
                "kubernetes",
                Nesting::Single,
                block(
                    "Settings for the `kubernetes` platform (and the Kubernetes side of EKS and AKS), read through \
                     kube's client configuration. Unset means the standard chain: `KUBECONFIG`, `~/.kube/config`, \
                     then the in-cluster service account. kubeconfig exec plugins (`aws eks get-token`, \
                     `kubelogin`, `oc`) and auth providers work as in kubectl.",
                    vec![
                        Attribute::new("config_path", Type::String).optional().description("Path to a kubeconfig file (instead of `KUBECONFIG` or `~/.kube/config`)."),
                        Attribute::new("context", Type::String).optional().description("kubeconfig context to use (default: its current context)."),
                        Attribute::new("in_cluster", Type::Bool).optional().description("Use the service account of the pod Terraform runs in."),
                        Attribute::new("host", Type::String).optional().description("API server URL, e.g. `https://api.ocp.example:6443`, with `token` and `cluster_ca_certificate`; overrides the kubeconfig."),
                        Attribute::new("token", Type::String).optional().sensitive().description("Bearer token for `host`. Never stored in state; prefer a kubeconfig with an exec plugin."),
                        Attribute::new("cluster_ca_certificate", Type::String).optional().sensitive().description("PEM text of the CA that signed the API server's certificate, for `host`."),
                        Attribute::new("insecure", Type::Bool).optional().description("Skip verification of the API server's certificate. For throwaway clusters only."),
                    ],
                ),
            ))
            .block(NestedBlock::new(
                "aws",
                Nesting::Single,
                block(
                    "Settings for AWS (S3, EKS, ECR). Credentials come from the AWS default chain.",
                    vec![
                        Attribute::new("region", Type::String).optional().description("AWS region, e.g. `eu-west-1`."),
                        Attribute::new("profile", Type::String).optional().description("Named profile from the shared config files."),
                        Attribute::new("endpoint_url", Type::String).optional().description(
                            "Override of the AWS endpoints (S3 for `s3` stores; EKS, IAM and STS for `aws` clusters): \
                             emulators, VPC or FIPS endpoints. On-prem S3-compatible servers are better declared \
                             with `backend = \"s3_compatible\"` and the store's own `endpoint`.",
                        ),
                        Attribute::new("kubernetes_endpoint_url", Type::String).optional().description(
                            "The URL `aws` clusters' Kubernetes API is reached at, in place of the endpoint EKS \
                             reports: a tunnel or proxy to a private endpoint (the EKS token is still sent). \
                             The API server's certificate is then checked against the system's roots.",
                        ),
                    ],
                ),
            ))
            .block(NestedBlock::new(
                "azure",
                Nesting::Single,
                block(
                    "Settings for Azure (Blob, AKS, ACR). Credentials come from the Azure identity chain, in this order: \
                     a service principal in the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), \
                     workload identity (`AZURE_FEDERATED_TOKEN_FILE`), a managed identity, the Azure CLI (`az login`).",
                    vec![
                        Attribute::new("subscription_id", Type::String).optional().description("Azure subscription ID."),
                        Attribute::new("tenant_id", Type::String).optional().description("Microsoft Entra tenant ID."),
                        Attribute::new("storage_account_key", Type::String).optional().sensitive().description(
                            "Shared key of the storage accounts of `azure_blob` stores, for emulators and \
                             accounts without Entra ID access. Prefer the identity chain; the key can also \
                             come from `AZURE_STORAGE_KEY` or `AZURE_STORAGE_CONNECTION_STRING`. Never \
                             stored in state; servers get it through their environment.",
                        ),
                        Attribute::new("resource_group", Type::String).optional().description(
                            "Resource group of `azure` clusters (and of the registries and identities made for \
                             them). A cluster's `azure.create_resource_group` creates it.",
                        ),
                        Attribute::new("location", Type::String).optional().description(
                            "Azure region of new resources, e.g. `westeurope`.",
                        ),
                        Attribute::new("arm_endpoint", Type::String).optional().description(
                            "Azure Resource Manager's URL. Default: `https://management.azure.com`. Set it for a \
                             sovereign cloud (with `AZURE_AUTHORITY_HOST` for its Entra ID), or an emulator.",
                        ),
                        Attribute::new("kubernetes_endpoint_url", Type::String).optional().description(
                            "The URL `azure` clusters' Kubernetes API is reached at, in place of the one AKS \
                             reports: a tunnel or proxy to a private cluster (the Entra ID token is still sent).",
                        ),
                        Attribute::new("use_managed_identity", Type::Bool).optional().description(
                            "Take credentials from the managed identity of the Azure VM Terraform runs on (IMDS). \
                             Off by default so a machine outside Azure never waits on IMDS; App Service and \
                             Container Apps identities, workload identity, the environment and the Azure CLI \
                             are found without it.",
                        ),
                    ],
                ),
            ))
            .block(cost::provider_block())
            .block(governance::provider_block()),
    )
}

#[tfplugin::async_trait]
impl tfplugin::Provider for Modelplane {
    fn type_name(&self) -> &'static str {
        "modelplane"
    }

    fn schema(&self) -> Schema {
        provider_schema()
    }

    async fn configure(&self, terraform_version: &str, config: &Config, diags: &mut Diagnostics) {
        let local_state_dir = config
            .get_path::<String>(
                &tfplugin::AttributePath::attr("local").then_attr("state_dir"),
                diags,
            )
            .into_known();
        let get = |block: &str, attr: &str, diags: &mut Diagnostics| {
            config
                .get_path::<String>(&tfplugin::AttributePath::attr(block).then_attr(attr), diags)
                .into_known()
        };
        let flag = |attr: &str, diags: &mut Diagnostics| {
            config
                .get_path::<bool>(
                    &tfplugin::AttributePath::attr("kubernetes").then_attr(attr),
                    diags,
                )
                .into_known()
                .unwrap_or(false)
        };
        let kubernetes = platforms::kubernetes::Connection {
            config_path: get("kubernetes", "config_path", diags),
            context: get("kubernetes", "context", diags),
            in_cluster: flag("in_cluster", diags),
            host: get("kubernetes", "host", diags),
            token: get("kubernetes", "token", diags),
            cluster_ca_certificate: get("kubernetes", "cluster_ca_certificate", diags),
            insecure: flag("insecure", diags),
        };
        if kubernetes.token.is_some() && kubernetes.host.is_none() {
            diags.error_at(
                tfplugin::AttributePath::attr("kubernetes").then_attr("token"),
                "Token without host",
                "kubernetes.token is used with kubernetes.host; set host too, or drop token and use a kubeconfig.",
            );
        }
        let pricing = cost::configure(config, diags);
        let governance = governance::configure(config, diags);
        let _ = self.config.set(ProviderConfig {
            pricing,
            governance,
            terraform_version: terraform_version.to_string(),
            local: LocalSettings {
                state_dir: local_state_dir,
            },
            kubernetes: platforms::kubernetes::KubeTarget::Config(kubernetes),
            aws: AwsSettings {
                region: get("aws", "region", diags),
                profile: get("aws", "profile", diags),
                endpoint_url: get("aws", "endpoint_url", diags),
                kubernetes_endpoint_url: get("aws", "kubernetes_endpoint_url", diags),
            },
            azure: AzureSettings {
                subscription_id: get("azure", "subscription_id", diags),
                tenant_id: get("azure", "tenant_id", diags),
                storage_account_key: get("azure", "storage_account_key", diags),
                resource_group: get("azure", "resource_group", diags),
                location: get("azure", "location", diags),
                arm_endpoint: get("azure", "arm_endpoint", diags),
                kubernetes_endpoint_url: get("azure", "kubernetes_endpoint_url", diags),
                use_managed_identity: config
                    .get_path::<bool>(
                        &tfplugin::AttributePath::attr("azure").then_attr("use_managed_identity"),
                        diags,
                    )
                    .into_known()
                    .unwrap_or(false),
            },
        });
    }

    fn resources(&self) -> Vec<Arc<dyn tfplugin::framework::DynResource>> {
        vec![
            tfplugin::resource(resources::gpu_cluster::GpuCluster {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::model_store::ModelStore {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::model::ModelVersion {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::endpoint::Endpoint {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::model_approval::ModelApproval {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::endpoint_model::EndpointModel {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::serving_image::ServingImage {
                config: self.config.clone(),
            }),
            tfplugin::resource(resources::monitor::Monitor {
                config: self.config.clone(),
            }),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn tfplugin::framework::DynDataSource>> {
        vec![
            tfplugin::data_source(data_sources::model_signature::ModelSignature),
            tfplugin::data_source(data_sources::gpu_inventory::GpuInventory),
            tfplugin::data_source(data_sources::models::Models {
                config: self.config.clone(),
            }),
            tfplugin::data_source(data_sources::cost_estimate::CostEstimate {
                config: self.config.clone(),
            }),
            tfplugin::data_source(data_sources::audit::Audit {
                config: self.config.clone(),
            }),
        ]
    }
}
