//! The `azure` platform: an AKS cluster with GPU agent pools, created by the provider (or
//! adopted with `azure.adopt`), and everything else as on [`kubernetes`](super::kubernetes):
//! partitions, endpoints and monitors are Kubernetes objects in it, reached with the API
//! server and CA from `listClusterUserCredential` and an Entra ID token from the same
//! credential chain (no local account, no kubelogin, no secret in state).
//!
//! | file | what |
//! |---|---|
//! | [`arm`] | a typed Azure Resource Manager client: tokens, retries, long-running operations, errors |
//! | [`aks`] | the managed cluster and agent pool bodies, checked against Microsoft's models |
//! | [`acr`] | ACR registries, AcrPull for clusters, and the token-exchange login, for `modelplane_serving_image` |
//! | [`cluster`] | create, refresh, import and destroy of a cluster, in order; GPU readiness |
//! | [`identity`] | the workload identity an endpoint's server reads its Blob store with |
//! | [`credential`] | the credential chain: environment, workload identity, managed identity, Azure CLI |
//!
//! What the provider creates on Azure is recorded in the cluster's `objects` with an `azure:`
//! prefix (`azure:resource-group/NAME`, `azure:managed-cluster/NAME`, `azure:agent-pool/NAME`),
//! next to the Kubernetes objects, so that destroy removes exactly what was created, in order,
//! and nothing it adopted.

pub mod acr;
pub mod aks;
pub mod arm;
pub mod cluster;
pub mod credential;
pub mod identity;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tfplugin::{Attr, AttributePath, Config, Diagnostics, PathStep};

use crate::ids::ClusterId;
use crate::platforms::kubernetes::{self, Connection, KubeTarget, Kubernetes};
use crate::platforms::managed::{annotate, annotated, ManagedCluster};
use crate::platforms::rollout::{NoUndo, Rollout, Undo};
use crate::platforms::Platform as _;
use crate::platforms::{
    ClusterFacts, ClusterSpec, Deployment, EndpointSpec, PartitionSeen, PlatformError, Previous,
};
use crate::AzureSettings;

/// The `azure` block of a `modelplane_gpu_cluster`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterSettings {
    /// Kubernetes version of a new cluster (`1.33`); AKS's default when unset.
    pub kubernetes_version: Option<String>,
    /// Create the provider's resource group when it does not exist.
    pub create_resource_group: bool,
    /// Take an existing cluster by name: only agent pools and partitions are created in it.
    pub adopt: bool,
    /// The system pool's VM size.
    pub system_vm_size: Option<String>,
}

/// The system pool's VM size when none is given.
pub const DEFAULT_SYSTEM_VM_SIZE: &str = "Standard_D4s_v5";
/// The Entra ID application of AKS's API servers: tokens for it are the Kubernetes bearer
/// tokens of AKS clusters with Entra ID (what kubelogin fetches).
pub const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// What an `azure` cluster needs from the provider's block: the ARM client and where things
/// go.
#[derive(Clone, Debug)]
pub struct Context {
    pub arm: arm::Arm,
    pub credential: Arc<dyn azure_core::credentials::TokenCredential>,
    pub resource_group: String,
    pub location: Option<String>,
    /// The tenant, where the provider's block or `AZURE_TENANT_ID` names it.
    pub tenant: Option<String>,
}

impl Context {
    /// From the provider's `azure` block and the credential chain.
    pub fn load(settings: &AzureSettings) -> Result<Self, PlatformError> {
        let subscription = settings
            .subscription_id
            .clone()
            .or_else(|| std::env::var("AZURE_SUBSCRIPTION_ID").ok().filter(|s| !s.is_empty()))
            .ok_or_else(|| PlatformError::Unreachable("no Azure subscription: set the provider's azure.subscription_id or AZURE_SUBSCRIPTION_ID".into()))?;
        let resource_group = settings.resource_group.clone().ok_or_else(|| {
            PlatformError::Unreachable(
                "no resource group: set the provider's azure.resource_group (a cluster's azure.create_resource_group creates it)".into(),
            )
        })?;
        let credential: Arc<dyn azure_core::credentials::TokenCredential> =
            Arc::new(credential::Chain::new(settings));
        let endpoint = settings
            .arm_endpoint
            .as_deref()
            .unwrap_or(arm::PUBLIC_ENDPOINT);
        let arm = arm::Arm::new(credential.clone(), endpoint, &subscription, None)
            .map_err(|e| PlatformError::Unreachable(e.to_string()))?;
        Ok(Context {
            arm,
            credential,
            resource_group,
            location: settings.location.clone(),
            tenant: settings
                .tenant_id
                .clone()
                .or_else(|| std::env::var("AZURE_TENANT_ID").ok()),
        })
    }

    /// The managed cluster's ARM path.
    pub fn cluster_path(&self, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.ContainerService/managedClusters/{name}",
            self.arm.group_path(&self.resource_group)
        )
    }
}

/// A cluster's [`Context`], made when first needed and shared by the cloud and Kubernetes
/// sides (one credential chain, its tokens kept).
#[derive(Clone, Debug, Default)]
pub struct Shared(Arc<std::sync::OnceLock<Result<Context, String>>>);

impl Shared {
    /// One already made (tests).
    pub fn of(ctx: Context) -> Self {
        let s = Shared::default();
        let _ = s.0.set(Ok(ctx));
        s
    }

    pub fn get(&self, settings: &AzureSettings) -> Result<Context, PlatformError> {
        self.0
            .get_or_init(|| Context::load(settings).map_err(|e| e.to_string()))
            .clone()
            .map_err(PlatformError::Unreachable)
    }
}

/// The Kubernetes API of an AKS cluster: its server and CA from `listClusterUserCredential`,
/// an Entra ID token for AKS's server application from the credential chain.
/// `kubernetes_endpoint_url` in the provider's `azure` block takes the place of the server.
#[derive(Clone, Debug)]
pub struct AksTarget {
    pub settings: AzureSettings,
    pub cluster: String,
    pub context: Shared,
}

/// The server and CA (PEM) of the first cluster of a kubeconfig.
pub fn server_of(kubeconfig: &str) -> Result<(String, Option<String>), String> {
    let doc: serde_json::Value = serde_yaml_ng::from_str(kubeconfig)
        .map_err(|e| format!("the cluster's kubeconfig is not YAML: {e}"))?;
    let c = &doc["clusters"][0]["cluster"];
    let server = c["server"]
        .as_str()
        .ok_or("the cluster's kubeconfig names no server")?
        .to_string();
    let ca = match c["certificate-authority-data"].as_str() {
        Some(d) if !d.is_empty() => Some(
            base64::engine::general_purpose::STANDARD
                .decode(d)
                .ok()
                .and_then(|pem| String::from_utf8(pem).ok())
                .ok_or("the cluster's certificate authority is not base64 PEM")?,
        ),
        _ => None,
    };
    Ok((server, ca))
}

impl AksTarget {
    pub async fn connect(&self) -> Result<(kube::Client, String), String> {
        let ctx = self
            .context
            .get(&self.settings)
            .map_err(|e| e.to_string())?;
        let (server, ca) = cluster::user_server(&ctx, &self.cluster)
            .await
            .map_err(|e| e.to_string())?;
        let token = ctx
            .credential
            .get_token(&[&format!("{AKS_SERVER_APP}/.default")], None)
            .await
            .map_err(|e| format!("no Entra ID token for the AKS API: {e}"))?;
        let (host, ca) = match &self.settings.kubernetes_endpoint_url {
            Some(url) => (url.clone(), None),
            None => (server, ca),
        };
        Connection {
            host: Some(host),
            token: Some(token.token.secret().to_string()),
            cluster_ca_certificate: ca,
            ..Default::default()
        }
        .connect()
        .await
    }
}

/// The `azure` platform of one cluster.
pub struct Azure {
    pub cluster: ClusterId,
    pub settings: AzureSettings,
    pub context: Shared,
    /// The cluster's Kubernetes side: partitions, the device plugin, endpoints, monitors.
    pub kube: Kubernetes,
    /// How often waits ask again.
    pub poll: Duration,
}

impl Azure {
    pub fn new(cluster: ClusterId, config: &crate::ProviderConfig) -> Self {
        let context = Shared::default();
        let target = KubeTarget::Aks(Box::new(AksTarget {
            settings: config.azure.clone(),
            cluster: cluster.name.clone(),
            context: context.clone(),
        }));
        Azure {
            kube: Kubernetes {
                cluster: cluster.clone(),
                target,
            },
            cluster,
            settings: config.azure.clone(),
            context,
            poll: Duration::from_secs(10),
        }
    }

    fn context(&self) -> Result<Context, PlatformError> {
        self.context.get(&self.settings)
    }

    /// The identity the endpoint's server reads its Blob store with: none when its
    /// ServiceAccount is annotated already or the store is not Azure's; `azure.client_id`; or
    /// one made for it ([`identity`]). Returns the client ID and what was made.
    async fn endpoint_identity(
        &self,
        spec: &EndpointSpec,
    ) -> Result<Option<(String, Vec<String>)>, PlatformError> {
        if annotated(spec, identity::CLIENT_ID_ANNOTATION) {
            return Ok(None);
        }
        let settings = spec.azure.clone().unwrap_or_default();
        if let Some(id) = settings.client_id {
            return Ok(Some((id, Vec::new())));
        }
        let Some((account, container)) = identity::blob_location(&spec.serve.repository) else {
            return Ok(None);
        };
        if !settings.create_identity() {
            return Ok(None);
        }
        let (namespace, service_account) = self.kube.endpoint_identity(spec).await?;
        let ctx = self.context()?;
        let made = identity::ensure(
            &ctx,
            &identity::For {
                cluster: &self.cluster.name,
                name: &spec.name,
                namespace: &namespace,
                service_account: &service_account,
                account: &account,
                container: &container,
            },
        )
        .await?;
        Ok(Some(made))
    }

    /// `previous` with the client ID its server ran with annotated on its spec (a rollback
    /// renders it again): its `azure.client_id`, or the identity its objects record.
    async fn previous_with_identity(
        &self,
        previous: &Previous,
        now: Option<&(String, Vec<String>)>,
        ctx: &mut tfplugin::Ctx,
    ) -> Previous {
        let mut p = previous.clone();
        let Some(spec) = p.spec.as_mut() else {
            return p;
        };
        if annotated(spec, identity::CLIENT_ID_ANNOTATION) {
            return p;
        }
        let recorded = previous
            .deployment
            .objects
            .iter()
            .flatten()
            .find(|o| o.starts_with(identity::IDENTITY_ENTRY))
            .cloned();
        let id = match (
            spec.azure.as_ref().and_then(|a| a.client_id.clone()),
            recorded,
        ) {
            (Some(id), _) => Some(id),
            (None, None) => None,
            (None, Some(entry)) => match now {
                Some((id, made)) if made.contains(&entry) => Some(id.clone()),
                _ => {
                    let name = entry.trim_start_matches(identity::IDENTITY_ENTRY);
                    match async { identity::client_id(&self.context()?, name).await }.await {
                        Ok(id) => Some(id),
                        Err(e) => {
                            ctx.diags.warning(
                                "The previous managed identity could not be read",
                                format!("{e}. Should this change be rolled back, the server runs without the identity {name} and cannot read its store."),
                            );
                            None
                        }
                    }
                }
            },
        };
        if let Some(id) = id {
            annotate(spec, identity::CLIENT_ID_ANNOTATION, &id);
        }
        p
    }

    /// The Kubernetes deploy with the server's identity: what was made is recorded in
    /// `objects`, deleted again when a create is undone, and what an earlier apply made and
    /// this one no longer uses is deleted after a successful deploy.
    async fn deploy_with_identity(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut tfplugin::Ctx,
    ) -> Rollout {
        let made = match self.endpoint_identity(spec).await {
            Ok(m) => m,
            Err(e) => {
                return Rollout {
                    deployment: None,
                    result: Err(e),
                    undo: Box::new(NoUndo),
                }
            }
        };
        let mut spec = spec.clone();
        if let Some((id, _)) = &made {
            annotate(&mut spec, identity::CLIENT_ID_ANNOTATION, id);
        }
        let previous = match previous {
            Some(p) => Some(self.previous_with_identity(p, made.as_ref(), ctx).await),
            None => None,
        };
        let mut rollout = self.kube.deploy(&spec, previous.as_ref(), ctx).await;
        let entries = made.map(|(_, e)| e).unwrap_or_default();
        if let Some(d) = rollout.deployment.as_mut() {
            d.objects
                .get_or_insert_with(Vec::new)
                .extend(entries.iter().cloned());
        }
        match (&rollout.result, &previous) {
            (Ok(()), Some(p)) => {
                let stale: Vec<String> = p
                    .deployment
                    .objects
                    .iter()
                    .flatten()
                    .filter(|o| o.starts_with("azure:") && !entries.contains(o))
                    .cloned()
                    .collect();
                if !stale.is_empty() {
                    if let Err(e) = async { identity::delete(&self.context()?, &stale).await }.await
                    {
                        ctx.diags.warning(
                            "A managed identity the endpoint no longer uses is left",
                            format!("{e}. Delete it by hand."),
                        );
                    }
                }
            }
            (Err(_), None) if !entries.is_empty() => {
                if let Ok(c) = self.context() {
                    rollout.undo = Box::new(DeleteIdentityToo {
                        inner: rollout.undo,
                        context: c,
                        entries,
                    });
                }
            }
            _ => {}
        }
        rollout
    }
}

/// Undoes a failed create: the Kubernetes objects, then the identity made for them.
struct DeleteIdentityToo {
    inner: Box<dyn Undo>,
    context: Context,
    entries: Vec<String>,
}

#[tfplugin::async_trait]
impl Undo for DeleteIdentityToo {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        self.inner.undo().await?;
        identity::delete(&self.context, &self.entries).await
    }
}

/// AKS's rule for Linux agent pool names.
fn valid_pool_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && n.len() <= 12
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Plan-time checks of an `azure` cluster.
fn validate(config: &Config, diags: &mut Diagnostics) {
    if !config.get::<String>("engine", diags).is_null() {
        diags.error_at(
            AttributePath::attr("engine"),
            "Not used on azure",
            "engine applies to container clusters; remove it.",
        );
    }
    crate::platforms::cloud_blocks_not_used(config, "azure", diags);
    for (i, pool) in config.elements("node_pool").iter().enumerate() {
        let at = |a: &str| {
            AttributePath(vec![
                PathStep::Attr("node_pool".into()),
                PathStep::Index(i as i64),
                PathStep::Attr(a.into()),
            ])
        };
        if let Attr::Known(n) = pool.get::<String>("name", diags) {
            if !valid_pool_name(&n) {
                diags.error_at(at("name"), "Invalid agent pool name", format!("{n:?} cannot name an AKS agent pool: use 1 to 12 lowercase letters and digits, starting with a letter (e.g. \"gpua100\")."));
            }
            if n == "system" {
                diags.error_at(
                    at("name"),
                    "Invalid agent pool name",
                    "\"system\" is the cluster's own system pool; choose another name.",
                );
            }
        }
        if !pool.get::<Vec<String>>("instance_types", diags).is_null() {
            diags.error_at(at("instance_types"), "Not used on azure", "an AKS agent pool has one VM size: set instance_type (e.g. \"Standard_NC4as_T4_v3\").");
        }
        let size = pool.get::<String>("instance_type", diags);
        let gpus = match &size {
            Attr::Null => {
                diags.error_at(at("instance_type"), "Missing VM size", "a node pool on azure needs instance_type, the VM size (e.g. \"Standard_NC24ads_A100_v4\").");
                None
            }
            Attr::Known(s) => {
                if !s.starts_with("Standard_") {
                    diags.error_at(at("instance_type"), "Invalid VM size", format!("{s:?} is not an Azure VM size; write it as Azure does, e.g. \"Standard_NC4as_T4_v3\"."));
                }
                Some(aks::vm_gpus(s))
            }
            _ => None,
        };
        if let Some(g) = gpus {
            let size = size.known().cloned().unwrap_or_default();
            let nvidia = matches!(g, aks::VmGpus::Nvidia { .. });
            if let Attr::Known(n) = pool.get::<i64>("gpu_count", diags) {
                if n > 0 && !nvidia {
                    let why = if g == aks::VmGpus::Amd {
                        "has AMD GPUs, which the NVIDIA device plugin cannot use"
                    } else {
                        "has no GPUs"
                    };
                    diags.error_at(at("gpu_count"), "No NVIDIA GPUs on this VM size", format!("{size} {why}, but gpu_count is {n}; use an NC, ND or NV (v5 and later) size, or drop gpu_count."));
                }
            }
            if !pool.elements("gpu_sharing").is_empty() && !nvidia {
                diags.error_at(
                    at("gpu_sharing"),
                    "No GPUs to share",
                    format!("{size} has no NVIDIA GPUs; gpu_sharing applies to GPU pools."),
                );
            }
            if let Attr::Known(profile) = pool.get::<String>("gpu_instance", diags) {
                if g != (aks::VmGpus::Nvidia { mig: true }) {
                    diags.error_at(at("gpu_instance"), "MIG not available on this VM size", format!("{size} has no A100 or H100 GPUs, so it cannot be split into {profile} instances; use e.g. Standard_NC24ads_A100_v4, or drop gpu_instance."));
                }
            }
            if !pool.get::<String>("gpu_driver", diags).is_null() && !nvidia {
                diags.error_at(
                    at("gpu_driver"),
                    "No GPUs on this VM size",
                    format!("{size} has no NVIDIA GPUs; gpu_driver applies to GPU pools."),
                );
            }
        }
        if let Attr::Known(p) = pool.get::<f64>("spot_max_price", diags) {
            let spot = pool
                .get::<bool>("spot", diags)
                .known()
                .copied()
                .unwrap_or(false);
            if !spot {
                diags.error_at(
                    at("spot_max_price"),
                    "Spot price without spot",
                    "spot_max_price applies to spot pools; set spot = true or drop it.",
                );
            } else if p != -1.0 && p <= 0.0 {
                diags.error_at(at("spot_max_price"), "Invalid spot price", format!("{p} is not a price: give US dollars an hour above 0, or -1 for up to the on-demand price."));
            }
        }
        crate::platforms::managed::pools::validate_desired(pool, &at, diags);
    }
    kubernetes::cluster::validate_partitions(&config.elements("partition"), diags);
}

#[tfplugin::async_trait]
impl ManagedCluster for Azure {
    fn id(&self) -> &ClusterId {
        &self.cluster
    }

    fn kube(&self) -> &Kubernetes {
        &self.kube
    }

    fn validate(&self, config: &Config, diags: &mut Diagnostics) {
        validate(config, diags)
    }

    async fn converge(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        let ctx = self.context().map_err(|e| (e, None))?;
        cluster::converge(self, &ctx, spec, before, diags).await
    }

    async fn observe(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        let ctx = self.context()?;
        cluster::observe(self, &ctx, spec, diags).await
    }

    async fn remove(&self, objects: &[String], timeout: Duration) -> Result<(), PlatformError> {
        let ctx = self.context()?;
        cluster::remove(self, &ctx, objects, timeout).await
    }

    async fn import(
        &self,
    ) -> Result<(Vec<kubernetes::partitions::Partition>, Option<Vec<String>>), PlatformError> {
        let ctx = self.context()?;
        cluster::import(self, &ctx).await
    }

    fn validate_endpoint_cloud(&self, config: &Config, diags: &mut Diagnostics) {
        crate::platforms::aws::irsa::refuse_block(config, "azure", diags);
        identity::validate(config, diags);
    }

    async fn deploy_endpoint(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut tfplugin::Ctx,
    ) -> Rollout {
        self.deploy_with_identity(spec, previous, ctx).await
    }

    async fn endpoint_removed(&self, recorded: &Deployment) -> Result<(), PlatformError> {
        let ours: Vec<String> = recorded
            .objects
            .iter()
            .flatten()
            .filter(|o| o.starts_with("azure:"))
            .cloned()
            .collect();
        if ours.is_empty() {
            return Ok(());
        }
        identity::delete(&self.context()?, &ours).await
    }
}
