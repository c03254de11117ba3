//! An `azure` cluster's lifecycle: the ARM side (the resource group if asked, the managed
//! cluster, its user agent pools; every wait bounded by the cluster's `timeouts`), then the
//! Kubernetes side (device plugin, partitions) through
//! [`Kubernetes`](crate::platforms::kubernetes::Kubernetes), and a readiness check that only
//! passes when the GPU nodes advertise their GPUs.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tfplugin::{AttributePath, Diagnostics, PathStep};

use super::aks::{self, AgentPool, ManagedCluster};
use super::arm::ArmError;
use super::{Azure, Context, DEFAULT_SYSTEM_VM_SIZE};
use crate::platforms::kubernetes::partitions;
use crate::platforms::managed::device_plugin;
use crate::platforms::managed::pools::{GpuPool, Record};
use crate::platforms::managed::{converge_kube, observe_kube, KubeSide};
use crate::platforms::Platform as _;
use crate::platforms::{
    CloudFacts, ClusterFacts, ClusterSpec, NodeGroupSeen, PartitionSeen, PlatformError,
};

pub const PREFIX: &str = "azure:";
pub const RESOURCE_GROUP: &str = "azure:resource-group/";
pub const CLUSTER: &str = "azure:managed-cluster/";
pub const POOL: &str = "azure:agent-pool/";
/// The role assignment that makes the caller the Kubernetes admin of a cluster it created.
pub const ADMIN: &str = "azure:cluster-admin/";
/// The built-in role `Azure Kubernetes Service RBAC Cluster Admin`.
pub const RBAC_CLUSTER_ADMIN: &str = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b";

/// Who the credential chain is, from its ARM token's claims: the object ID and whether it is a
/// service principal (`idtyp = app`) or a user. `None` when the token is not a JWT that says.
pub async fn caller(ctx: &Context) -> Result<Option<(String, &'static str)>, PlatformError> {
    let token = ctx
        .credential
        .get_token(&[super::arm::SCOPE], None)
        .await
        .map_err(|e| PlatformError::Unreachable(format!("no Azure token: {e}")))?;
    let claims = token
        .token
        .secret()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    Ok(claims.and_then(|c| {
        let oid = c["oid"].as_str()?.to_string();
        let kind = if c["idtyp"] == "app" {
            "ServicePrincipal"
        } else {
            "User"
        };
        Some((oid, kind))
    }))
}

/// Makes the caller the Kubernetes admin of the cluster it created (AKS with Entra ID and
/// Azure RBAC gives the creator no Kubernetes access, as EKS would); returns the assignment's
/// ID.
async fn grant_admin(
    ctx: &Context,
    name: &str,
    principal: &str,
    kind: &str,
    deadline: Instant,
) -> Result<String, PlatformError> {
    let scope = ctx.cluster_path(name);
    let id = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
        super::acr::assignment_name(&scope, principal, RBAC_CLUSTER_ADMIN)
    );
    let body = super::acr::RoleAssignment {
        properties: super::acr::RoleAssignmentProperties {
            role_definition_id: format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{RBAC_CLUSTER_ADMIN}",
                ctx.arm.subscription
            ),
            principal_id: principal.to_string(),
            principal_type: kind.to_string(),
        },
    };
    let r: Result<serde_json::Value, _> = ctx
        .arm
        .put(&id, super::acr::ROLES_API_VERSION, &body, deadline)
        .await;
    match r {
        Ok(_) => Ok(id),
        Err(ArmError::Failed { code, .. }) if code == "RoleAssignmentExists" => Ok(id),
        Err(e) => Err(arm_error(
            &format!("Azure Kubernetes Service RBAC Cluster Admin on {name} for you"),
            e,
        )),
    }
}

/// An ARM error as the user can act on it: quota, a VM size the region does not have, spot
/// capacity, each with what to do.
pub fn arm_error(what: &str, e: ArmError) -> PlatformError {
    let hint = match &e {
        ArmError::Failed { code, message } => {
            let text = format!("{code} {message}").to_ascii_lowercase();
            if text.contains("quota") {
                " The subscription's vCPU quota for this VM family in the region is too small: request more (Azure portal → Quotas) or use another VM size or region."
            } else if text.contains("skunotavailable")
                || text.contains("vmsizenotsupported")
                || text.contains("not available in location")
                || text.contains("notavailableforsubscription")
            {
                " The VM size is not offered in this region (or to this subscription): `az vm list-skus --location LOCATION --size SIZE` lists where it is."
            } else if text.contains("spot")
                || text.contains("allocationfailed")
                || text.contains("overconstrainedallocation")
            {
                " Azure had no capacity for this request (spot capacity comes and goes): try again later, another VM size or region, or on-demand."
            } else {
                ""
            }
        }
        _ => "",
    };
    match e {
        ArmError::TimedOut(s) => PlatformError::Failed(format!("{what}: still running after the timeout ({s}); raise the cluster's timeouts, then apply again to wait for it.")),
        other => PlatformError::Failed(format!("{what}: {other}.{hint}")),
    }
}

fn pool_path(i: usize, attr: &str) -> AttributePath {
    AttributePath(vec![
        PathStep::Attr("node_pool".into()),
        PathStep::Index(i as i64),
        PathStep::Attr(attr.into()),
    ])
}

/// The API server and CA (PEM) of the cluster, from `listClusterUserCredential`.
pub async fn user_server(
    ctx: &Context,
    name: &str,
) -> Result<(String, Option<String>), PlatformError> {
    let creds: aks::Credentials = ctx
        .arm
        .post(
            &format!("{}/listClusterUserCredential", ctx.cluster_path(name)),
            aks::API_VERSION,
        )
        .await
        .map_err(|e| arm_error(&format!("listClusterUserCredential {name}"), e))?;
    let first = creds.kubeconfigs.first().ok_or_else(|| {
        PlatformError::Failed(format!(
            "listClusterUserCredential {name}: no kubeconfig in the answer"
        ))
    })?;
    let text = base64::engine::general_purpose::STANDARD
        .decode(&first.value)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            PlatformError::Failed(format!(
                "listClusterUserCredential {name}: the kubeconfig is not base64 text"
            ))
        })?;
    super::server_of(&text).map_err(PlatformError::Failed)
}

/// A kubeconfig for the cluster that holds no secret: its user runs `kubelogin` with the
/// Azure CLI's login for an Entra ID token, as `az aks get-credentials` sets up.
pub fn kubeconfig(name: &str, server: &str, ca: Option<&str>) -> String {
    let ca = ca
        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
        .unwrap_or_default();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": name, "cluster": { "server": server, "certificate-authority-data": ca } }],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
        "current-context": name,
        "users": [{ "name": name, "user": { "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "kubelogin",
            "args": ["get-token", "--login", "azurecli", "--server-id", super::AKS_SERVER_APP],
            "interactiveMode": "IfAvailable",
        } } }],
    });
    serde_yaml_ng::to_string(&doc).unwrap_or_default()
}

async fn get_cluster(ctx: &Context, name: &str) -> Result<Option<ManagedCluster>, PlatformError> {
    ctx.arm
        .get(&ctx.cluster_path(name), aks::API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("managed cluster {name}"), e))
}

async fn list_pools(ctx: &Context, name: &str) -> Result<Vec<AgentPool>, PlatformError> {
    let list: Option<aks::List<AgentPool>> = ctx
        .arm
        .get(
            &format!("{}/agentPools", ctx.cluster_path(name)),
            aks::API_VERSION,
        )
        .await
        .map_err(|e| arm_error(&format!("agent pools of {name}"), e))?;
    Ok(list.map(|l| l.value).unwrap_or_default())
}

/// Waits while the cluster is being created or updated (an earlier apply interrupted, or
/// someone else's change); a failed cluster is an error.
async fn wait_cluster(
    ctx: &Context,
    name: &str,
    deadline: Instant,
    poll: Duration,
) -> Result<ManagedCluster, PlatformError> {
    loop {
        let Some(c) = get_cluster(ctx, name).await? else {
            return Err(PlatformError::Failed(format!(
                "managed cluster {name:?} disappeared while it was waited for"
            )));
        };
        let state = c.properties.provisioning_state.clone().unwrap_or_default();
        match state.as_str() {
            "Succeeded" | "" => return Ok(c),
            "Failed" | "Canceled" => {
                return Err(PlatformError::Failed(format!(
                    "managed cluster {name:?} is in provisioning state {state}; see its activity log in the Azure portal, fix the cause, then delete it or run `az aks update` to reconcile"
                )))
            }
            _ if Instant::now() >= deadline => {
                return Err(PlatformError::Failed(format!(
                    "managed cluster {name:?} is still {state} after the timeout"
                )))
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
}

fn partial(rec: &Record) -> ClusterFacts {
    ClusterFacts {
        objects: Some(rec.all()),
        ..Default::default()
    }
}

fn cloud_facts(
    c: &ManagedCluster,
    kubeconfig: String,
    node_groups: Vec<NodeGroupSeen>,
    device_plugin: bool,
) -> CloudFacts {
    CloudFacts {
        resource_id: c.id.clone().unwrap_or_default(),
        oidc_issuer: c
            .properties
            .oidc_issuer_profile
            .as_ref()
            .and_then(|o| o.issuer_url.clone()),
        kubeconfig,
        node_groups,
        device_plugin_version: device_plugin.then(|| device_plugin::VERSION.to_string()),
    }
}

/// Creates or updates the cluster, its agent pools and its Kubernetes side.
pub(super) async fn converge(
    az: &Azure,
    ctx: &Context,
    spec: &ClusterSpec,
    before: &[String],
    diags: &mut Diagnostics,
) -> Result<ClusterFacts, (PlatformError, Option<ClusterFacts>)> {
    let name = az.cluster.name.as_str();
    let settings = spec.azure.clone().unwrap_or_default();
    let mut rec = Record::of(before, PREFIX);
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
    let group = ctx.resource_group.as_str();
    let location = || {
        ctx.location.clone().ok_or_else(|| {
            PlatformError::Unreachable(
                "no Azure location: set the provider's azure.location (e.g. \"westeurope\")".into(),
            )
        })
    };

    // The resource group, if asked.
    let group_path = ctx.arm.group_path(group);
    let found_group: Option<aks::ResourceGroup> = try_!(ctx
        .arm
        .get(&group_path, aks::RESOURCES_API_VERSION)
        .await
        .map_err(|e| arm_error(&format!("resource group {group}"), e)));
    if found_group.is_none() {
        if !settings.create_resource_group {
            fail!(PlatformError::Invalid {
                attribute: AttributePath::attr("azure").then_attr("create_resource_group"),
                message: format!("the resource group {group:?} does not exist in subscription {}; create it, or set azure.create_resource_group = true", ctx.arm.subscription),
            });
        }
        let body = aks::ResourceGroup {
            location: try_!(location()),
            tags: [("managed-by".to_string(), "modelplane".to_string())].into(),
        };
        let _: serde_json::Value = try_!(ctx
            .arm
            .put(&group_path, aks::RESOURCES_API_VERSION, &body, deadline)
            .await
            .map_err(|e| arm_error(&format!("creating resource group {group}"), e)));
        rec.push(format!("{RESOURCE_GROUP}{group}"));
    }

    // The cluster.
    let found = try_!(get_cluster(ctx, name).await);
    let ours = rec.has(&format!("{CLUSTER}{name}"));
    if found.is_some() && !ours && !settings.adopt {
        fail!(PlatformError::Refused {
            attribute: Some(AttributePath::attr("name")),
            summary: "Cluster exists".into(),
            message: format!("an AKS cluster named {name:?} already exists in resource group {group}. Set azure.adopt = true to manage agent pools and partitions in it, or `terraform import` it as azure/{name} to manage it whole."),
        });
    }
    if found.is_none() {
        if settings.adopt {
            fail!(PlatformError::Invalid {
                attribute: AttributePath::attr("azure").then_attr("adopt"),
                message: format!("azure.adopt is set, but there is no AKS cluster named {name:?} in resource group {group}; check the name and resource group, or unset adopt to create it."),
            });
        }
        let body = aks::managed_cluster(
            name,
            &try_!(location()),
            settings.kubernetes_version.as_deref(),
            settings
                .system_vm_size
                .as_deref()
                .unwrap_or(DEFAULT_SYSTEM_VM_SIZE),
        );
        // Recorded before the wait: an interrupted create is still ours to finish or delete.
        rec.push(format!("{CLUSTER}{name}"));
        let r: Result<ManagedCluster, _> = ctx
            .arm
            .put(&ctx.cluster_path(name), aks::API_VERSION, &body, deadline)
            .await;
        if let Err(e) = r {
            fail!(arm_error(&format!("creating AKS cluster {name}"), e));
        }
    }
    let cl = try_!(wait_cluster(ctx, name, deadline, az.poll).await);
    if rec.has(&format!("{CLUSTER}{name}")) && rec.with_prefix(ADMIN).next().is_none() {
        match try_!(caller(ctx).await) {
            Some((principal, kind)) => {
                let id = try_!(grant_admin(ctx, name, &principal, kind, deadline).await);
                rec.push(format!("{ADMIN}{id}"));
            }
            None => diags.warning(
                "Cannot tell who you are",
                format!("the Azure token does not say its object ID, so you were not made the Kubernetes admin of {name}; assign yourself \"Azure Kubernetes Service RBAC Cluster Admin\" on it, or the partitions and the device plugin cannot be written"),
            ),
        }
    }

    // Agent pools: the dropped ones first, freeing their quota.
    let existing = try_!(list_pools(ctx, name).await);
    let dropped: Vec<String> = rec
        .with_prefix(POOL)
        .filter(|n| !spec.pools.iter().any(|p| p.name == *n))
        .map(String::from)
        .collect();
    for n in dropped {
        try_!(ctx
            .arm
            .delete(
                &format!("{}/agentPools/{n}", ctx.cluster_path(name)),
                aks::API_VERSION,
                deadline
            )
            .await
            .map_err(|e| arm_error(&format!("deleting agent pool {n}"), e)));
        rec.remove(&format!("{POOL}{n}"));
    }
    for (i, pool) in spec.pools.iter().enumerate() {
        let entry = format!("{POOL}{}", pool.name);
        let path = format!("{}/agentPools/{}", ctx.cluster_path(name), pool.name);
        let current = existing.iter().find(|p| p.name == pool.name);
        let body = match current {
            Some(have) => {
                if !rec.has(&entry) {
                    fail!(PlatformError::Invalid {
                        attribute: pool_path(i, "name"),
                        message: format!("the cluster already has an agent pool named {:?} that this configuration did not create; choose another pool name", pool.name),
                    });
                }
                let want = aks::agent_pool(pool, have.properties.count);
                if let Some(what) = aks::immutable_change(&want.properties, &have.properties) {
                    fail!(PlatformError::Invalid {
                        attribute: pool_path(i, "name"),
                        message: format!("agent pool {:?} cannot change in place ({what}); give the pool a new name, so a new pool is made and the old one deleted", pool.name),
                    });
                }
                if aks::in_place_matches(&want.properties, &have.properties) {
                    continue;
                }
                want
            }
            None => aks::agent_pool(pool, None),
        };
        rec.push(entry);
        let r: Result<AgentPool, _> = ctx.arm.put(&path, aks::API_VERSION, &body, deadline).await;
        if let Err(e) = r {
            fail!(arm_error(&format!("agent pool {}", pool.name), e));
        }
    }
    let all = try_!(list_pools(ctx, name).await);
    let node_groups: Vec<NodeGroupSeen> = spec
        .pools
        .iter()
        .filter_map(|p| all.iter().find(|a| a.name == p.name))
        .map(aks::seen)
        .collect();

    // The Kubernetes side: the device plugin on GPU pools, the partitions, GPU readiness.
    let gpu_pools: Vec<_> = spec.pools.iter().filter(|p| aks::is_gpu(p)).collect();
    let (server, ca) = try_!(user_server(ctx, name).await);
    let cloud = cloud_facts(
        &cl,
        kubeconfig(name, &server, ca.as_deref()),
        node_groups.clone(),
        !gpu_pools.is_empty(),
    );
    let location = ctx.location.clone().unwrap_or_else(|| "the region".into());
    let side = KubeSide {
        gpu_pools: gpu_pools
            .iter()
            .map(|p| {
                let want = node_groups.iter().find(|g| g.name == p.name).map_or(0, |g| g.desired_size);
                let size = p.instance_types.first().cloned().unwrap_or_default();
                let mut hint = format!("check the pool's VM size {size} (quota and availability in {location}: `az vm list-skus --location {location} --size {size}`)");
                if p.spot {
                    hint.push_str(", spot capacity for it, and that the spot nodes advertise their GPUs (AKS has been seen not to, Azure/AKS #4418)");
                }
                if p.gpu_driver.as_deref() == Some("None") {
                    hint.push_str("; with gpu_driver = \"None\" the NVIDIA GPU operator must install the driver");
                }
                GpuPool { name: p.name.clone(), want, hint }
            })
            .collect(),
        sharing: gpu_pools.iter().filter_map(|p| p.gpu_sharing).collect(),
        hostname: cl.properties.fqdn.clone().unwrap_or_default(),
        cloud,
        deadline,
        poll: az.poll,
    };
    converge_kube(&az.kube, spec, side, &mut rec, diags).await
}

/// Refresh: the cluster, its user agent pools, its partitions and nodes.
pub(super) async fn observe(
    az: &Azure,
    ctx: &Context,
    spec: &ClusterSpec,
    diags: &mut Diagnostics,
) -> Result<(Option<ClusterFacts>, Vec<PartitionSeen>), PlatformError> {
    let name = az.cluster.name.as_str();
    let Some(cl) = get_cluster(ctx, name).await? else {
        return Err(PlatformError::Gone(format!(
            "AKS cluster {name:?} no longer exists in resource group {}",
            ctx.resource_group
        )));
    };
    let node_groups: Vec<NodeGroupSeen> = list_pools(ctx, name)
        .await?
        .iter()
        .filter(|p| p.properties.mode.as_deref() != Some("System"))
        .map(aks::seen)
        .collect();
    let gpu = node_groups.iter().any(|g| {
        g.instance_types
            .first()
            .is_some_and(|s| matches!(aks::vm_gpus(s), aks::VmGpus::Nvidia { .. }))
    });
    let kubeconfig = match user_server(ctx, name).await {
        Ok((server, ca)) => kubeconfig(name, &server, ca.as_deref()),
        Err(e) => {
            diags.warning(
                "Cannot read the cluster's API server",
                format!("{e}. kubeconfig is kept as it was."),
            );
            String::new()
        }
    };
    let cloud = cloud_facts(&cl, kubeconfig, node_groups, gpu);
    let hostname = cl.properties.fqdn.clone().unwrap_or_default();
    Ok(observe_kube(&az.kube, spec, gpu, hostname, cloud, diags).await)
}

/// Destroy, in order: Kubernetes objects, agent pools, the cluster, the resource group (only
/// when the provider made it and nothing else is in it). What was adopted is left alone.
pub(super) async fn remove(
    az: &Azure,
    ctx: &Context,
    objects: &[String],
    timeout: Duration,
) -> Result<(), PlatformError> {
    let name = az.cluster.name.as_str();
    let rec = Record::of(objects, PREFIX);
    let ours = rec.has(&format!("{CLUSTER}{name}"));
    let deadline = Instant::now() + timeout;
    if !rec.kube.is_empty() {
        if let Err(e) = az.kube.remove_objects(Some(&rec.kube)).await {
            if !ours {
                return Err(e);
            }
        }
    }
    for id in rec.with_prefix(ADMIN) {
        ctx.arm
            .delete(id, super::acr::ROLES_API_VERSION, deadline)
            .await
            .map_err(|e| arm_error("deleting the cluster admin role assignment", e))?;
    }
    // A cluster the provider made takes its pools with it.
    if !ours {
        for n in rec.with_prefix(POOL) {
            ctx.arm
                .delete(
                    &format!("{}/agentPools/{n}", ctx.cluster_path(name)),
                    aks::API_VERSION,
                    deadline,
                )
                .await
                .map_err(|e| arm_error(&format!("deleting agent pool {n}"), e))?;
        }
    } else {
        ctx.arm
            .delete(&ctx.cluster_path(name), aks::API_VERSION, deadline)
            .await
            .map_err(|e| arm_error(&format!("deleting AKS cluster {name}"), e))?;
    }
    for g in rec.with_prefix(RESOURCE_GROUP) {
        let path = format!("{}/resources", ctx.arm.group_path(g));
        let left: Option<aks::List<serde_json::Value>> = ctx
            .arm
            .get(&path, aks::RESOURCES_API_VERSION)
            .await
            .map_err(|e| arm_error(&format!("resources of {g}"), e))?;
        if left.is_some_and(|l| !l.value.is_empty()) {
            continue;
        }
        ctx.arm
            .delete(&ctx.arm.group_path(g), aks::RESOURCES_API_VERSION, deadline)
            .await
            .map_err(|e| arm_error(&format!("deleting resource group {g}"), e))?;
    }
    Ok(())
}

/// Import `azure/NAME`: the cluster and its user agent pools become the state's (destroy
/// deletes them), with the partitions the Kubernetes side has.
pub(super) async fn import(
    az: &Azure,
    ctx: &Context,
) -> Result<(Vec<partitions::Partition>, Option<Vec<String>>), PlatformError> {
    let name = az.cluster.name.as_str();
    if get_cluster(ctx, name).await?.is_none() {
        return Err(PlatformError::Failed(format!(
            "there is no AKS cluster named {name:?} in resource group {}",
            ctx.resource_group
        )));
    }
    let mut rec = Record::default();
    rec.push(format!("{CLUSTER}{name}"));
    for p in list_pools(ctx, name).await? {
        if p.properties.mode.as_deref() != Some("System") {
            rec.push(format!("{POOL}{}", p.name));
        }
    }
    let (parts, kube) = az
        .kube
        .import_cluster_partitions()
        .await
        .unwrap_or_default();
    rec.kube = kube;
    Ok((parts, Some(rec.all())))
}
