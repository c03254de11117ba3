//! The `aws` platform: an EKS cluster with managed node groups, created by the provider (or
//! adopted with `aws.adopt`), and everything else as on [`kubernetes`](super::kubernetes):
//! partitions, endpoints and monitors are Kubernetes objects in it, reached through a
//! connection built here from `DescribeCluster` and an EKS token ([`token`]), with no `aws`
//! CLI.
//!
//! | file | what |
//! |---|---|
//! | [`cluster`] | create, refresh, import and destroy of a cluster, in order; GPU readiness |
//! | [`eks`] | the EKS and IAM calls: roles, the cluster, node groups, their waits |
//! | [`nodegroup`] | a node pool as a node group: AMI type, labels, taints, sizes |
//! | [`token`] | the presigned STS URL EKS takes as a bearer token |
//! | [`ecr`] | ECR repositories and login, for `modelplane_serving_image` |
//! | [`irsa`] | the IAM role an endpoint's server reads its `s3` store with |
//!
//! What the provider creates on AWS is recorded in the cluster's `objects` with an `aws:`
//! prefix (`aws:iam-role/NAME`, `aws:eks-cluster/NAME`, `aws:oidc-provider/ARN`,
//! `aws:eks-nodegroup/NAME`), next to the Kubernetes objects, so that destroy removes exactly
//! what was created, in order, and nothing it adopted.

pub mod cluster;
pub mod ecr;
pub mod eks;
pub mod irsa;
pub mod nodegroup;
pub mod token;

use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine as _;
use tfplugin::{Attr, AttributePath, Config, Ctx, Diagnostics, PathStep};

use crate::ids::ClusterId;
use crate::platforms::kubernetes::{self, Connection, KubeTarget, Kubernetes};
use crate::platforms::managed::{annotate, annotated, ManagedCluster};
use crate::platforms::rollout::Rollout;
use crate::platforms::Platform as _;
use crate::platforms::{
    ClusterFacts, ClusterSpec, Deployment, EndpointSpec, PartitionSeen, PlatformError, Previous,
};
use crate::AwsSettings;

/// The `aws` block of a `modelplane_gpu_cluster`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterSettings {
    /// Kubernetes version of a new cluster (`1.33`); EKS's default when unset.
    pub kubernetes_version: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Take an existing cluster by name: only node groups and partitions are created in it.
    pub adopt: bool,
    /// Use these roles instead of creating them.
    pub cluster_role_arn: Option<String>,
    pub node_role_arn: Option<String>,
}

/// The AWS clients a cluster needs, from the provider's `aws` block and the default chain.
#[derive(Clone, Debug)]
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub region: String,
    pub credentials: Option<SharedCredentialsProvider>,
    /// How often waits ask again.
    pub poll: Duration,
}

impl Clients {
    /// Clients from the standard chain (environment, profile, SSO, web identity, instance
    /// role), with the `aws` block's region, profile and endpoint.
    pub async fn load(settings: &AwsSettings) -> Result<Self, PlatformError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &settings.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(u) = &settings.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(PlatformError::Unreachable(
                "no AWS region: set the provider's aws.region, AWS_REGION, or a region in the AWS profile".into(),
            ));
        };
        Ok(Clients {
            eks: aws_sdk_eks::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            region,
            credentials: sdk.credentials_provider(),
            poll: Duration::from_secs(10),
        })
    }

    /// An EKS token for `cluster`, from the current credentials.
    pub async fn token(&self, cluster: &str) -> Result<String, String> {
        let Some(provider) = &self.credentials else {
            return Err("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID, run `aws sso login`, or run where an instance or pod role is available".into());
        };
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials: {e}"))?;
        token::token(&creds, &self.region, cluster, std::time::SystemTime::now())
    }
}

/// The Kubernetes API of an EKS cluster: its endpoint and CA from `DescribeCluster`, a fresh
/// token for each connection. `kubernetes_endpoint_url` in the provider's `aws` block takes
/// the place of the endpoint (a tunnel to a private endpoint).
#[derive(Clone, Debug)]
pub struct EksTarget {
    pub settings: AwsSettings,
    pub cluster: String,
}

impl EksTarget {
    pub async fn connect(&self) -> Result<(kube::Client, String), String> {
        let clients = Clients::load(&self.settings)
            .await
            .map_err(|e| e.to_string())?;
        let found = clients
            .eks
            .describe_cluster()
            .name(&self.cluster)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "EKS cluster {:?}: {}",
                    self.cluster,
                    aws_sdk_eks::error::DisplayErrorContext(e)
                )
            })?;
        let c = found
            .cluster()
            .ok_or_else(|| format!("EKS cluster {:?} not found", self.cluster))?;
        let token = clients.token(&self.cluster).await?;
        let (host, ca) = match &self.settings.kubernetes_endpoint_url {
            Some(url) => (url.clone(), None),
            None => {
                let host = c.endpoint().map(String::from).ok_or_else(|| {
                    format!(
                        "EKS cluster {:?} has no API endpoint yet (status {:?})",
                        self.cluster,
                        c.status().map(|s| s.as_str())
                    )
                })?;
                let ca = c
                    .certificate_authority()
                    .and_then(|a| a.data())
                    .map(|d| {
                        base64::engine::general_purpose::STANDARD
                            .decode(d)
                            .ok()
                            .and_then(|pem| String::from_utf8(pem).ok())
                            .ok_or_else(|| {
                                format!(
                                    "EKS cluster {:?}: its certificate authority is not base64 PEM",
                                    self.cluster
                                )
                            })
                    })
                    .transpose()?;
                (host, ca)
            }
        };
        Connection {
            host: Some(host),
            token: Some(token),
            cluster_ca_certificate: ca,
            ..Default::default()
        }
        .connect()
        .await
    }
}

/// The `aws` platform of one cluster.
pub struct Aws {
    pub cluster: ClusterId,
    pub settings: AwsSettings,
    /// Clients handed in (tests); otherwise loaded from the settings when first needed.
    pub clients: Option<Clients>,
    /// The cluster's Kubernetes side: partitions, the device plugin, endpoints, monitors.
    pub kube: Kubernetes,
}

impl Aws {
    pub fn new(cluster: ClusterId, config: &crate::ProviderConfig) -> Self {
        let target = KubeTarget::Eks(EksTarget {
            settings: config.aws.clone(),
            cluster: cluster.name.clone(),
        });
        Aws {
            kube: Kubernetes {
                cluster: cluster.clone(),
                target,
            },
            cluster,
            settings: config.aws.clone(),
            clients: None,
        }
    }

    async fn clients(&self) -> Result<Clients, PlatformError> {
        match &self.clients {
            Some(c) => Ok(c.clone()),
            None => Clients::load(&self.settings).await,
        }
    }

    /// The IAM role the endpoint's server reads its `s3` store with: none when its
    /// ServiceAccount is annotated already or the store is not on S3; `aws.role_arn`; or a
    /// role created for it ([`irsa`]). Returns the ARN and, for a created role, its name.
    async fn endpoint_role(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
    ) -> Result<Option<(String, Option<String>)>, PlatformError> {
        let settings = spec.aws.clone().unwrap_or_default();
        if annotated(spec, irsa::ROLE_ANNOTATION) {
            return Ok(None);
        }
        if let Some(arn) = settings.role_arn {
            return Ok(Some((arn, None)));
        }
        let Some((bucket, prefix)) = irsa::s3_location(&spec.serve.repository) else {
            return Ok(None);
        };
        if !settings.create_role() {
            return Ok(None);
        }
        let (namespace, service_account) = self.kube.endpoint_identity(spec).await?;
        let name = irsa::role_name(&self.cluster.name, &spec.name);
        let recorded = previous
            .and_then(|p| p.deployment.objects.as_ref())
            .is_some_and(|o| o.contains(&format!("{}{name}", irsa::ROLE_ENTRY)));
        let clients = self.clients().await?;
        let arn = irsa::ensure(
            &clients,
            &irsa::RoleFor {
                cluster: &self.cluster.name,
                name: &name,
                namespace: &namespace,
                service_account: &service_account,
                bucket: &bucket,
                prefix: &prefix,
                recorded,
            },
        )
        .await?;
        Ok(Some((arn, Some(name))))
    }

    /// The Kubernetes deploy, with the server's role annotated on its ServiceAccount; a
    /// created role is recorded in `objects`, deleted again when the deploy is undone on a
    /// create, and a role an earlier apply created and this one no longer uses is deleted
    /// after a successful deploy.
    async fn deploy_with_role(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        let role = match self.endpoint_role(spec, previous).await {
            Ok(r) => r,
            Err(e) => {
                return Rollout {
                    deployment: None,
                    result: Err(e),
                    undo: Box::new(crate::platforms::rollout::NoUndo),
                }
            }
        };
        let mut spec = spec.clone();
        let mut created = None;
        if let Some((arn, name)) = &role {
            annotate(&mut spec, irsa::ROLE_ANNOTATION, arn);
            created = name.clone();
        }
        // A rollback renders the previous spec again: it must carry the role it ran with.
        let previous = match previous {
            Some(p) => Some(self.previous_with_role(p, role.as_ref(), ctx).await),
            None => None,
        };
        let previous = previous.as_ref();
        let mut rollout = self.kube.deploy(&spec, previous, ctx).await;
        let entry = created.as_ref().map(|n| format!("{}{n}", irsa::ROLE_ENTRY));
        if let (Some(d), Some(e)) = (rollout.deployment.as_mut(), &entry) {
            d.objects.get_or_insert_with(Vec::new).push(e.clone());
        }
        match (&rollout.result, previous) {
            (Ok(()), Some(p)) => {
                let before = p.deployment.objects.clone().unwrap_or_default();
                if let Err(e) = self.delete_roles(&before, entry.as_deref()).await {
                    ctx.diags.warning(
                        "An IAM role the endpoint no longer uses is left",
                        format!("{e}. Delete it by hand."),
                    );
                }
            }
            (Err(_), None) => {
                if let (Some(name), Ok(clients)) = (created, self.clients().await) {
                    rollout.undo = Box::new(DeleteRoleToo {
                        inner: rollout.undo,
                        clients,
                        name,
                    });
                }
            }
            _ => {}
        }
        rollout
    }

    /// `previous` with the role its server ran with annotated on its spec, as
    /// [`Self::endpoint_role`] gave it then: its `aws.role_arn`, or the role its objects
    /// record (the same ARN as now when the role is kept; otherwise read from IAM).
    async fn previous_with_role(
        &self,
        previous: &Previous,
        now: Option<&(String, Option<String>)>,
        ctx: &mut Ctx,
    ) -> Previous {
        let mut p = previous.clone();
        let Some(spec) = p.spec.as_mut() else {
            return p;
        };
        if annotated(spec, irsa::ROLE_ANNOTATION) {
            return p;
        }
        let given = spec.aws.as_ref().and_then(|a| a.role_arn.clone());
        let created = previous
            .deployment
            .objects
            .iter()
            .flatten()
            .find_map(|o| o.strip_prefix(irsa::ROLE_ENTRY))
            .map(String::from);
        let arn = match (given, created) {
            (Some(arn), _) => Some(arn),
            (None, None) => None,
            (None, Some(name)) => match now {
                Some((arn, Some(n))) if *n == name => Some(arn.clone()),
                _ => match self.role_arn(&name).await {
                    Ok(arn) => Some(arn),
                    Err(e) => {
                        ctx.diags.warning(
                            "The previous IAM role could not be read",
                            format!("{e}. Should this change be rolled back, the server runs without the role {name} and cannot read its store."),
                        );
                        None
                    }
                },
            },
        };
        if let Some(arn) = arn {
            annotate(spec, irsa::ROLE_ANNOTATION, &arn);
        }
        p
    }

    async fn role_arn(&self, name: &str) -> Result<String, PlatformError> {
        let clients = self.clients().await?;
        let o = clients
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| eks::iam_error(&format!("GetRole {name}"), e))?;
        o.role()
            .map(|r| r.arn().to_string())
            .ok_or_else(|| PlatformError::Failed(format!("GetRole {name}: no role in the answer")))
    }

    /// Deletes the roles recorded in `objects`, but `keep`.
    async fn delete_roles(
        &self,
        objects: &[String],
        keep: Option<&str>,
    ) -> Result<(), PlatformError> {
        let roles: Vec<&str> = objects
            .iter()
            .filter(|o| Some(o.as_str()) != keep)
            .filter_map(|o| o.strip_prefix(irsa::ROLE_ENTRY))
            .collect();
        if roles.is_empty() {
            return Ok(());
        }
        let clients = self.clients().await?;
        for r in roles {
            irsa::delete(&clients, r).await?;
        }
        Ok(())
    }
}

/// Undoes a failed create: the Kubernetes objects, then the role made for them.
struct DeleteRoleToo {
    inner: Box<dyn crate::platforms::rollout::Undo>,
    clients: Clients,
    name: String,
}

#[tfplugin::async_trait]
impl crate::platforms::rollout::Undo for DeleteRoleToo {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        self.inner.undo().await?;
        irsa::delete(&self.clients, &self.name).await
    }
}

/// Plan-time checks of an `aws` cluster.
fn validate(config: &Config, diags: &mut Diagnostics) {
    if !config.get::<String>("engine", diags).is_null() {
        diags.error_at(
            AttributePath::attr("engine"),
            "Not used on aws",
            "engine applies to container clusters; remove it.",
        );
    }
    crate::platforms::cloud_blocks_not_used(config, "aws", diags);
    let aws = config.elements("aws");
    let adopt = aws
        .first()
        .map(|a| a.get::<bool>("adopt", diags))
        .and_then(|a| a.known().copied())
        .unwrap_or(false);
    let subnets = aws
        .first()
        .map(|a| a.get::<Vec<String>>("subnet_ids", diags));
    let no_subnets = match &subnets {
        None => true,
        Some(Attr::Known(v)) => v.is_empty(),
        Some(Attr::Null) => true,
        Some(_) => false,
    };
    if no_subnets && !adopt {
        diags.error_at(
            AttributePath::attr("aws").then_attr("subnet_ids"),
            "Missing subnets",
            "a new EKS cluster needs aws.subnet_ids (at least two, in different availability zones; the VPC is the network team's). To use an existing cluster instead, set aws.adopt = true.",
        );
    }
    for (i, pool) in config.elements("node_pool").iter().enumerate() {
        let at = |a: &str| {
            AttributePath(vec![
                PathStep::Attr("node_pool".into()),
                PathStep::Index(i as i64),
                PathStep::Attr(a.into()),
            ])
        };
        let one = pool.get::<String>("instance_type", diags);
        let many = pool.get::<Vec<String>>("instance_types", diags);
        let types = match (&one, &many) {
            (Attr::Known(t), Attr::Null) => Some((vec![t.clone()], "instance_type")),
            (Attr::Null, Attr::Known(v)) => Some((v.clone(), "instance_types")),
            (Attr::Null, Attr::Null) => {
                diags.error_at(at("instance_type"), "Missing instance type", "a node pool on aws needs instance_type (e.g. \"g5.xlarge\"), or instance_types for several of the same kind.");
                None
            }
            (Attr::Known(_), Attr::Known(_)) => {
                diags.error_at(
                    at("instance_types"),
                    "Conflicting instance types",
                    "set instance_type or instance_types, not both.",
                );
                None
            }
            _ => None,
        };
        if let Some((types, attr)) = types {
            match nodegroup::pool_family(&types) {
                Err(e) => diags.error_at(at(attr), "Unsupported instance type", e),
                Ok(f) => {
                    if let Attr::Known(n) = pool.get::<i64>("gpu_count", diags) {
                        if n > 0 && !f.has_nvidia_gpus() {
                            diags.error_at(at("gpu_count"), "No GPUs on this instance type", format!("{} has no NVIDIA GPUs, but gpu_count is {n}; use a GPU family such as g5, g6 or p5, or drop gpu_count.", types[0]));
                        }
                    }
                    let sharing = pool.elements("gpu_sharing");
                    if !sharing.is_empty() && !f.has_nvidia_gpus() {
                        diags.error_at(
                            at("gpu_sharing"),
                            "No GPUs to share",
                            format!(
                                "{} has no NVIDIA GPUs; gpu_sharing applies to GPU pools.",
                                types[0]
                            ),
                        );
                    }
                }
            }
        }
        crate::platforms::managed::pools::validate_desired(pool, &at, diags);
    }
    kubernetes::cluster::validate_partitions(&config.elements("partition"), diags);
}

#[tfplugin::async_trait]
impl ManagedCluster for Aws {
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
        let clients = self.clients().await.map_err(|e| (e, None))?;
        cluster::converge(self, &clients, spec, before, diags).await
    }

    async fn observe(
        &self,
        spec: &ClusterSpec,
        diags: &mut Diagnostics,
    ) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
        let clients = self.clients().await?;
        cluster::observe(self, &clients, spec, diags).await
    }

    async fn remove(&self, objects: &[String], timeout: Duration) -> Result<(), PlatformError> {
        let clients = self.clients().await?;
        cluster::remove(self, &clients, objects, timeout).await
    }

    async fn import(
        &self,
    ) -> Result<(Vec<kubernetes::partitions::Partition>, Option<Vec<String>>), PlatformError> {
        // The node groups come back through refresh; import records the cluster and its
        // partitions.
        let clients = self.clients().await?;
        cluster::import(self, &clients).await
    }

    fn validate_endpoint_cloud(&self, config: &Config, diags: &mut Diagnostics) {
        irsa::validate(config, diags);
        crate::platforms::azure::identity::refuse_block(config, "aws", diags);
    }

    async fn deploy_endpoint(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        self.deploy_with_role(spec, previous, ctx).await
    }

    async fn endpoint_removed(&self, recorded: &Deployment) -> Result<(), PlatformError> {
        self.delete_roles(recorded.objects.as_deref().unwrap_or(&[]), None)
            .await
    }
}
