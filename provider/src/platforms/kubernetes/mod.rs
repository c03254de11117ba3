//! The `kubernetes` platform: an existing cluster (on-prem, OpenShift, and the base of EKS and
//! AKS). Clusters are adopted, not created: the provider manages GPU partitions on them
//! ([`partitions`]), endpoints as Deployments of the bundled image ([`workload`]) and monitors
//! as prometheus-operator objects or plain annotations ([`monitoring`]).
//!
//! Every object is written with server-side apply under the field manager `modelplane`, labelled
//! `app.kubernetes.io/managed-by=modelplane`, and recorded in the Terraform state by its
//! reference (`KIND/NAMESPACE/NAME`), so that an object a later plan no longer renders is
//! deleted, and destroy removes exactly what was written.
//!
//! Everything here works on a [`kube::Client`], from a [`KubeTarget`]: the provider's
//! `kubernetes` block ([`Connection`]), or a client handed in (tests use an in-memory one).

pub mod cluster;
pub mod endpoint;
pub mod monitoring;
pub mod objects;
pub mod partitions;
pub mod workload;

use std::fmt;
use std::path::PathBuf;

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use tfplugin::{Attr, Config, Ctx, Diagnostics};

use crate::ids::ClusterId;
use crate::platforms::rollout::Rollout;
use crate::platforms::{
    ClusterFacts, ClusterPlan, ClusterSpec, Deployment, EndpointPlan, EndpointSpec, Imported,
    MonitorHost, MonitorObjects, Observed, PartitionSeen, Platform, PlatformError, Previous,
};

pub use objects::{ObjectRef, Rendered};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "modelplane";
/// The label every object the provider writes carries (`modelplane`).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The cluster a partition namespace belongs to.
pub const LABEL_CLUSTER: &str = "modelplane.io/cluster";
/// The purpose of a partition namespace (`dev`, `training`, `inference`).
pub const LABEL_PURPOSE: &str = "modelplane.io/purpose";
/// The endpoint an object belongs to.
pub const LABEL_ENDPOINT: &str = "modelplane.io/endpoint";
/// The extended resource the NVIDIA device plugin (or GPU operator) advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// How to reach the API server: the provider's `kubernetes` block. Unset fields fall back to
/// the standard chain (`KUBECONFIG`, `~/.kube/config`, then the in-cluster service account).
#[derive(Clone, Default)]
pub struct Connection {
    pub config_path: Option<String>,
    pub context: Option<String>,
    pub in_cluster: bool,
    pub host: Option<String>,
    pub token: Option<String>,
    pub cluster_ca_certificate: Option<String>,
    pub insecure: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("config_path", &self.config_path)
            .field("context", &self.context)
            .field("in_cluster", &self.in_cluster)
            .field("host", &self.host)
            .field("token", &self.token.as_ref().map(|_| "(sensitive)"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Connection {
    /// The client configuration, through kube's `Config` (kubeconfig files with their exec
    /// plugins and auth providers, in-cluster, or an explicit host and token).
    pub async fn config(&self) -> Result<kube::Config, String> {
        let opts = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let mut config = if let Some(host) = &self.host {
            let uri: http::Uri = host.parse().map_err(|e| {
                format!("kubernetes.host {host:?} is not a URL ({e}); e.g. \"https://api.cluster.example:6443\"")
            })?;
            let mut c = kube::Config::new(uri);
            c.auth_info = AuthInfo {
                token: self.token.clone().map(Into::into),
                ..Default::default()
            };
            if let Some(pem) = &self.cluster_ca_certificate {
                c.root_cert = Some(pem_certificates(pem).map_err(|e| {
                    format!("kubernetes.cluster_ca_certificate: {e}; give the PEM text of the API server's CA")
                })?);
            }
            c
        } else if self.in_cluster {
            kube::Config::incluster().map_err(|e| {
                format!("kubernetes.in_cluster is set, but this is not a pod with a service account: {e}")
            })?
        } else if let Some(path) = &self.config_path {
            let path = PathBuf::from(crate::absolute(path));
            let kc = Kubeconfig::read_from(&path)
                .map_err(|e| format!("kubernetes.config_path {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        } else if self.context.is_some() {
            kube::Config::from_kubeconfig(&opts)
                .await
                .map_err(|e| format!("kubeconfig (KUBECONFIG or ~/.kube/config): {e}"))?
        } else {
            kube::Config::infer().await.map_err(|e| {
                format!("no Kubernetes credentials: {e}. Set KUBECONFIG, or the provider's kubernetes block (config_path, host and token, or in_cluster)")
            })?
        };
        if self.insecure {
            config.accept_invalid_certs = true;
        }
        Ok(config)
    }

    /// A client and the API server's URL, from one reading of the configuration.
    pub async fn connect(&self) -> Result<(kube::Client, String), String> {
        let config = self.config().await?;
        let url = config.cluster_url.to_string();
        match kube::Client::try_from(config) {
            Ok(client) => Ok((client, url)),
            Err(e) => Err(format!("cannot make a client for {url}: {e}")),
        }
    }
}

/// How a `kubernetes` cluster is reached: a value per cluster, so that two clusters in one
/// configuration each have their own.
#[derive(Clone)]
pub enum KubeTarget {
    /// Through kube's client configuration: a kubeconfig, in-cluster, or host and token.
    Config(Connection),
    /// A client made elsewhere, and the API server's URL (an in-memory API server in tests).
    Client(kube::Client, String),
    /// An EKS cluster's API server, with a fresh EKS token for each connection.
    Eks(crate::platforms::aws::EksTarget),
    /// An AKS cluster's API server, with a fresh Entra ID token for each connection.
    Aks(Box<crate::platforms::azure::AksTarget>),
}

impl Default for KubeTarget {
    fn default() -> Self {
        KubeTarget::Config(Connection::default())
    }
}

impl fmt::Debug for KubeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeTarget::Config(c) => c.fmt(f),
            KubeTarget::Client(_, url) => write!(f, "KubeTarget::Client({url})"),
            KubeTarget::Eks(e) => write!(f, "KubeTarget::Eks({})", e.cluster),
            KubeTarget::Aks(a) => write!(f, "KubeTarget::Aks({})", a.cluster),
        }
    }
}

impl KubeTarget {
    /// A client and the API server's URL.
    pub async fn connect(&self) -> Result<(kube::Client, String), String> {
        match self {
            KubeTarget::Config(c) => c.connect().await,
            KubeTarget::Client(c, url) => Ok((c.clone(), url.clone())),
            KubeTarget::Eks(e) => e.connect().await,
            KubeTarget::Aks(a) => a.connect().await,
        }
    }
}

/// The `kubernetes` platform of one cluster.
pub struct Kubernetes {
    pub cluster: ClusterId,
    pub target: KubeTarget,
}

impl Kubernetes {
    pub fn new(cluster: ClusterId, config: &crate::ProviderConfig) -> Self {
        Kubernetes {
            cluster,
            target: config.kubernetes.clone(),
        }
    }

    /// A client and the API server's URL; failing is [`PlatformError::Unreachable`].
    pub async fn connect(&self) -> Result<(kube::Client, String), PlatformError> {
        self.target
            .connect()
            .await
            .map_err(PlatformError::Unreachable)
    }

    /// The partitions the cluster has, and the objects that make them.
    pub async fn import_cluster_partitions(
        &self,
    ) -> Result<(Vec<partitions::Partition>, Vec<String>), PlatformError> {
        let (client, _) = self.connect().await?;
        let parts = cluster::import_partitions(&client, &self.cluster.name)
            .await
            .map_err(PlatformError::Failed)?;
        let objects = parts
            .iter()
            .flat_map(|p| objects::refs(&p.render(&self.cluster.name)))
            .map(|r| r.to_string())
            .collect();
        Ok((parts, objects))
    }

    /// Deletes recorded objects; the cluster is not contacted when none are recorded.
    async fn delete_recorded(&self, recorded: Option<&Vec<String>>) -> Result<(), PlatformError> {
        let refs = objects::parse_all(recorded.map_or(&[][..], |v| v));
        if refs.is_empty() {
            return Ok(());
        }
        let (client, _) = self.connect().await?;
        objects::delete(&client, &refs)
            .await
            .map_err(PlatformError::Failed)
    }
}

#[tfplugin::async_trait]
impl Platform for Kubernetes {
    fn cluster(&self) -> &ClusterId {
        &self.cluster
    }

    fn validate_cluster(&self, config: &Config, diags: &mut Diagnostics) {
        cluster::validate(config, diags);
        crate::platforms::cloud_blocks_not_used(config, "kubernetes", diags);
    }

    fn plan_cluster(&self, plan: ClusterPlan<'_>) {
        if plan.partitions_changed {
            *plan.objects = Attr::Unknown;
        }
        *plan.engine = Attr::Null;
        *plan.engine_version = Attr::Null;
    }

    async fn converge_cluster(
        &self,
        spec: &ClusterSpec,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
        self.converge(spec, before, diags).await
    }

    async fn observe_cluster(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        self.observe(spec, diags).await
    }

    async fn remove_cluster(
        &self,
        objects: Option<&Vec<String>>,
        _timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        self.delete_recorded(objects).await
    }

    async fn import_cluster(
        &self,
    ) -> Result<(Vec<partitions::Partition>, Option<Vec<String>>), PlatformError> {
        let (parts, objects) = self.import_cluster_partitions().await?;
        Ok((parts, Some(objects)))
    }

    fn validate_endpoint(&self, config: &Config, diags: &mut Diagnostics) {
        endpoint::validate(config, diags);
        crate::platforms::aws::irsa::refuse_block(config, "kubernetes", diags);
        crate::platforms::azure::identity::refuse_block(config, "kubernetes", diags);
    }

    fn plan_endpoint(
        &self,
        prior: Option<&EndpointPlan>,
        plan: &mut EndpointPlan,
        config: &Config,
        diags: &mut Diagnostics,
    ) {
        endpoint::plan(prior, plan, config, diags)
    }

    async fn endpoint_token(&self, name: &str, recorded: &Deployment) -> Option<String> {
        self.token_of(name, recorded).await
    }

    async fn deploy(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        self.deploy_endpoint(spec, previous, ctx).await
    }

    async fn observe_endpoint(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<Observed, PlatformError> {
        Kubernetes::observe_endpoint(self, name, recorded).await
    }

    async fn remove_endpoint(
        &self,
        _name: &str,
        recorded: &Deployment,
    ) -> Result<(), PlatformError> {
        self.delete_recorded(recorded.objects.as_ref()).await
    }

    async fn import_endpoint(&self, name: &str) -> Result<Imported, PlatformError> {
        Kubernetes::import_endpoint(self, name).await
    }

    fn monitor_host(&self) -> MonitorHost {
        MonitorHost::Cluster
    }

    fn validate_monitor(&self, config: &Config, diags: &mut Diagnostics) {
        crate::platforms::not_used_here(config, "existing_prometheus", "kubernetes", "on kubernetes the cluster's Prometheus finds the monitor through a ServiceMonitor (prometheus-operator) or the pods' scrape annotations; remove existing_prometheus.", diags);
    }

    async fn apply_monitor(
        &self,
        spec: &MonitorObjects,
        before: &[String],
        diags: &mut Diagnostics,
    ) -> Result<Vec<String>, (PlatformError, Vec<String>)> {
        self.apply_monitor_objects(spec, before, diags).await
    }

    async fn monitor_intact(&self, recorded: &[String]) -> Result<bool, PlatformError> {
        let (client, _) = self.connect().await?;
        let mut intact = true;
        for r in objects::parse_all(recorded) {
            match r.get(&client).await {
                Ok(Some(_)) => {}
                Ok(None) => intact = false,
                Err(e) => return Err(PlatformError::Failed(e)),
            }
        }
        Ok(intact)
    }

    async fn remove_objects(&self, recorded: Option<&Vec<String>>) -> Result<(), PlatformError> {
        self.delete_recorded(recorded).await
    }
}

/// The DER certificates in a PEM text.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    let out = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM text ({e})"))?;
    if out.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(out)
}

/// A Kubernetes name (RFC 1123 label) made from a Modelplane name: lower case, `-` for
/// anything else, at most 63 characters.
pub fn dns_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_string()
}

/// Whether `s` is a valid RFC 1123 label (namespace and Service names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The suffixes of Kubernetes quantities and what each multiplies by.
const QUANTITY_SUFFIXES: &[(&str, f64)] = &[
    ("", 1.0),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
];

/// A quantity in base units (`500m` → 0.5, `4Gi` → 4·2³⁰); `None` when it is not one.
pub fn quantity(q: &str) -> Option<f64> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let v: f64 = digits.parse().ok().filter(|v: &f64| *v >= 0.0)?;
    let (_, mult) = QUANTITY_SUFFIXES
        .iter()
        .find(|(s, _)| *s == &q[digits.len()..])?;
    Some(v * mult)
}

/// Checks a resource quantity (`500m`, `2`, `4Gi`, `1.5`), saying what is wrong with it.
pub fn check_quantity(q: &str) -> Result<(), String> {
    if quantity(q).is_some() {
        return Ok(());
    }
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    if digits.is_empty() || digits.parse::<f64>().map_or(true, |v| v < 0.0) {
        Err(format!(
            "{q:?} is not a Kubernetes quantity; e.g. \"500m\" or \"2\" for CPU, \"4Gi\" for memory"
        ))
    } else {
        Err(format!(
            "{q:?} has the unknown suffix {suffix:?}; use m, k, M, G, T, Ki, Mi, Gi or Ti"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_quantities() {
        assert_eq!(dns_label("Fraud_Detector.v2"), "fraud-detector-v2");
        assert!(is_dns_label("ml-inference"));
        assert!(!is_dns_label("ML"));
        assert!(!is_dns_label("-a"));
        assert!(check_quantity("500m").is_ok());
        assert!(check_quantity("4Gi").is_ok());
        assert!(check_quantity("1.5").is_ok());
        assert!(check_quantity("4GB").is_err());
        assert!(check_quantity("lots").is_err());
        assert!(check_quantity("").is_err());
        assert!(check_quantity("-1").is_err());
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2Gi"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1Pi"), Some(1024f64.powi(5)));
        assert_eq!(quantity("16"), Some(16.0));
        assert_eq!(quantity("x"), None);
    }

    #[test]
    fn pem_is_decoded_and_errors_are_plain() {
        assert!(pem_certificates("nothing").is_err());
        let der =
            pem_certificates("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n")
                .unwrap();
        assert_eq!(der, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn debug_hides_the_token() {
        let c = Connection {
            token: Some("s3cret".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
