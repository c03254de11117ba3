//! An `aws` cluster's lifecycle: the EKS side ([`super::eks`]: roles, the cluster, its OIDC
//! provider and managed node groups, waits bounded by the cluster's `timeouts`), then the
//! Kubernetes side (device plugin, partitions) through
//! [`Kubernetes`](crate::platforms::kubernetes::Kubernetes), and a readiness check that only
//! passes when the GPU nodes advertise their GPUs.

use std::time::{Duration, Instant};

use aws_sdk_eks::types as eks;
use tfplugin::{AttributePath, Diagnostics};

use super::eks::*;
use super::nodegroup;
use super::{Aws, Clients};
use crate::platforms::kubernetes::partitions;
use crate::platforms::managed::device_plugin;
use crate::platforms::managed::pools::GpuPool;
use crate::platforms::managed::{converge_kube, observe_kube, KubeSide};
use crate::platforms::{
    CloudFacts, ClusterFacts, ClusterSpec, NodeGroupSeen, NodePoolSpec, PartitionSeen, Platform,
    PlatformError,
};

/// A kubeconfig for the cluster that holds no secret: `aws eks get-token` supplies the token.
pub fn kubeconfig(cl: &eks::Cluster, region: &str, profile: Option<&str>) -> String {
    let arn = cl.arn().unwrap_or_default();
    let name = cl.name().unwrap_or_default();
    let mut exec = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["--region", region, "eks", "get-token", "--cluster-name", name, "--output", "json"],
    });
    if let Some(p) = profile {
        exec["env"] = serde_json::json!([{ "name": "AWS_PROFILE", "value": p }]);
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": arn, "cluster": {
            "server": cl.endpoint().unwrap_or_default(),
            "certificate-authority-data": cl.certificate_authority().and_then(|c| c.data()).unwrap_or_default(),
        } }],
        "contexts": [{ "name": arn, "context": { "cluster": arn, "user": arn } }],
        "current-context": arn,
        "users": [{ "name": arn, "user": { "exec": exec } }],
    });
    serde_yaml_ng::to_string(&doc).unwrap_or_default()
}

fn cloud_facts(
    cl: &eks::Cluster,
    c: &Clients,
    profile: Option<&str>,
    node_groups: Vec<NodeGroupSeen>,
    device_plugin: bool,
) -> CloudFacts {
    CloudFacts {
        resource_id: cl.arn().unwrap_or_default().to_string(),
        oidc_issuer: cl
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(String::from),
        kubeconfig: kubeconfig(cl, &c.region, profile),
        node_groups,
        device_plugin_version: device_plugin.then(|| device_plugin::VERSION.to_string()),
    }
}

fn partial(rec: &Record) -> ClusterFacts {
    ClusterFacts {
        objects: Some(rec.all()),
        ..Default::default()
    }
}

/// Creates or updates the cluster, its node groups and its Kubernetes side.
pub(super) async fn converge(
    aws: &Aws,
    c: &Clients,
    spec: &ClusterSpec,
    before: &[String],
    diags: &mut Diagnostics,
) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
    let name = aws.cluster.name.as_str();
    let settings = spec.aws.clone().unwrap_or_default();
    let mut rec = Record::of(before, "aws:");
    let creating = before.is_empty();
    let deadline = Instant::now()
        + if creating {
            spec.timeouts.create
        } else {
            spec.timeouts.update
        };
    macro_rules! fail {
        ($e:expr) => {
            return Err(($e, Some(partial(&rec))))
        };
    }
    macro_rules! try_ {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => fail!(e),
            }
        };
    }

    // The cluster.
    let found = try_!(describe(c, name).await);
    let ours = rec.has(&format!("{CLUSTER}{name}"));
    if found.is_some() && !ours && !settings.adopt {
        fail!(PlatformError::Refused {
            attribute: Some(AttributePath::attr("name")),
            summary: "Cluster exists".into(),
            message: format!("an EKS cluster named {name:?} already exists in {}. Set aws.adopt = true to manage node groups and partitions in it, or `terraform import` it as aws/{name} to manage it whole.", c.region),
        });
    }
    if found.is_none() {
        if settings.adopt {
            fail!(PlatformError::Invalid {
                attribute: AttributePath::attr("aws").then_attr("adopt"),
                message: format!("aws.adopt is set, but there is no EKS cluster named {name:?} in {}; check the name and region, or unset adopt to create it.", c.region),
            });
        }
        let role = match &settings.cluster_role_arn {
            Some(arn) => arn.clone(),
            None => try_!(
                ensure_role(
                    c,
                    &format!("{name}-eks-cluster"),
                    "eks.amazonaws.com",
                    CLUSTER_POLICIES,
                    &mut rec
                )
                .await
            ),
        };
        let vpc = eks::VpcConfigRequest::builder()
            .set_subnet_ids(Some(settings.subnet_ids.clone()))
            .set_security_group_ids(
                (!settings.security_group_ids.is_empty())
                    .then(|| settings.security_group_ids.clone()),
            )
            .build();
        let r = c
            .eks
            .create_cluster()
            .name(name)
            .role_arn(&role)
            .set_version(settings.kubernetes_version.clone())
            .resources_vpc_config(vpc)
            .access_config(
                eks::CreateAccessConfigRequest::builder()
                    .authentication_mode(eks::AuthenticationMode::ApiAndConfigMap)
                    .bootstrap_cluster_creator_admin_permissions(true)
                    .build(),
            )
            .tags("managed-by", "modelplane")
            .send()
            .await;
        if let Err(e) = r {
            fail!(PlatformError::Refused {
                attribute: Some(AttributePath::attr("aws")),
                summary: "Cannot create the EKS cluster".into(),
                message: format!(
                    "CreateCluster {name}: {}",
                    aws_sdk_eks::error::DisplayErrorContext(e)
                ),
            });
        }
        rec.push(format!("{CLUSTER}{name}"));
    }
    let cl = try_!(wait_cluster(c, name, deadline).await);

    // IRSA: the cluster's OIDC issuer as an IAM identity provider.
    if !settings.adopt && rec.with_prefix(OIDC).next().is_none() {
        if let Some(issuer) = cl
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
        {
            match c
                .iam
                .create_open_id_connect_provider()
                .url(issuer)
                .client_id_list("sts.amazonaws.com")
                .send()
                .await
            {
                Ok(o) => {
                    if let Some(arn) = o.open_id_connect_provider_arn() {
                        rec.push(format!("{OIDC}{arn}"));
                    }
                }
                // Someone made it already: it is theirs, and it serves us as well.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception()) => {}
                Err(e) => fail!(iam_error("CreateOpenIDConnectProvider", e)),
            }
        }
    }

    // Node groups.
    let existing = try_!(list_nodegroups(c, name).await);
    let subnets: Vec<String> = if settings.subnet_ids.is_empty() {
        cl.resources_vpc_config()
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default()
    } else {
        settings.subnet_ids.clone()
    };
    let mut families = Vec::new();
    for (i, pool) in spec.pools.iter().enumerate() {
        match nodegroup::pool_family(&pool.instance_types) {
            Ok(f) => families.push(f),
            Err(e) => fail!(PlatformError::Invalid {
                attribute: pool_path(i, "instance_type"),
                message: e
            }),
        }
    }
    // Pools the configuration dropped go first, freeing their capacity.
    let dropped: Vec<String> = rec
        .with_prefix(NODEGROUP)
        .filter(|n| !spec.pools.iter().any(|p| p.name == *n))
        .map(String::from)
        .collect();
    for n in dropped {
        try_!(delete_nodegroup(c, name, &n, deadline).await);
        rec.remove(&format!("{NODEGROUP}{n}"));
    }
    let mut node_role: Option<String> = None;
    for (i, (pool, family)) in spec.pools.iter().zip(&families).enumerate() {
        let entry = format!("{NODEGROUP}{}", pool.name);
        if existing.contains(&pool.name) {
            if !rec.has(&entry) {
                fail!(PlatformError::Invalid {
                    attribute: pool_path(i, "name"),
                    message: format!("the cluster already has a node group named {:?} that this configuration did not create; choose another pool name", pool.name),
                });
            }
            let Some(current) = try_!(describe_nodegroup(c, name, &pool.name).await) else {
                continue;
            };
            try_!(update_nodegroup(c, name, i, pool, *family, &current).await);
        } else {
            let role = match (&node_role, &settings.node_role_arn) {
                (Some(r), _) => r.clone(),
                (None, Some(arn)) => arn.clone(),
                (None, None) => try_!(
                    ensure_role(
                        c,
                        &format!("{name}-eks-node"),
                        "ec2.amazonaws.com",
                        NODE_POLICIES,
                        &mut rec
                    )
                    .await
                ),
            };
            node_role = Some(role.clone());
            try_!(create_nodegroup(c, name, &subnets, &role, pool, *family).await);
            rec.push(entry);
        }
    }
    let mut node_groups = Vec::new();
    for pool in &spec.pools {
        node_groups.push(seen(&try_!(
            wait_nodegroup(c, name, &pool.name, deadline).await
        )));
    }

    // The Kubernetes side: the device plugin on GPU pools, the partitions.
    let gpu_pools: Vec<(&NodePoolSpec, &NodeGroupSeen)> = spec
        .pools
        .iter()
        .zip(&families)
        .zip(&node_groups)
        .filter(|((_, f), _)| f.has_nvidia_gpus())
        .map(|((p, _), s)| (p, s))
        .collect();
    let profile = aws.settings.profile.as_deref();
    let cloud = cloud_facts(&cl, c, profile, node_groups.clone(), !gpu_pools.is_empty());
    let side = KubeSide {
        gpu_pools: gpu_pools
            .iter()
            .map(|(p, ng)| GpuPool {
                name: p.name.clone(),
                want: ng.desired_size,
                hint: format!("check the node group's health in EKS, the subnets' capacity for the instance type, the node role, and the AMI type (the node group has {})", ng.ami_type),
            })
            .collect(),
        sharing: gpu_pools.iter().filter_map(|(p, _)| p.gpu_sharing).collect(),
        hostname: cl.endpoint().unwrap_or_default().to_string(),
        cloud,
        deadline,
        poll: c.poll,
    };
    converge_kube(&aws.kube, spec, side, &mut rec, diags).await
}

/// Refresh: the cluster, its node groups, its partitions and nodes.
pub(super) async fn observe(
    aws: &Aws,
    c: &Clients,
    spec: &ClusterSpec,
    diags: &mut Diagnostics,
) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
    let name = aws.cluster.name.as_str();
    let Some(cl) = describe(c, name).await? else {
        return Err(PlatformError::Gone(format!(
            "EKS cluster {name:?} no longer exists in {}",
            c.region
        )));
    };
    let mut node_groups = Vec::new();
    for n in list_nodegroups(c, name).await? {
        if let Some(ng) = describe_nodegroup(c, name, &n).await? {
            node_groups.push(seen(&ng));
        }
    }
    let gpu = node_groups.iter().any(|g| g.ami_type.contains("NVIDIA"));
    let cloud = cloud_facts(&cl, c, aws.settings.profile.as_deref(), node_groups, gpu);
    let hostname = cl.endpoint().unwrap_or_default().to_string();
    Ok(observe_kube(&aws.kube, spec, gpu, hostname, cloud, diags).await)
}

/// Destroy, in order: Kubernetes objects, node groups, the OIDC provider, the cluster, roles.
/// What was adopted is left alone.
pub(super) async fn remove(
    aws: &Aws,
    c: &Clients,
    objects: &[String],
    timeout: Duration,
) -> Result<(), PlatformError> {
    let name = aws.cluster.name.as_str();
    let rec = Record::of(objects, "aws:");
    let ours = rec.has(&format!("{CLUSTER}{name}"));
    let deadline = Instant::now() + timeout;
    if !rec.kube.is_empty() {
        if let Err(e) = aws.kube.remove_objects(Some(&rec.kube)).await {
            // A cluster the provider created takes its objects with it.
            if !ours {
                return Err(e);
            }
        }
    }
    for n in rec.with_prefix(NODEGROUP) {
        delete_nodegroup(c, name, n, deadline).await?;
    }
    for arn in rec.with_prefix(OIDC) {
        match c
            .iam
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(iam_error("DeleteOpenIDConnectProvider", e)),
        }
    }
    if ours {
        match c.eks.delete_cluster().name(name).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(eks_error(&format!("DeleteCluster {name}"), e)),
        }
        loop {
            match describe(c, name).await? {
                None => break,
                Some(_) if Instant::now() >= deadline => {
                    return Err(PlatformError::Failed(format!(
                        "EKS cluster {name:?} is still deleting after the timeout"
                    )))
                }
                Some(_) => tokio::time::sleep(c.poll).await,
            }
        }
    }
    for r in rec.with_prefix(ROLE) {
        delete_role(c, r).await?;
    }
    Ok(())
}

/// Import `aws/NAME`: the cluster and its node groups become the state's (destroy deletes
/// them), with the partitions the Kubernetes side has.
pub(super) async fn import(
    aws: &Aws,
    c: &Clients,
) -> Result<(Vec<partitions::Partition>, Option<Vec<String>>), PlatformError> {
    let name = aws.cluster.name.as_str();
    if describe(c, name).await?.is_none() {
        return Err(PlatformError::Failed(format!(
            "there is no EKS cluster named {name:?} in {}",
            c.region
        )));
    }
    let mut rec = Record::default();
    rec.push(format!("{CLUSTER}{name}"));
    for n in list_nodegroups(c, name).await? {
        rec.push(format!("{NODEGROUP}{n}"));
    }
    // A cluster without partitions (or without a reachable API) imports with none.
    let (parts, kube) = aws
        .kube
        .import_cluster_partitions()
        .await
        .unwrap_or_default();
    rec.kube = kube;
    Ok((parts, Some(rec.all())))
}

pub use crate::platforms::managed::pools::pools_of;
