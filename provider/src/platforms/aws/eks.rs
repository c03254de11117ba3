//! EKS and IAM calls, each with the error a user can act on: roles, the cluster, node groups,
//! and the waits for their states.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_eks::types as eks;
use tfplugin::{AttributePath, PathStep};

use super::nodegroup::{self, Family};
use super::Clients;
use crate::platforms::{NodeGroupSeen, NodePoolSpec, PlatformError, Taint};

pub(super) const ROLE: &str = "aws:iam-role/";
pub(super) const CLUSTER: &str = "aws:eks-cluster/";
pub(super) const OIDC: &str = "aws:oidc-provider/";
pub(super) const NODEGROUP: &str = "aws:eks-nodegroup/";

pub(super) use crate::platforms::managed::pools::Record;

/// Policies of the role the EKS control plane assumes.
pub(super) const CLUSTER_POLICIES: &[&str] = &["AmazonEKSClusterPolicy"];
/// Policies of the role nodes assume.
pub(super) const NODE_POLICIES: &[&str] = &[
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
];

pub(super) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

pub(super) fn eks_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    what: &str,
    e: aws_sdk_eks::error::SdkError<E, R>,
) -> PlatformError {
    PlatformError::Failed(format!(
        "{what}: {}",
        aws_sdk_eks::error::DisplayErrorContext(e)
    ))
}

pub(super) fn iam_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    what: &str,
    e: aws_sdk_iam::error::SdkError<E, R>,
) -> PlatformError {
    PlatformError::Failed(format!(
        "{what}: {}",
        aws_sdk_iam::error::DisplayErrorContext(e)
    ))
}

/// The cluster, or `None` when there is none of that name.
pub(super) async fn describe(
    c: &Clients,
    name: &str,
) -> Result<Option<eks::Cluster>, PlatformError> {
    match c.eks.describe_cluster().name(name).send().await {
        Ok(o) => Ok(o.cluster),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(eks_error(&format!("DescribeCluster {name}"), e)),
    }
}

pub(super) async fn describe_nodegroup(
    c: &Clients,
    cluster: &str,
    name: &str,
) -> Result<Option<eks::Nodegroup>, PlatformError> {
    match c
        .eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
    {
        Ok(o) => Ok(o.nodegroup),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(eks_error(&format!("DescribeNodegroup {cluster}/{name}"), e)),
    }
}

pub(super) async fn list_nodegroups(
    c: &Clients,
    cluster: &str,
) -> Result<Vec<String>, PlatformError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = c
            .eks
            .list_nodegroups()
            .cluster_name(cluster)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| eks_error(&format!("ListNodegroups {cluster}"), e))?;
        out.extend(page.nodegroups().iter().cloned());
        next = page.next_token().map(String::from);
        if next.is_none() {
            return Ok(out);
        }
    }
}

/// A role the provider owns: created with its trust policy and managed policies when missing.
pub(super) async fn ensure_role(
    c: &Clients,
    name: &str,
    service: &str,
    policies: &[&str],
    rec: &mut Record,
) -> Result<String, PlatformError> {
    let arn = match c.iam.get_role().role_name(name).send().await {
        Ok(o) => {
            if !rec.has(&format!("{ROLE}{name}")) {
                return Err(PlatformError::Refused {
                    attribute: Some(AttributePath::attr("aws")),
                    summary: "IAM role exists".into(),
                    message: format!("an IAM role named {name:?} exists and this cluster did not create it; give its ARN in aws.cluster_role_arn / aws.node_role_arn to use it, or delete it"),
                });
            }
            o.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            let trust = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "Service": service },
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }]
            });
            let o = c
                .iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .description("Created by Modelplane for an EKS cluster")
                .tags(managed_by()?)
                .send()
                .await
                .map_err(|e| iam_error(&format!("CreateRole {name}"), e))?;
            rec.push(format!("{ROLE}{name}"));
            o.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
        Err(e) => return Err(iam_error(&format!("GetRole {name}"), e)),
    };
    let p = partition(&c.region);
    for policy in policies {
        c.iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(format!("arn:{p}:iam::aws:policy/{policy}"))
            .send()
            .await
            .map_err(|e| iam_error(&format!("AttachRolePolicy {name} {policy}"), e))?;
    }
    Ok(arn)
}

/// The tag on every IAM role the provider creates.
pub(super) fn managed_by() -> Result<aws_sdk_iam::types::Tag, PlatformError> {
    aws_sdk_iam::types::Tag::builder()
        .key("managed-by")
        .value("modelplane")
        .build()
        .map_err(|e| PlatformError::Failed(e.to_string()))
}

pub(super) async fn delete_role(c: &Clients, name: &str) -> Result<(), PlatformError> {
    let attached = match c
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
    {
        Ok(o) => o.attached_policies.unwrap_or_default(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(iam_error(&format!("ListAttachedRolePolicies {name}"), e)),
    };
    for p in attached {
        if let Some(arn) = p.policy_arn() {
            c.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| iam_error(&format!("DetachRolePolicy {name}"), e))?;
        }
    }
    match c.iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(iam_error(&format!("DeleteRole {name}"), e)),
    }
}

/// Waits for the cluster to be ACTIVE; FAILED, or the deadline, is an error saying why.
pub(super) async fn wait_cluster(
    c: &Clients,
    name: &str,
    deadline: Instant,
) -> Result<eks::Cluster, PlatformError> {
    loop {
        let Some(cl) = describe(c, name).await? else {
            return Err(PlatformError::Failed(format!(
                "EKS cluster {name:?} disappeared while waiting for it to become ACTIVE"
            )));
        };
        match cl.status() {
            Some(eks::ClusterStatus::Active) => return Ok(cl),
            Some(eks::ClusterStatus::Failed) => {
                let issues: Vec<String> = cl
                    .health()
                    .map(|h| {
                        h.issues()
                            .iter()
                            .map(|i| {
                                format!(
                                    "{}: {}",
                                    i.code().map(|c| c.as_str()).unwrap_or("issue"),
                                    i.message().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(PlatformError::Failed(format!(
                    "EKS cluster {name:?} failed to create{}",
                    if issues.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", issues.join("; "))
                    }
                )));
            }
            s => {
                if Instant::now() >= deadline {
                    return Err(PlatformError::Failed(format!(
                        "EKS cluster {name:?} is still {} after the timeout; raise timeouts.create, or look at the cluster in the EKS console",
                        s.map(|s| s.as_str()).unwrap_or("unknown")
                    )));
                }
            }
        }
        tokio::time::sleep(c.poll).await;
    }
}

/// Why a node group failed, from its health issues.
pub(super) fn health(ng: &eks::Nodegroup) -> String {
    let issues: Vec<String> = ng
        .health()
        .map(|h| {
            h.issues()
                .iter()
                .map(|i| {
                    let code = i.code().map(|c| c.as_str()).unwrap_or("issue");
                    let hint = match code {
                        "InsufficientFreeAddresses" => " (the subnets are out of IP addresses)",
                        "AsgInstanceLaunchFailures" | "Ec2InstanceTypeDoesNotExist" | "InstanceLimitExceeded" => {
                            " (no capacity or quota for this instance type in these subnets' zones: try another type or zone, or ask for a quota increase)"
                        }
                        "NodeCreationFailure" => " (instances did not join the cluster: check the node role, the subnets' route to the API server, and that the AMI type matches the instance type)",
                        "AmiIdNotFound" | "Ec2LaunchTemplateNotFound" => " (the AMI does not fit this instance type or region)",
                        _ => "",
                    };
                    format!("{code}: {}{hint}", i.message().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default();
    if issues.is_empty() {
        "no health issue reported".into()
    } else {
        issues.join("; ")
    }
}

/// Waits for a node group to be ACTIVE.
pub(super) async fn wait_nodegroup(
    c: &Clients,
    cluster: &str,
    name: &str,
    deadline: Instant,
) -> Result<eks::Nodegroup, PlatformError> {
    loop {
        let Some(ng) = describe_nodegroup(c, cluster, name).await? else {
            return Err(PlatformError::Failed(format!(
                "node group {name:?} disappeared while waiting for it to become ACTIVE"
            )));
        };
        match ng.status() {
            Some(eks::NodegroupStatus::Active) => return Ok(ng),
            Some(
                s @ (eks::NodegroupStatus::CreateFailed
                | eks::NodegroupStatus::Degraded
                | eks::NodegroupStatus::DeleteFailed),
            ) => {
                return Err(PlatformError::Failed(format!(
                    "node group {name:?} is {}: {}",
                    s.as_str(),
                    health(&ng)
                )))
            }
            s => {
                if Instant::now() >= deadline {
                    return Err(PlatformError::Failed(format!(
                        "node group {name:?} is still {} after the timeout: {}; raise timeouts.create or timeouts.update",
                        s.map(|s| s.as_str()).unwrap_or("unknown"),
                        health(&ng)
                    )));
                }
            }
        }
        tokio::time::sleep(c.poll).await;
    }
}

/// Deletes a node group and waits until it is gone.
pub(super) async fn delete_nodegroup(
    c: &Clients,
    cluster: &str,
    name: &str,
    deadline: Instant,
) -> Result<(), PlatformError> {
    match c
        .eks
        .delete_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(eks_error(&format!("DeleteNodegroup {name}"), e)),
    }
    loop {
        match describe_nodegroup(c, cluster, name).await? {
            None => return Ok(()),
            Some(ng) if ng.status() == Some(&eks::NodegroupStatus::DeleteFailed) => {
                return Err(PlatformError::Failed(format!(
                    "node group {name:?} failed to delete: {}",
                    health(&ng)
                )))
            }
            Some(_) if Instant::now() >= deadline => {
                return Err(PlatformError::Failed(format!(
                    "node group {name:?} is still deleting after the timeout; raise timeouts.delete"
                )))
            }
            Some(_) => tokio::time::sleep(c.poll).await,
        }
    }
}

pub(super) fn eks_taint(t: &Taint) -> eks::Taint {
    eks::Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(eks::TaintEffect::from(nodegroup::eks_effect(&t.effect)))
        .build()
}

pub(super) fn taint_of(t: &eks::Taint) -> Taint {
    Taint {
        key: t.key().unwrap_or_default().to_string(),
        value: t.value().map(String::from),
        effect: nodegroup::k8s_effect(t.effect().map(|e| e.as_str()).unwrap_or("")).to_string(),
    }
}

pub(super) fn seen(ng: &eks::Nodegroup) -> NodeGroupSeen {
    let sc = ng.scaling_config();
    let mut taints: Vec<Taint> = ng.taints().iter().map(taint_of).collect();
    taints.sort();
    NodeGroupSeen {
        name: ng.nodegroup_name().unwrap_or_default().to_string(),
        instance_types: ng.instance_types().to_vec(),
        capacity_type: ng
            .capacity_type()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        ami_type: ng
            .ami_type()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        min_size: sc.and_then(|s| s.min_size()).unwrap_or(0) as i64,
        max_size: sc.and_then(|s| s.max_size()).unwrap_or(0) as i64,
        desired_size: sc.and_then(|s| s.desired_size()).unwrap_or(0) as i64,
        status: ng
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        labels: ng
            .labels()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        taints,
    }
}

pub(super) fn pool_path(i: usize, attr: &str) -> AttributePath {
    AttributePath(vec![
        PathStep::Attr("node_pool".into()),
        PathStep::Index(i as i64),
        PathStep::Attr(attr.into()),
    ])
}

/// Creates the node group of a pool.
pub(super) async fn create_nodegroup(
    c: &Clients,
    cluster: &str,
    subnets: &[String],
    node_role: &str,
    pool: &NodePoolSpec,
    family: Family,
) -> Result<(), PlatformError> {
    let (min, max, desired) = nodegroup::scaling(pool, None);
    let labels: HashMap<String, String> = nodegroup::labels(pool, family).into_iter().collect();
    let taints: Vec<eks::Taint> = nodegroup::taints(pool, family)
        .iter()
        .map(eks_taint)
        .collect();
    c.eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(&pool.name)
        .scaling_config(
            eks::NodegroupScalingConfig::builder()
                .min_size(min as i32)
                .max_size(max as i32)
                .desired_size(desired as i32)
                .build(),
        )
        .set_subnets(Some(subnets.to_vec()))
        .set_instance_types(Some(pool.instance_types.clone()))
        .ami_type(eks::AmiTypes::from(family.ami_type()))
        .capacity_type(if pool.spot {
            eks::CapacityTypes::Spot
        } else {
            eks::CapacityTypes::OnDemand
        })
        .node_role(node_role)
        .set_labels(Some(labels))
        .set_taints(Some(taints))
        .tags("managed-by", "modelplane")
        .send()
        .await
        .map_err(|e| eks_error(&format!("CreateNodegroup {}", pool.name), e))?;
    Ok(())
}

/// Brings an existing node group to the pool: sizes, labels and taints in place. Instance
/// types and capacity type cannot change in place on EKS.
pub(super) async fn update_nodegroup(
    c: &Clients,
    cluster: &str,
    index: usize,
    pool: &NodePoolSpec,
    family: Family,
    current: &eks::Nodegroup,
) -> Result<bool, PlatformError> {
    let now = seen(current);
    let capacity = if pool.spot { "SPOT" } else { "ON_DEMAND" };
    if now.instance_types != pool.instance_types || now.capacity_type != capacity {
        return Err(PlatformError::Invalid {
            attribute: pool_path(index, if now.capacity_type != capacity { "spot" } else { "instance_type" }),
            message: format!(
                "node group {:?} runs {} {}; EKS cannot change a node group's instance types or capacity type in place. Rename the pool to move to the new settings: the new node group is created and the old one deleted in the same apply.",
                pool.name,
                now.instance_types.join(", "),
                now.capacity_type
            ),
        });
    }
    let (min, max, desired) = nodegroup::scaling(pool, Some(now.desired_size));
    let wanted_labels = nodegroup::labels(pool, family);
    let wanted_taints = nodegroup::taints(pool, family);
    let mut req = c
        .eks
        .update_nodegroup_config()
        .cluster_name(cluster)
        .nodegroup_name(&pool.name);
    let mut changed = false;
    if (min, max, desired) != (now.min_size, now.max_size, now.desired_size) {
        req = req.scaling_config(
            eks::NodegroupScalingConfig::builder()
                .min_size(min as i32)
                .max_size(max as i32)
                .desired_size(desired as i32)
                .build(),
        );
        changed = true;
    }
    if wanted_labels != now.labels {
        let add: HashMap<String, String> = wanted_labels
            .iter()
            .filter(|(k, v)| now.labels.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove: Vec<String> = now
            .labels
            .keys()
            .filter(|k| !wanted_labels.contains_key(*k))
            .cloned()
            .collect();
        req = req.labels(
            eks::UpdateLabelsPayload::builder()
                .set_add_or_update_labels((!add.is_empty()).then_some(add))
                .set_remove_labels((!remove.is_empty()).then_some(remove))
                .build(),
        );
        changed = true;
    }
    if wanted_taints != now.taints {
        let add: Vec<eks::Taint> = wanted_taints
            .iter()
            .filter(|t| !now.taints.contains(t))
            .map(eks_taint)
            .collect();
        let remove: Vec<eks::Taint> = now
            .taints
            .iter()
            .filter(|t| {
                !wanted_taints
                    .iter()
                    .any(|w| w.key == t.key && w.effect == t.effect)
            })
            .map(eks_taint)
            .collect();
        req = req.taints(
            eks::UpdateTaintsPayload::builder()
                .set_add_or_update_taints((!add.is_empty()).then_some(add))
                .set_remove_taints((!remove.is_empty()).then_some(remove))
                .build(),
        );
        changed = true;
    }
    if changed {
        req.send()
            .await
            .map_err(|e| eks_error(&format!("UpdateNodegroupConfig {}", pool.name), e))?;
    }
    Ok(changed)
}
