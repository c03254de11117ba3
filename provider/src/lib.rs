//! # terraform-provider-modelplane
//!
//! The Modelplane provider on top of `tfplugin`. One file per resource and data source:
//!
//! | Terraform type | code | docs | example |
//! |---|---|---|---|
//! | `modelplane_model_signature` (data) | `data_sources/model_signature.rs` | `docs/data-sources/model_signature.md` | `examples/data-sources/modelplane_model_signature/` |

use std::sync::{Arc, OnceLock};

use tfplugin::{Attribute, Block, Config, Diagnostics, NestedBlock, Nesting, Schema, Type};

pub mod data_sources;

/// The provider's registry address.
pub const ADDRESS: &str = "registry.terraform.io/modelplane/modelplane";
/// This build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings from the `provider "modelplane"` block, shared by every resource.
#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    pub terraform_version: String,
    /// `local.state_dir`: where the local platform keeps endpoint state.
    pub local_state_dir: Option<String>,
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
                    "Settings for the `kubernetes` platform. Read by Kubernetes platform resources; unset means the \
                     standard kubeconfig chain (`KUBECONFIG`, `~/.kube/config`, in-cluster).",
                    vec![
                        Attribute::new("config_path", Type::String).optional().description("Path to a kubeconfig file."),
                        Attribute::new("context", Type::String).optional().description("kubeconfig context to use."),
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
                            "Override of the service endpoint (S3-compatible stores, emulators).",
                        ),
                    ],
                ),
            ))
            .block(NestedBlock::new(
                "azure",
                Nesting::Single,
                block(
                    "Settings for Azure (Blob, AKS, ACR). Credentials come from the Azure identity chain.",
                    vec![
                        Attribute::new("subscription_id", Type::String).optional().description("Azure subscription ID."),
                        Attribute::new("tenant_id", Type::String).optional().description("Microsoft Entra tenant ID."),
                    ],
                ),
            )),
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
            .get_path::<String>(&tfplugin::AttributePath::attr("local").then_attr("state_dir"), diags)
            .into_known();
        let _ = self.config.set(ProviderConfig { terraform_version: terraform_version.to_string(), local_state_dir });
    }

    fn data_sources(&self) -> Vec<Arc<dyn tfplugin::framework::DynDataSource>> {
        vec![tfplugin::data_source(data_sources::model_signature::ModelSignature)]
    }
}
