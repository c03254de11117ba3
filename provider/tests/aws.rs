//! The `aws` platform. Its EKS and IAM calls run against mocked clients (`aws-smithy-mocks`)
//! for the states moto cannot show (a cluster CREATING then ACTIVE, a node group that fails to
//! create with its health issues, a node group updated in place), and against moto through
//! real Terraform for the lifecycle: create, an empty plan, node groups added and removed, a
//! node group deleted behind Terraform's back, import, and destroy in order. moto's clusters
//! have no Kubernetes API, so the Kubernetes side (device plugin, partitions, GPU readiness)
//! talks to the in-memory API server of `kubernetes.rs`, served over HTTP on loopback and
//! named by the provider's `aws.kubernetes_endpoint_url`.
//!
//! The same lifecycle against real AWS is `aws_cluster_on_real_eks`, run only when
//! `MODELPLANE_ACC_AWS_REGION` names a region (it costs money: see its comment).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_eks::operation::{
    create_cluster::CreateClusterOutput,
    create_nodegroup::CreateNodegroupOutput,
    describe_cluster::{DescribeClusterError, DescribeClusterOutput},
    describe_nodegroup::DescribeNodegroupOutput,
    list_nodegroups::ListNodegroupsOutput,
    update_nodegroup_config::UpdateNodegroupConfigOutput,
};
use aws_sdk_eks::types as eks;
use aws_sdk_iam::operation::{
    attach_role_policy::AttachRolePolicyOutput,
    create_open_id_connect_provider::CreateOpenIdConnectProviderOutput,
    create_role::CreateRoleOutput,
    get_role::{GetRoleError, GetRoleOutput},
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube_fake_client::ClientBuilder;
use serde_json::json;

use modelplane_provider::ids::{ClusterId, PlatformKind};
use modelplane_provider::platforms::aws::{Aws, Clients, ClusterSettings};
use modelplane_provider::platforms::kubernetes::{KubeTarget, Kubernetes};
use modelplane_provider::platforms::{ClusterSpec, NodePoolSpec, Platform, Timeouts};
use modelplane_provider::AwsSettings;

use crate::common::{acc, block_on, containers, emulators, Local};
use tfplugin::acctest::{attr_equals, plan_action, ImportStep, Step, TestCase};

const ACTIVE_ARN: &str = "arn:aws:eks:eu-west-1:111122223333:cluster/ml";

fn cluster(status: eks::ClusterStatus) -> eks::Cluster {
    eks::Cluster::builder()
        .name("ml")
        .arn(ACTIVE_ARN)
        .status(status)
        .endpoint("https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com")
        .identity(
            eks::Identity::builder()
                .oidc(
                    eks::Oidc::builder()
                        .issuer("https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF")
                        .build(),
                )
                .build(),
        )
        .build()
}

fn role(name: &str) -> aws_sdk_iam::types::Role {
    aws_sdk_iam::types::Role::builder()
        .role_name(name)
        .arn(format!("arn:aws:iam::111122223333:role/{name}"))
        .path("/")
        .role_id("AROA")
        .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0))
        .build()
        .unwrap()
}

fn gpu_pool() -> NodePoolSpec {
    NodePoolSpec {
        name: "gpu".into(),
        purpose: "inference".into(),
        instance_types: vec!["g5.xlarge".into()],
        gpu_count: Some(1),
        gpu_type: None,
        min_size: Some(1),
        max_size: Some(4),
        desired_size: None,
        spot: false,
        labels: BTreeMap::new(),
        taints: vec![],
        gpu_sharing: None,
        gpu_instance: None,
        gpu_driver: None,
        spot_max_price: None,
    }
}

fn spec(pools: Vec<NodePoolSpec>, timeouts: Timeouts) -> ClusterSpec {
    ClusterSpec {
        engine: None,
        partitions: vec![],
        pools,
        aws: Some(ClusterSettings {
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            kubernetes_version: Some("1.33".into()),
            ..Default::default()
        }),
        azure: None,
        timeouts,
    }
}

fn quick(t: Duration) -> Timeouts {
    Timeouts {
        create: t,
        update: t,
        delete: t,
    }
}

fn platform(eks: aws_sdk_eks::Client, iam: aws_sdk_iam::Client, kube: Option<kube::Client>) -> Aws {
    let id = ClusterId::new(PlatformKind::Aws, "ml");
    let target = match kube {
        Some(c) => KubeTarget::Client(c, "https://fake".into()),
        // Nothing to reach: a test that needs the Kubernetes side passes a client.
        None => KubeTarget::Client(
            kube::Client::new(
                tower::service_fn(|_req: http::Request<kube::client::Body>| async {
                    Err::<http::Response<kube::client::Body>, _>(std::io::Error::other(
                        "no Kubernetes API in this test",
                    ))
                }),
                "default",
            ),
            "https://none".into(),
        ),
    };
    Aws {
        cluster: id.clone(),
        settings: AwsSettings::default(),
        clients: Some(Clients {
            eks,
            iam,
            ecr: aws_sdk_ecr::Client::from_conf(
                aws_sdk_ecr::Config::builder()
                    .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
                    .region(aws_sdk_ecr::config::Region::new("eu-west-1"))
                    .build(),
            ),
            region: "eu-west-1".into(),
            credentials: None,
            poll: Duration::from_millis(5),
        }),
        kube: Kubernetes {
            cluster: id,
            target,
        },
    }
}

#[tokio::test]
async fn a_new_cluster_is_waited_for_from_creating_to_active() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster)
        .sequence()
        .error(|| DescribeClusterError::ResourceNotFoundException(eks_not_found()))
        .output(|| {
            DescribeClusterOutput::builder()
                .cluster(cluster(eks::ClusterStatus::Creating))
                .build()
        })
        .times(3)
        .output(|| {
            DescribeClusterOutput::builder()
                .cluster(cluster(eks::ClusterStatus::Active))
                .build()
        })
        .repeatedly()
        .build();
    // The caller becomes cluster admin through an access entry; EKS's API mode with the
    // ConfigMap kept for nodes.
    let create = mock!(aws_sdk_eks::Client::create_cluster)
        .match_requests(|r| {
            r.access_config()
                .and_then(|a| a.bootstrap_cluster_creator_admin_permissions())
                == Some(true)
                && r.access_config().and_then(|a| a.authentication_mode())
                    == Some(&eks::AuthenticationMode::ApiAndConfigMap)
                && r.role_arn() == Some("arn:aws:iam::111122223333:role/ml-eks-cluster")
                && r.resources_vpc_config().map(|v| v.subnet_ids().len()) == Some(2)
                && r.version() == Some("1.33")
        })
        .then_output(|| CreateClusterOutput::builder().build());
    let list = mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().build());
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(
            aws_sdk_iam::types::error::NoSuchEntityException::builder().build(),
        )
    });
    let create_role = mock!(aws_sdk_iam::Client::create_role)
        .match_requests(|r| {
            r.assume_role_policy_document()
                .is_some_and(|d| d.contains("eks.amazonaws.com"))
        })
        .then_output(|| {
            CreateRoleOutput::builder()
                .role(role("ml-eks-cluster"))
                .build()
        });
    let attach = mock!(aws_sdk_iam::Client::attach_role_policy)
        .match_requests(|r| {
            r.policy_arn() == Some("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
        })
        .then_output(|| AttachRolePolicyOutput::builder().build());
    let oidc = mock!(aws_sdk_iam::Client::create_open_id_connect_provider)
        .match_requests(|r| r.url() == Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF") && r.client_id_list() == ["sts.amazonaws.com"])
        .then_output(|| CreateOpenIdConnectProviderOutput::builder().open_id_connect_provider_arn("arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF").build());
    let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe, &create, &list]);
    let iam = mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&get_role, &create_role, &attach, &oidc]
    );
    let p = platform(eks, iam, None);
    let mut diags = tfplugin::Diagnostics::default();
    let facts = p
        .converge_cluster(
            &spec(vec![], quick(Duration::from_secs(5))),
            &[],
            &mut diags,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(create.num_calls(), 1);
    assert_eq!(
        describe.num_calls(),
        5,
        "found nothing, then CREATING three times, then ACTIVE"
    );
    assert_eq!(attach.num_calls(), 1);
    assert_eq!(
        facts.objects.unwrap(),
        [
            "aws:iam-role/ml-eks-cluster",
            "aws:eks-cluster/ml",
            "aws:oidc-provider/arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF",
        ]
    );
    let cloud = facts.cloud.unwrap();
    assert_eq!(cloud.resource_id, ACTIVE_ARN);
    assert!(
        cloud.kubeconfig.contains("eks") && cloud.kubeconfig.contains("get-token"),
        "{}",
        cloud.kubeconfig
    );
    assert!(
        !cloud.kubeconfig.contains("k8s-aws-v1."),
        "the kubeconfig holds no token"
    );
    assert_eq!(
        facts.hostname,
        "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
    );
}

#[tokio::test]
async fn a_cluster_that_stays_creating_times_out_with_its_status() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
        DescribeClusterOutput::builder()
            .cluster(cluster(eks::ClusterStatus::Creating))
            .build()
    });
    let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe]);
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, []);
    let p = platform(eks, iam, None);
    let mut diags = tfplugin::Diagnostics::default();
    let (e, partial) = p
        .converge_cluster(
            &spec(vec![], quick(Duration::from_millis(50))),
            &["aws:eks-cluster/ml".into()],
            &mut diags,
        )
        .await
        .expect_err("times out");
    let e = e.to_string();
    assert!(
        e.contains("still CREATING after the timeout") && e.contains("timeouts.create"),
        "{e}"
    );
    // The record of what exists stays in the state.
    assert_eq!(partial.unwrap().objects.unwrap(), ["aws:eks-cluster/ml"]);
}

fn eks_not_found() -> eks::error::ResourceNotFoundException {
    eks::error::ResourceNotFoundException::builder().build()
}

fn nodegroup(
    name: &str,
    status: eks::NodegroupStatus,
    sizes: (i32, i32, i32),
    labels: &[(&str, &str)],
    issues: Vec<eks::Issue>,
) -> eks::Nodegroup {
    eks::Nodegroup::builder()
        .nodegroup_name(name)
        .cluster_name("ml")
        .status(status)
        .instance_types("g5.xlarge")
        .capacity_type(eks::CapacityTypes::OnDemand)
        .ami_type(eks::AmiTypes::Al2023X8664Nvidia)
        .scaling_config(
            eks::NodegroupScalingConfig::builder()
                .min_size(sizes.0)
                .max_size(sizes.1)
                .desired_size(sizes.2)
                .build(),
        )
        .set_labels(Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ))
        .taints(
            eks::Taint::builder()
                .key("nvidia.com/gpu")
                .value("true")
                .effect(eks::TaintEffect::NoSchedule)
                .build(),
        )
        .health(
            eks::NodegroupHealth::builder()
                .set_issues(Some(issues))
                .build(),
        )
        .build()
}

const GPU_LABELS: &[(&str, &str)] = &[
    ("modelplane.io/node-pool", "gpu"),
    ("modelplane.io/purpose", "inference"),
    ("nvidia.com/gpu.present", "true"),
];

#[tokio::test]
async fn a_node_group_that_fails_to_create_names_its_health_issues() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
        DescribeClusterOutput::builder()
            .cluster(cluster(eks::ClusterStatus::Active))
            .build()
    });
    let list = mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().build());
    // A GPU pool: the NVIDIA AMI, the GPU taint and labels, on-demand, desired = min.
    let create = mock!(aws_sdk_eks::Client::create_nodegroup)
        .match_requests(|r| {
            r.ami_type() == Some(&eks::AmiTypes::Al2023X8664Nvidia)
                && r.instance_types() == ["g5.xlarge"]
                && r.capacity_type() == Some(&eks::CapacityTypes::OnDemand)
                && r.taints().len() == 1
                && r.taints()[0].key() == Some("nvidia.com/gpu")
                && r.taints()[0].effect() == Some(&eks::TaintEffect::NoSchedule)
                && r.labels()
                    .and_then(|l| l.get("nvidia.com/gpu.present"))
                    .map(String::as_str)
                    == Some("true")
                && r.scaling_config().and_then(|s| s.desired_size()) == Some(1)
                && r.node_role() == Some("arn:aws:iam::111122223333:role/ml-eks-node")
        })
        .then_output(|| CreateNodegroupOutput::builder().build());
    let describe_ng = mock!(aws_sdk_eks::Client::describe_nodegroup)
        .sequence()
        .output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(
                    "gpu",
                    eks::NodegroupStatus::Creating,
                    (1, 4, 1),
                    GPU_LABELS,
                    vec![],
                ))
                .build()
        })
        .times(2)
        .output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(
                    "gpu",
                    eks::NodegroupStatus::CreateFailed,
                    (1, 4, 1),
                    GPU_LABELS,
                    vec![eks::Issue::builder()
                        .code(eks::NodegroupIssueCode::AsgInstanceLaunchFailures)
                        .message(
                            "Could not launch On-Demand Instances. InsufficientInstanceCapacity",
                        )
                        .build()],
                ))
                .build()
        })
        .repeatedly()
        .build();
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(
            aws_sdk_iam::types::error::NoSuchEntityException::builder().build(),
        )
    });
    let create_role = mock!(aws_sdk_iam::Client::create_role)
        .match_requests(|r| {
            r.assume_role_policy_document()
                .is_some_and(|d| d.contains("ec2.amazonaws.com"))
        })
        .then_output(|| {
            CreateRoleOutput::builder()
                .role(role("ml-eks-node"))
                .build()
        });
    let attach = mock!(aws_sdk_iam::Client::attach_role_policy)
        .then_output(|| AttachRolePolicyOutput::builder().build());
    let oidc = mock!(aws_sdk_iam::Client::create_open_id_connect_provider).then_output(|| {
        CreateOpenIdConnectProviderOutput::builder()
            .open_id_connect_provider_arn("arn:oidc")
            .build()
    });
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&describe, &list, &create, &describe_ng]
    );
    let iam = mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&get_role, &create_role, &attach, &oidc]
    );
    let p = platform(eks, iam, None);
    let mut diags = tfplugin::Diagnostics::default();
    let (e, partial) = p
        .converge_cluster(
            &spec(vec![gpu_pool()], quick(Duration::from_secs(5))),
            &["aws:eks-cluster/ml".into()],
            &mut diags,
        )
        .await
        .expect_err("the node group fails");
    let e = e.to_string();
    assert!(e.contains("node group \"gpu\" is CREATE_FAILED"), "{e}");
    assert!(
        e.contains("AsgInstanceLaunchFailures") && e.contains("InsufficientInstanceCapacity"),
        "{e}"
    );
    assert!(
        e.contains("no capacity or quota for this instance type"),
        "{e}"
    );
    assert_eq!(attach.num_calls(), 3, "the three node policies");
    // The failed node group is recorded, so destroy (or the next apply) deals with it.
    let objects = partial.unwrap().objects.unwrap();
    assert!(
        objects.contains(&"aws:eks-nodegroup/gpu".to_string()),
        "{objects:?}"
    );
    assert!(
        objects.contains(&"aws:iam-role/ml-eks-node".to_string()),
        "{objects:?}"
    );
}

#[tokio::test]
async fn a_node_group_is_resized_and_relabelled_in_place_with_desired_clamped() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
        DescribeClusterOutput::builder()
            .cluster(cluster(eks::ClusterStatus::Active))
            .build()
    });
    let list = mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().nodegroups("gpu").build());
    // The autoscaler has it at 3; the new max is 2, so desired becomes 2, not ignored.
    let describe_ng = mock!(aws_sdk_eks::Client::describe_nodegroup)
        .sequence()
        .output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(
                    "gpu",
                    eks::NodegroupStatus::Active,
                    (1, 4, 3),
                    GPU_LABELS,
                    vec![],
                ))
                .build()
        })
        .output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(
                    "gpu",
                    eks::NodegroupStatus::Updating,
                    (1, 2, 2),
                    GPU_LABELS,
                    vec![],
                ))
                .build()
        })
        .output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(
                    "gpu",
                    eks::NodegroupStatus::Active,
                    (1, 2, 2),
                    GPU_LABELS,
                    vec![],
                ))
                .build()
        })
        .repeatedly()
        .build();
    let update = mock!(aws_sdk_eks::Client::update_nodegroup_config)
        .match_requests(|r| {
            let s = r.scaling_config();
            s.and_then(|s| s.min_size()) == Some(1)
                && s.and_then(|s| s.max_size()) == Some(2)
                && s.and_then(|s| s.desired_size()) == Some(2)
                && r.labels()
                    .and_then(|l| l.add_or_update_labels())
                    .and_then(|l| l.get("team"))
                    .map(String::as_str)
                    == Some("ml")
                && r.labels().is_some_and(|l| l.remove_labels().is_empty())
                && r.taints().is_none()
        })
        .then_output(|| UpdateNodegroupConfigOutput::builder().build());
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&describe, &list, &describe_ng, &update]
    );
    let iam = mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&mock!(aws_sdk_iam::Client::get_role)
            .then_output(|| GetRoleOutput::builder().role(role("ml-eks-node")).build())]
    );
    // Kubernetes: a GPU node of the group that advertises its GPU.
    let kube = crate::kubernetes::client_with(
        ClientBuilder::new()
            .with_object(eks_node("ip-10-0-0-1", "gpu", 1))
            .with_object(eks_node("ip-10-0-0-2", "gpu", 1)),
    )
    .await;
    let p = platform(eks, iam, Some(kube.clone()));
    let pool = NodePoolSpec {
        max_size: Some(2),
        labels: BTreeMap::from([("team".to_string(), "ml".to_string())]),
        ..gpu_pool()
    };
    let mut diags = tfplugin::Diagnostics::default();
    let before = vec![
        "aws:eks-cluster/ml".to_string(),
        "aws:oidc-provider/arn:oidc".to_string(),
        "aws:eks-nodegroup/gpu".to_string(),
    ];
    let facts = p
        .converge_cluster(
            &spec(vec![pool], quick(Duration::from_secs(5))),
            &before,
            &mut diags,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(update.num_calls(), 1);
    assert_eq!(describe_ng.num_calls(), 3, "read, UPDATING, ACTIVE");
    let cloud = facts.cloud.clone().unwrap();
    assert_eq!(
        (
            cloud.node_groups[0].max_size,
            cloud.node_groups[0].desired_size
        ),
        (2, 2)
    );
    // The device plugin is written into the cluster and recorded.
    let ds: Api<DaemonSet> = Api::namespaced(kube, "kube-system");
    assert!(ds.get_opt("nvidia-device-plugin").await.unwrap().is_some());
    let objects = facts.objects.unwrap();
    assert!(
        objects
            .iter()
            .any(|o| o == "apps/v1/DaemonSet/kube-system/nvidia-device-plugin"),
        "{objects:?}"
    );
    assert_eq!(
        facts.cloud.unwrap().device_plugin_version.as_deref(),
        Some("v0.17.4")
    );
}

/// A node of an EKS node group, with `gpus` allocatable.
fn eks_node(name: &str, group: &str, gpus: i64) -> Node {
    crate::kubernetes::pool_node(name, group, gpus, ("eks.amazonaws.com/nodegroup", group))
}

#[tokio::test]
async fn gpu_nodes_that_never_advertise_gpus_fail_the_apply_with_the_reason() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
        DescribeClusterOutput::builder()
            .cluster(cluster(eks::ClusterStatus::Active))
            .build()
    });
    let list = mock!(aws_sdk_eks::Client::list_nodegroups)
        .then_output(|| ListNodegroupsOutput::builder().nodegroups("gpu").build());
    let describe_ng = mock!(aws_sdk_eks::Client::describe_nodegroup).then_output(|| {
        DescribeNodegroupOutput::builder()
            .nodegroup(nodegroup(
                "gpu",
                eks::NodegroupStatus::Active,
                (1, 4, 1),
                GPU_LABELS,
                vec![],
            ))
            .build()
    });
    let eks = mock_client!(
        aws_sdk_eks,
        RuleMode::MatchAny,
        [&describe, &list, &describe_ng]
    );
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, []);
    // The node joined, but nvidia.com/gpu is not allocatable (no device plugin, no driver).
    let kube = crate::kubernetes::client_with(ClientBuilder::new().with_object(eks_node(
        "ip-10-0-0-1",
        "gpu",
        0,
    )))
    .await;
    let p = platform(eks, iam, Some(kube));
    let mut diags = tfplugin::Diagnostics::default();
    let before = vec![
        "aws:eks-cluster/ml".to_string(),
        "aws:oidc-provider/arn:oidc".to_string(),
        "aws:eks-nodegroup/gpu".to_string(),
    ];
    let (e, partial) = p
        .converge_cluster(
            &spec(vec![gpu_pool()], quick(Duration::from_millis(300))),
            &before,
            &mut diags,
        )
        .await
        .expect_err("no GPUs");
    let e = e.to_string();
    assert!(e.contains("GPU nodes are not schedulable"), "{e}");
    assert!(
        e.contains("1 node(s) joined, 0 advertise nvidia.com/gpu (wanted 1)"),
        "{e}"
    );
    assert!(e.contains("AL2023_x86_64_NVIDIA"), "{e}");
    assert!(partial
        .unwrap()
        .objects
        .unwrap()
        .iter()
        .any(|o| o.contains("DaemonSet")));
}

#[tokio::test]
async fn refresh_of_a_deleted_cluster_says_it_is_gone() {
    let describe = mock!(aws_sdk_eks::Client::describe_cluster)
        .then_error(|| DescribeClusterError::ResourceNotFoundException(eks_not_found()));
    let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe]);
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, []);
    let p = platform(eks, iam, None);
    let mut diags = tfplugin::Diagnostics::default();
    let e = p
        .observe_cluster(&spec(vec![], Timeouts::default()), &mut diags)
        .await
        .expect_err("gone");
    assert!(
        matches!(e, modelplane_provider::platforms::PlatformError::Gone(_)),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Through Terraform, against moto

use crate::kubernetes::{fake_api_server, fake_api_server_with, FakeApiServer};

fn provider(l: &Local, moto: &emulators::Emulator, kube: &FakeApiServer) -> String {
    format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {:?}
  }}
  aws {{
    region                  = "us-east-1"
    profile                 = {:?}
    endpoint_url            = {:?}
    kubernetes_endpoint_url = {:?}
  }}
}}
"#,
        l.path().display().to_string(),
        emulators::AWS_PROFILE,
        moto.url(),
        kube.url
    )
}

fn cluster_config(pools: &str) -> String {
    format!(
        r#"
resource "modelplane_gpu_cluster" "eks" {{
  name     = "ml-moto"
  platform = "aws"
  aws {{
    kubernetes_version = "1.33"
    subnet_ids         = ["subnet-0a", "subnet-0b"]
  }}
  node_pool {{
    name          = "gpu"
    purpose       = "inference"
    instance_type = "g5.xlarge"
    gpu_count     = 1
    min_size      = 1
    max_size      = 3
    desired_size  = 1
  }}
{pools}
  partition {{
    purpose = "inference"
    gpus    = 4
  }}
  timeouts {{
    create = "2m"
  }}
}}
"#
    )
}

const SYSTEM_POOL: &str = r#"  node_pool {
    name          = "system"
    purpose       = "dev"
    instance_type = "m7i.large"
    min_size      = 1
    max_size      = 2
    labels        = { team = "platform" }
  }
"#;

/// A client of an AWS SDK crate talking to moto.
macro_rules! moto_client {
    ($sdk:ident, $moto:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .region($sdk::config::Region::new("us-east-1"))
                .endpoint_url($moto.url())
                .credentials_provider($sdk::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .build(),
        )
    };
}

fn eks_client(moto: &emulators::Emulator) -> aws_sdk_eks::Client {
    moto_client!(aws_sdk_eks, moto)
}

#[test]
fn aws_cluster_lifecycle_on_moto() {
    let Some(moto) = emulators::moto("aws_cluster_lifecycle_on_moto") else {
        return;
    };
    let kube = fake_api_server(vec![eks_node("ip-10-0-1-1", "gpu", 1)]);
    let l = Local::new("aws-moto");
    let p = provider(&l, &moto, &kube);
    let one = format!("{p}{}", cluster_config(""));
    let two = format!("{p}{}", cluster_config(SYSTEM_POOL));
    let eks = eks_client(&moto);
    let eks2 = eks.clone();
    let eks3 = eks.clone();
    acc(
        "aws_cluster_lifecycle_on_moto",
        TestCase {
            steps: vec![
                // Create: roles, cluster, OIDC provider, the GPU node group, device plugin,
                // partition; then the harness's empty plan.
                Step::new(one.clone())
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "id",
                        "aws/ml-moto",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.0.name",
                        "gpu",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.0.ami_type",
                        "AL2023_x86_64_NVIDIA",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.0.capacity_type",
                        "ON_DEMAND",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.0.taints.0.key",
                        "nvidia.com/gpu",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "device_plugin_version",
                        "v0.17.4",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "partition.0.namespace",
                        "ml-moto-inference",
                    ))
                    .check(std::sync::Arc::new(|s: &tfplugin::acctest::Shown| {
                        let objects = s
                            .attr("modelplane_gpu_cluster.eks", "objects")
                            .ok_or("no objects")?;
                        let objects: Vec<String> =
                            serde_json::from_value(objects).map_err(|e| e.to_string())?;
                        for want in [
                            "aws:iam-role/ml-moto-eks-cluster",
                            "aws:eks-cluster/ml-moto",
                            "aws:iam-role/ml-moto-eks-node",
                            "aws:eks-nodegroup/gpu",
                            "apps/v1/DaemonSet/kube-system/nvidia-device-plugin",
                            "v1/Namespace/ml-moto-inference",
                        ] {
                            if !objects.iter().any(|o| o == want) {
                                return Err(format!("{want} not recorded in {objects:?}"));
                            }
                        }
                        if !objects.iter().any(|o| o.starts_with("aws:oidc-provider/")) {
                            return Err(format!("no OIDC provider in {objects:?}"));
                        }
                        let labels = s
                            .attr("modelplane_gpu_cluster.eks", "node_groups.0.labels")
                            .ok_or("no labels")?;
                        if labels["nvidia.com/gpu.present"] != "true"
                            || labels["modelplane.io/purpose"] != "inference"
                        {
                            return Err(format!("GPU pool labels: {labels}"));
                        }
                        let kc = s
                            .attr("modelplane_gpu_cluster.eks", "kubeconfig")
                            .ok_or("no kubeconfig")?;
                        if !kc
                            .as_str()
                            .is_some_and(|k| k.contains("get-token") && !k.contains("k8s-aws-v1"))
                        {
                            return Err(format!("kubeconfig: {kc}"));
                        }
                        Ok(())
                    }) as tfplugin::acctest::Check),
                // A second pool: one more node group, the first untouched.
                Step::new(two.clone())
                    .plan_check(plan_action("modelplane_gpu_cluster.eks", "update"))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.1.name",
                        "system",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.1.ami_type",
                        "AL2023_x86_64_STANDARD",
                    ))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.1.labels.team",
                        "platform",
                    )),
                // The system node group deleted behind Terraform's back: refresh drops the pool,
                // the plan puts it back.
                Step::new(two.clone())
                    .pre(move |_| {
                        block_on(
                            eks2.delete_nodegroup()
                                .cluster_name("ml-moto")
                                .nodegroup_name("system")
                                .send(),
                        )
                        .unwrap();
                    })
                    .plan_check(plan_action("modelplane_gpu_cluster.eks", "update"))
                    .check(attr_equals(
                        "modelplane_gpu_cluster.eks",
                        "node_groups.1.name",
                        "system",
                    )),
                // The pool removed from the configuration: its node group is deleted.
                Step::new(one.clone()).check(std::sync::Arc::new(
                    move |_s: &tfplugin::acctest::Shown| {
                        let groups =
                            block_on(eks3.list_nodegroups().cluster_name("ml-moto").send())
                                .map_err(|e| e.to_string())?;
                        if groups.nodegroups() != ["gpu"] {
                            return Err(format!("node groups left: {:?}", groups.nodegroups()));
                        }
                        Ok(())
                    },
                ) as tfplugin::acctest::Check),
                // Import by aws/NAME gives the same cluster, its node groups as pools.
                Step::new(one.clone()).import(ImportStep {
                    address: "modelplane_gpu_cluster.eks".into(),
                    id: Some("aws/ml-moto".into()),
                    id_from: None,
                    ignore: vec![
                        "aws".into(),
                        "timeouts".into(),
                        "objects".into(),
                        "node_pool".into(),
                        "partition".into(),
                        "nodes".into(),
                        "cpus".into(),
                        "memory_bytes".into(),
                    ],
                }),
            ],
            // Destroy in order: moto refuses to delete a cluster that still has node groups.
            check_destroy: Some(std::sync::Arc::new(move |_s: &tfplugin::acctest::Shown| {
                match block_on(eks.describe_cluster().name("ml-moto").send()) {
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("the cluster is still there: {other:?}")),
                }
            }) as tfplugin::acctest::Check),
            ..Default::default()
        },
    );
}

#[test]
fn aws_bad_input_is_refused_at_plan() {
    let l = Local::new("aws-bad");
    let p = format!("provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n  aws {{\n    region = \"us-east-1\"\n  }}\n}}\n", l.path().display().to_string());
    let bad = |body: &str, why: &str| {
        Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"aws\"\n{body}\n}}\n")).expect_error(why)
    };
    let subnets = "  aws {\n    subnet_ids = [\"subnet-a\", \"subnet-b\"]\n  }\n";
    // ECR: the name is checked, the ECR login cannot be mixed with a password, and a bare
    // name needs `ecr`.
    let image = |repository: &str, extra: &str| {
        Step::new(format!("{p}\nresource \"modelplane_serving_image\" \"i\" {{\n  source = \"/nonexistent\"\n  repository = {repository:?}\n  {extra}\n  ecr {{}}\n}}\n"))
    };
    // An endpoint's aws block: only on aws, with a role ARN.
    let endpoint = |cluster: &str, role: &str| {
        Step::new(format!("{p}\nresource \"modelplane_endpoint\" \"e\" {{\n  name = \"e\"\n  cluster = {cluster:?}\n  image = \"registry.example/serve@sha256:00\"\n  variant {{\n    name = \"a\"\n    model = \"s3/b/m/1\"\n    weight = 100\n  }}\n  aws {{\n    role_arn = {role:?}\n  }}\n}}\n"))
    };
    acc(
        "aws_bad_input_is_refused_at_plan",
        TestCase {
            steps: vec![
                bad("", "needs aws.subnet_ids"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n  }}"), "needs instance_type"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_type = \"q9.huge\"\n  }}"), "cannot tell which AMI"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_type = \"g4ad.xlarge\"\n  }}"), "AMD GPUs"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_types = [\"g5.xlarge\", \"m7i.large\"]\n  }}"), "separate node pools"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_type = \"m7i.large\"\n    gpu_count = 1\n  }}"), "has no NVIDIA GPUs"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_type = \"g5.xlarge\"\n    min_size = 1\n    max_size = 2\n    desired_size = 5\n  }}"), "desired_size \\(5\\) must be between"),
                bad(&format!("{subnets}  node_pool {{\n    name = \"a\"\n    purpose = \"inference\"\n    instance_type = \"g5.xlarge\"\n    gpu_sharing {{\n      replicas = 1\n    }}\n  }}"), "Invalid GPU sharing"),
                bad(&format!("{subnets}  timeouts {{\n    create = \"soon\"\n  }}"), "Invalid timeout"),
                bad("  aws {\n    subnet_ids = [\"subnet-a\"]\n    kubernetes_version = \"v1.33\"\n  }", "Invalid Kubernetes version"),
                Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"l\" {{\n  name = \"here\"\n  platform = \"local\"\n{subnets}}}\n")).expect_error("aws block describes an EKS cluster"),
                endpoint("kubernetes/gpu", "arn:aws:iam::111122223333:role/r")
                    .expect_error("aws block \\(the IRSA role of the server\\) applies to endpoints on aws"),
                endpoint("aws/gpu", "role/r").expect_error("Invalid role ARN(.|\\n)*arn:aws:iam::ACCOUNT:role/NAME"),
                image("Ml/Serve", "").expect_error("Invalid ECR repository name(.|\\n)*lower-case"),
                image("ml/serve", "username = \"AWS\"").expect_error("Conflicting registry login(.|\\n)*GetAuthorizationToken"),
                image("ml/serve", "").expect_error("Invalid image source"),
                Step::new(format!("{p}\nresource \"modelplane_serving_image\" \"i\" {{\n  source = \"/nonexistent\"\n  repository = \"ml/serve\"\n}}\n")).expect_error("does not start with a registry host"),
            ],
            ..Default::default()
        },
    );
}

/// The lifecycle against real EKS, when `MODELPLANE_ACC_AWS_REGION` names a region and
/// `MODELPLANE_ACC_AWS_SUBNETS` two subnets (comma-separated) in it. It creates an EKS
/// cluster (USD 0.10 an hour) and a one-node `g5.xlarge` group (about USD 1.01 an hour on
/// demand in us-east-1), waits for the GPU to be allocatable, and destroys them: about 40
/// minutes, about USD 1 in all.
#[test]
fn aws_cluster_on_real_eks() {
    let (Some(region), Some(subnets)) = (
        std::env::var_os("MODELPLANE_ACC_AWS_REGION"),
        std::env::var_os("MODELPLANE_ACC_AWS_SUBNETS"),
    ) else {
        crate::common::skipped("aws_cluster_on_real_eks", crate::common::Skip::OptIn, "set MODELPLANE_ACC_AWS_REGION and MODELPLANE_ACC_AWS_SUBNETS to run it against real EKS (it costs about USD 1)");
        return;
    };
    let region = region.to_string_lossy().to_string();
    let subnets: Vec<String> = subnets
        .to_string_lossy()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let l = Local::new("aws-real");
    let config = format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {:?}
  }}
  aws {{
    region = {region:?}
  }}
}}

resource "modelplane_gpu_cluster" "eks" {{
  name     = "modelplane-acc"
  platform = "aws"
  aws {{
    subnet_ids = {subnets:?}
  }}
  node_pool {{
    name          = "gpu"
    purpose       = "inference"
    instance_type = "g5.xlarge"
    min_size      = 1
    max_size      = 1
  }}
  partition {{
    purpose = "inference"
    gpus    = 1
  }}
}}
"#,
        l.path().display().to_string()
    );
    acc(
        "aws_cluster_on_real_eks",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "modelplane_gpu_cluster.eks",
                    "node_groups.0.status",
                    "ACTIVE",
                ))
                .check(attr_equals("modelplane_gpu_cluster.eks", "nodes.0.gpus", 1))],
            ..Default::default()
        },
    );
}

/// `blueprints/aws/examples/gpu-inference` against real AWS, when `MODELPLANE_ACC_AWS_REGION`
/// and `MODELPLANE_ACC_AWS_SUBNETS` are set (and `MODELPLANE_ACC_AWS_BUCKET` names a new S3
/// bucket; default `modelplane-acc-<pid>`): the EKS cluster with its g5.xlarge and m7i.large
/// node groups, the image pushed to ECR, iris served by two replicas that read S3 through
/// their IRSA role, then everything destroyed. About 50 minutes and USD 1.30 (EKS USD 0.10/h,
/// g5.xlarge USD 1.01/h, m7i.large USD 0.10/h in us-east-1, on demand).
#[test]
fn blueprint_aws_example_on_real_aws() {
    let (Some(region), Some(subnets)) = (
        std::env::var("MODELPLANE_ACC_AWS_REGION").ok(),
        std::env::var("MODELPLANE_ACC_AWS_SUBNETS").ok(),
    ) else {
        crate::common::skipped("blueprint_aws_example_on_real_aws", crate::common::Skip::OptIn, "set MODELPLANE_ACC_AWS_REGION and MODELPLANE_ACC_AWS_SUBNETS to run it against real AWS (it costs about USD 1.30)");
        return;
    };
    let subnets: Vec<String> = subnets.split(',').map(|s| s.trim().to_string()).collect();
    let bucket = std::env::var("MODELPLANE_ACC_AWS_BUCKET")
        .unwrap_or_else(|_| format!("modelplane-acc-{}", std::process::id()));
    let config = format!(
        "module \"ex\" {{\n  source       = {:?}\n  region       = {region:?}\n  subnet_ids   = {subnets:?}\n  bucket       = {bucket:?}\n  image_source = {:?}\n}}\n",
        crate::common::relative_source("blueprints/aws/examples/gpu-inference"),
        containers::image_layout().display().to_string(),
    );
    const EP: &str = "module.ex.module.eks.module.endpoint[\"iris\"].modelplane_endpoint.this";
    acc(
        "blueprint_aws_example_on_real_aws",
        TestCase {
            steps: vec![Step::new(config)
                .check(std::sync::Arc::new(|s: &tfplugin::acctest::Shown| {
                    let nodes = s
                        .attr("module.ex.module.eks.modelplane_gpu_cluster.this", "nodes")
                        .ok_or("no nodes")?;
                    let gpus: i64 = nodes
                        .as_array()
                        .map(|n| n.iter().filter_map(|n| n["gpus"].as_i64()).sum())
                        .unwrap_or(0);
                    if gpus < 1 {
                        return Err(format!("no allocatable GPU among the nodes: {nodes}"));
                    }
                    Ok(())
                }) as tfplugin::acctest::Check)
                .check(attr_equals(EP, "status", "running"))],
            ..Default::default()
        },
    );
}

fn ecr_client(moto: &emulators::Emulator) -> aws_sdk_ecr::Client {
    moto_client!(aws_sdk_ecr, moto)
}

fn ecr_lifecycle_count(ecr: &aws_sdk_ecr::Client) -> Result<u64, String> {
    let p = block_on(
        ecr.get_lifecycle_policy()
            .repository_name("ml/modelplane-serve")
            .send(),
    )
    .map_err(|e| format!("{}", aws_sdk_ecr::error::DisplayErrorContext(e)))?;
    let doc: serde_json::Value = serde_json::from_str(p.lifecycle_policy_text().unwrap_or("{}"))
        .map_err(|e| e.to_string())?;
    doc["rules"][1]["selection"]["countNumber"]
        .as_u64()
        .ok_or(format!("lifecycle policy: {doc}"))
}

/// `modelplane_serving_image` with `ecr`: the repository is made on moto's ECR (immutable
/// tags, scan on push, lifecycle policy) and the image goes to a real registry with the login
/// `GetAuthorizationToken` gives (`AWS` and moto's token, which the registry's htpasswd
/// holds): the ECR-style basic login end to end. Refresh logs in again to check the image;
/// a repository deleted behind Terraform's back is created again.
#[test]
fn ecr_repository_and_push_with_the_ecr_login() {
    const TEST: &str = "ecr_repository_and_push_with_the_ecr_login";
    let Some(moto) = emulators::moto(TEST) else {
        return;
    };
    let Some(reg) = containers::registry(TEST, Some(("AWS", "123456789012-auth-token"))) else {
        return;
    };
    let l = Local::new("aws-ecr");
    let p = format!(
        "provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n  aws {{\n    region       = \"us-east-1\"\n    profile      = {:?}\n    endpoint_url = {:?}\n  }}\n}}\n",
        l.path().display().to_string(),
        emulators::AWS_PROFILE,
        moto.url()
    );
    let image = |keep: u32| {
        format!(
            "{p}\nresource \"modelplane_serving_image\" \"serve\" {{\n  source     = {:?}\n  repository = \"{}/ml/modelplane-serve\"\n  tag        = \"ecr-test\"\n  insecure   = true\n  ecr {{\n    keep_images  = {keep}\n    force_delete = true\n  }}\n}}\n",
            containers::image_layout().display().to_string(),
            reg.host()
        )
    };
    let ecr = ecr_client(&moto);
    let (e1, e2, e3, e4) = (ecr.clone(), ecr.clone(), ecr.clone(), ecr.clone());
    let host = reg.host();
    acc(
        TEST,
        TestCase {
            steps: vec![
                Step::new(image(5))
                    .check(attr_equals(
                        "modelplane_serving_image.serve",
                        "repository_arn",
                        "arn:aws:ecr:us-east-1:123456789012:repository/ml/modelplane-serve",
                    ))
                    .check(std::sync::Arc::new(move |s: &tfplugin::acctest::Shown| {
                        let r = s
                            .attr("modelplane_serving_image.serve", "reference")
                            .and_then(|v| v.as_str().map(String::from))
                            .ok_or("no reference")?;
                        if !r.starts_with(&format!("{host}/ml/modelplane-serve@sha256:")) {
                            return Err(format!("reference {r}"));
                        }
                        let repos = block_on(
                            e1.describe_repositories()
                                .repository_names("ml/modelplane-serve")
                                .send(),
                        )
                        .map_err(|e| e.to_string())?;
                        let repo = &repos.repositories()[0];
                        if repo.image_tag_mutability()
                            != Some(&aws_sdk_ecr::types::ImageTagMutability::Immutable)
                        {
                            return Err(format!("tags are not immutable: {repo:?}"));
                        }
                        if !repo
                            .image_scanning_configuration()
                            .is_some_and(|c| c.scan_on_push())
                        {
                            return Err(format!("no scan on push: {repo:?}"));
                        }
                        match ecr_lifecycle_count(&e1)? {
                            5 => Ok(()),
                            n => Err(format!("lifecycle keeps {n} images, not 5")),
                        }
                    }) as tfplugin::acctest::Check),
                // A lifecycle change is an in-place update.
                Step::new(image(8))
                    .plan_check(plan_action("modelplane_serving_image.serve", "update"))
                    .check(std::sync::Arc::new(move |_s: &tfplugin::acctest::Shown| {
                        match ecr_lifecycle_count(&e2)? {
                            8 => Ok(()),
                            n => Err(format!("lifecycle keeps {n} images, not 8")),
                        }
                    }) as tfplugin::acctest::Check),
                // The repository deleted behind Terraform's back: refresh sees it gone and the
                // apply makes it again.
                Step::new(image(8))
                    .pre(move |_| {
                        block_on(
                            e3.delete_repository()
                                .repository_name("ml/modelplane-serve")
                                .force(true)
                                .send(),
                        )
                        .unwrap();
                    })
                    .plan_check(plan_action("modelplane_serving_image.serve", "create"))
                    .check(std::sync::Arc::new(move |_s: &tfplugin::acctest::Shown| {
                        ecr_lifecycle_count(&e4).map(|_| ())
                    }) as tfplugin::acctest::Check),
            ],
            // force_delete: destroy deletes the repository.
            check_destroy: Some(std::sync::Arc::new(move |_s: &tfplugin::acctest::Shown| {
                match block_on(
                    ecr.describe_repositories()
                        .repository_names("ml/modelplane-serve")
                        .send(),
                ) {
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_repository_not_found_exception()) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("the repository is still there: {other:?}")),
                }
            }) as tfplugin::acctest::Check),
            ..Default::default()
        },
    );
    drop(reg);
}

/// An endpoint on an `aws` cluster whose models are in an `s3` store gets its own IRSA role:
/// trusted by the cluster's OIDC provider for its ServiceAccount only, allowed to read the
/// store's prefix only, annotated on the ServiceAccount, recorded in `objects`, and deleted
/// with the endpoint. (The mocks answer only requests with the expected policies.)
#[tokio::test]
async fn an_endpoint_reading_s3_gets_its_own_irsa_role() {
    use aws_sdk_iam::operation::{
        create_role::CreateRoleOutput, delete_role::DeleteRoleOutput,
        delete_role_policy::DeleteRolePolicyOutput, get_role::GetRoleError,
        list_attached_role_policies::ListAttachedRolePoliciesOutput,
        put_role_policy::PutRolePolicyOutput,
    };
    use k8s_openapi::api::core::v1::ServiceAccount;
    use modelplane_provider::platforms::rollout;
    use modelplane_provider::platforms::EndpointSpec;
    use modelplane_serve::config::{EndpointConfig, ModelConfig, ServeConfig, VariantConfig};

    let writes = crate::kubernetes::Writes::default();
    let c = crate::kubernetes::client_recording(
        kube_fake_client::ClientBuilder::new(),
        Some(writes.clone()),
    )
    .await;
    crate::kubernetes::apply_partitions(&c, &[crate::kubernetes::partition("inference", 2)], &[])
        .await;
    // A Deployment whose image is `…/broken@…` never rolls out: an update to it is rolled back.
    let _ctl = crate::kubernetes::controller_unless(c.clone(), |d| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .is_some_and(|p| {
                p.containers
                    .iter()
                    .any(|c| c.image.as_deref().is_some_and(|i| i.contains("/broken@")))
            })
    });
    const ROLE: &str = "gpu-iris-s3-serve";
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(|| {
        DescribeClusterOutput::builder()
            .cluster(
                eks::Cluster::builder()
                    .name("gpu")
                    .arn("arn:aws:eks:eu-west-1:111122223333:cluster/gpu")
                    .identity(
                        eks::Identity::builder()
                            .oidc(
                                eks::Oidc::builder()
                                    .issuer("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(
            aws_sdk_iam::types::error::NoSuchEntityException::builder().build(),
        )
    });
    let create = mock!(aws_sdk_iam::Client::create_role)
        .match_requests(|r| {
            let trust = r.assume_role_policy_document().unwrap_or("");
            r.role_name() == Some(ROLE)
                && trust.contains(
                    "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123",
                )
                && trust.contains("system:serviceaccount:gpu-inference:iris-s3")
        })
        .then_output(|| CreateRoleOutput::builder().role(role(ROLE)).build());
    let put = mock!(aws_sdk_iam::Client::put_role_policy)
        .match_requests(|r| {
            r.role_name() == Some(ROLE)
                && r.policy_document().is_some_and(|d| {
                    d.contains("arn:aws:s3:::models/team-a/*") && !d.contains("s3:PutObject")
                })
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let delete_policy = mock!(aws_sdk_iam::Client::delete_role_policy)
        .match_requests(|r| r.role_name() == Some(ROLE))
        .then_output(|| DeleteRolePolicyOutput::builder().build());
    let attached = mock!(aws_sdk_iam::Client::list_attached_role_policies)
        .then_output(|| ListAttachedRolePoliciesOutput::builder().build());
    let delete_role = mock!(aws_sdk_iam::Client::delete_role)
        .match_requests(|r| r.role_name() == Some(ROLE))
        .then_output(|| DeleteRoleOutput::builder().build());
    let eks_client = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe]);
    let iam = mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [
            &get_role,
            &create,
            &put,
            &delete_policy,
            &attached,
            &delete_role
        ]
    );
    let mut aws = platform(eks_client, iam, Some(c.clone()));
    aws.cluster = ClusterId::new(PlatformKind::Aws, "gpu");
    aws.kube.cluster = aws.cluster.clone();

    let spec = EndpointSpec {
        name: "iris-s3".into(),
        serve: ServeConfig {
            repository: "s3://models/team-a?region=eu-west-1".into(),
            models: vec![ModelConfig::named("iris", Some("1".to_string()))],
            endpoints: vec![EndpointConfig {
                name: "iris-s3".into(),
                variants: vec![VariantConfig {
                    name: "a".into(),
                    model: "iris".into(),
                    version: Some("1".into()),
                    weight: 100,
                    remote: None,
                }],
                shadow: None,
                sticky_header: None,
            }],
            ..serde_json::from_value(json!({"repository": ""})).unwrap()
        },
        token: "irsa-token-0123456789".into(),
        port: None,
        grpc_port: None,
        image: Some("registry.example/modelplane-serve@sha256:0123".into()),
        container: None,
        kubernetes: Some(
            modelplane_provider::platforms::kubernetes::workload::Settings {
                rollout_timeout: Some("10s".into()),
                ..Default::default()
            },
        ),
        aws: None,
        azure: None,
        record: json!({}),
        remote_tokens: Default::default(),
    };
    let mut ctx = tfplugin::Ctx::detached();
    let (d, _) = rollout::apply(&aws, &spec, None, None, &mut ctx)
        .await
        .unwrap_or_else(|e| panic!("deploy: {e:?}"));
    assert_eq!((create.num_calls(), put.num_calls()), (1, 1));
    let objects = d.objects.clone().unwrap_or_default();
    assert!(
        objects.contains(&format!("aws:iam-role/{ROLE}")),
        "the role is recorded: {objects:?}"
    );
    let sa = Api::<ServiceAccount>::namespaced(c.clone(), "gpu-inference")
        .get("iris-s3")
        .await
        .unwrap();
    let arn = format!("arn:aws:iam::111122223333:role/{ROLE}");
    assert_eq!(
        sa.metadata.annotations.unwrap_or_default()["eks.amazonaws.com/role-arn"],
        arn
    );

    // An update that does not roll out is rolled back, and the server keeps its role.
    let mut broken = spec.clone();
    broken.image = Some("registry.example/broken@sha256:0123".into());
    broken.kubernetes.as_mut().unwrap().rollout_timeout = Some("2s".into());
    let previous = modelplane_provider::platforms::Previous {
        spec: Some(spec.clone()),
        deployment: d.clone(),
        serving: true,
    };
    writes.lock().unwrap().clear();
    let failed = rollout::apply(&aws, &broken, Some(&previous), None, &mut ctx)
        .await
        .expect_err("the broken image must not roll out");
    assert!(failed.restored.is_ok(), "rolled back: {failed:?}");
    // The rollback's apply of the ServiceAccount is the last one; a real API server drops an
    // annotation an apply leaves out, so it must carry the role.
    let applied: Vec<serde_json::Value> = writes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, path, _)| path.ends_with("/serviceaccounts/iris-s3"))
        .map(|(_, _, body)| body.clone())
        .collect();
    assert_eq!(applied.len(), 2, "the update's apply and the rollback's");
    assert_eq!(
        applied[1]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        json!(arn),
        "the rolled-back server keeps its IAM role: {}",
        applied[1]
    );
    assert_eq!(delete_role.num_calls(), 0, "a kept role is not deleted");

    aws.remove_endpoint("iris-s3", &d).await.unwrap();
    assert_eq!(
        (delete_policy.num_calls(), delete_role.num_calls()),
        (1, 1),
        "the role is deleted with the endpoint"
    );
}

/// `blueprints/aws/examples/gpu-inference`, applied through real Terraform against moto (EKS,
/// IAM, ECR, S3) and a Kubernetes API that plays the cluster (a GPU node in the `gpu` node
/// group, Deployments rolled out): the cluster, its node groups, the device plugin and the
/// partitions, the ECR repository and the image in it (pushed to a real registry with the
/// ECR login), the S3 store, iris's endpoint with its IRSA role, and destroy in order.
#[test]
fn blueprint_aws_example_on_moto() {
    const TEST: &str = "blueprint_aws_example_on_moto";
    let Some(moto) = emulators::moto(TEST) else {
        return;
    };
    let Some(reg) = containers::registry(TEST, Some(("AWS", "123456789012-auth-token"))) else {
        return;
    };
    let kube = fake_api_server_with(vec![eks_node("ip-10-0-1-1", "gpu", 1)], true);
    let config = format!(
        "module \"ex\" {{\n  source                  = {:?}\n  profile                 = {:?}\n  subnet_ids              = [\"subnet-0a\", \"subnet-0b\"]\n  image_source            = {:?}\n  ecr_repository          = \"{}/modelplane-serve\"\n  registry_insecure       = true\n  aws_endpoint_url        = {:?}\n  kubernetes_endpoint_url = {:?}\n}}\n",
        crate::common::relative_source("blueprints/aws/examples/gpu-inference"),
        emulators::AWS_PROFILE,
        containers::image_layout().display().to_string(),
        reg.host(),
        moto.url(),
        kube.url,
    );
    const CLUSTER: &str = "module.ex.module.eks.modelplane_gpu_cluster.this";
    const IMAGE: &str = "module.ex.module.eks.modelplane_serving_image.this";
    const EP: &str = "module.ex.module.eks.module.endpoint[\"iris\"].modelplane_endpoint.this";
    let eks = eks_client(&moto);
    let ecr = ecr_client(&moto);
    acc(
        TEST,
        TestCase {
            steps: vec![Step::new(config)
                // What it costs is in the plan, from the shipped table: the control plane,
                // one g5.xlarge and one m7i.large at the desired sizes; the endpoint's
                // replicas at their share of a g5.xlarge. The state keeps the same figures
                // (the empty plans after apply show they survive refresh).
                .plan_check(std::sync::Arc::new(|s: &tfplugin::acctest::Shown| {
                    let price = |ty: &str| {
                        modelplane_provider::cost::builtin()
                            .iter()
                            .find(|r| r.region == "us-east-1" && r.instance_type == ty)
                            .map(|r| r.on_demand_hour)
                            .ok_or(format!("{ty} is not in the table"))
                    };
                    let want = ((0.10 + price("g5.xlarge")? + price("m7i.large")?) * 73000.0)
                        .round()
                        / 100.0;
                    let got = s
                        .planned(CLUSTER, "estimated_cost.monthly_desired")
                        .and_then(|v| v.as_f64());
                    if got.is_none_or(|g| (g - want).abs() > 0.011) {
                        return Err(format!("cluster monthly_desired {got:?}, want {want}"));
                    }
                    // 500m of 4 vCPUs is the largest share of a g5.xlarge: 1/8 of it.
                    let want = (price("g5.xlarge")? / 8.0 * 4.0 * 73000.0).round() / 100.0;
                    let got = s
                        .planned(EP, "estimated_cost.monthly_max")
                        .and_then(|v| v.as_f64());
                    if got.is_none_or(|g| (g - want).abs() > 0.011) {
                        return Err(format!("endpoint monthly_max {got:?}, want {want}"));
                    }
                    Ok(())
                }) as tfplugin::acctest::Check)
                .check(attr_equals(CLUSTER, "estimated_cost.basis", "list"))
                .check(attr_equals(EP, "estimated_cost.replicas_max", 4))
                .check(attr_equals(CLUSTER, "id", "aws/gpu"))
                .check(attr_equals(CLUSTER, "node_groups.0.name", "gpu"))
                .check(attr_equals(
                    CLUSTER,
                    "node_groups.0.ami_type",
                    "AL2023_x86_64_NVIDIA",
                ))
                .check(attr_equals(CLUSTER, "node_groups.1.name", "dev"))
                .check(attr_equals(
                    CLUSTER,
                    "partition.1.namespace",
                    "gpu-inference",
                ))
                .check(attr_equals(
                    IMAGE,
                    "repository_arn",
                    "arn:aws:ecr:us-east-1:123456789012:repository/modelplane-serve",
                ))
                .check(attr_equals(EP, "status", "running"))
                .check(std::sync::Arc::new(move |s: &tfplugin::acctest::Shown| {
                    let objects = s.attr(EP, "objects").ok_or("no objects")?;
                    let objects: Vec<String> =
                        serde_json::from_value(objects).map_err(|e| e.to_string())?;
                    if !objects.contains(&"aws:iam-role/gpu-iris-serve".to_string()) {
                        return Err(format!("no IRSA role recorded: {objects:?}"));
                    }
                    let image = s.attr(EP, "image").ok_or("no image")?;
                    let pushed = s.attr(IMAGE, "reference").ok_or("no reference")?;
                    if image != pushed {
                        return Err(format!("the endpoint runs {image}, not {pushed}"));
                    }
                    Ok(())
                }) as tfplugin::acctest::Check)],
            // Destroy in order: node groups before the cluster (moto refuses otherwise), the
            // ECR repository with force_destroy.
            check_destroy: Some(std::sync::Arc::new(move |_s: &tfplugin::acctest::Shown| {
                let cluster = block_on(eks.describe_cluster().name("gpu").send());
                if !matches!(&cluster, Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()))
                {
                    return Err(format!("the cluster is still there: {cluster:?}"));
                }
                let repo = block_on(
                    ecr.describe_repositories()
                        .repository_names("modelplane-serve")
                        .send(),
                );
                if !matches!(&repo, Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()))
                {
                    return Err(format!("the ECR repository is still there: {repo:?}"));
                }
                Ok(())
            }) as tfplugin::acctest::Check),
            ..Default::default()
        },
    );
    drop(reg);
}

/// The aws blueprint's variables refuse what cannot work, at plan, before anything is asked
/// of AWS.
#[test]
fn blueprint_aws_refuses_bad_variables() {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "blueprint_aws_refuses_bad_variables: skipped; acceptance tests run with TF_ACC=1"
        );
        return;
    }
    let (wd, _guard) = crate::common::harness()
        .workdir("blueprint-aws-bad")
        .unwrap_or_else(|e| panic!("{e}"));
    let bad = |vars: &str, want: &str| {
        crate::common::plan_refuses(
            &wd,
            &format!(
                "provider \"modelplane\" {{\n  aws {{\n    region = \"us-east-1\"\n  }}\n}}\nmodule \"bp\" {{\n  source       = {:?}\n  image_source = \"/nonexistent\"\n  store        = {{ bucket = \"models\" }}\n  partitions   = {{ inference = {{ gpus = 1 }} }}\n{vars}\n}}\n",
                crate::common::relative_source("blueprints/aws"),
            ),
            want,
        );
    };
    bad("  subnet_ids = [\"subnet-0a\"]", "at least two subnet ids");
    bad(
        "  subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  inference_pool = { min_size = 1, max_size = 2, desired_size = 5 }",
        "desired_size must be between min_size and max_size",
    );
    bad(
        "  subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  budget = { monthly = 100 }",
        "modelplane_gpu_cluster \"gpu\" is estimated at USD",
    );
    bad(
        "  subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  kubernetes_version = \"latest\"",
        "minor version",
    );
    bad(
        "  subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  ecr_repository = \"ML/Serve\"",
        "ECR repository name",
    );
}
