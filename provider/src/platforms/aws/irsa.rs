//! IRSA for endpoints on `aws`: the server reads its `s3` store with the IAM role annotated on
//! its ServiceAccount (`eks.amazonaws.com/role-arn`), so no key is written anywhere. The role
//! is the endpoint's `aws.role_arn`, or one the provider creates, trusted by the cluster's
//! OIDC provider for exactly this ServiceAccount and allowed to read exactly the store's
//! bucket and prefix. A created role is recorded in the endpoint's `objects` as
//! `aws:iam-role/NAME` and deleted with the endpoint.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use tfplugin::{AttributePath, Config, Diagnostics};

use super::eks::{self, iam_error};
use super::Clients;
use crate::platforms::PlatformError;

/// The annotation the EKS pod identity webhook reads.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The prefix of a created role in an endpoint's `objects`.
pub const ROLE_ENTRY: &str = "aws:iam-role/";
/// The inline policy of a created role.
const POLICY: &str = "modelplane-store-read";

/// The endpoint's `aws` block.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointSettings {
    pub role_arn: Option<String>,
    pub create_role: Option<bool>,
}

impl EndpointSettings {
    pub fn create_role(&self) -> bool {
        self.create_role.unwrap_or(true)
    }
}

/// Plan-time checks of the endpoint's `aws` block.
pub fn validate(config: &Config, diags: &mut Diagnostics) {
    let Some(b) = config.elements("aws").into_iter().next() else {
        return;
    };
    let at = || AttributePath::attr("aws").then_attr("role_arn");
    if let tfplugin::Attr::Known(arn) = b.get::<String>("role_arn", diags) {
        let ok = arn.starts_with("arn:aws")
            && arn.split(':').nth(2) == Some("iam")
            && arn
                .split(':')
                .nth(5)
                .is_some_and(|r| r.starts_with("role/") && r.len() > 5);
        if !ok {
            diags.error_at(
                at(),
                "Invalid role ARN",
                format!("{arn:?} is not an IAM role ARN; write arn:aws:iam::ACCOUNT:role/NAME."),
            );
        }
    }
}

/// Refuses the endpoint's `aws` block on a platform other than `aws`.
pub fn refuse_block(config: &Config, here: &str, diags: &mut Diagnostics) {
    crate::platforms::not_used_here(
        config,
        "aws",
        here,
        "the aws block (the IRSA role of the server) applies to endpoints on aws clusters; remove it.",
        diags,
    );
}

/// `s3://BUCKET[/PREFIX][?…]` → (bucket, prefix without a trailing `/`).
pub fn s3_location(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// `CLUSTER-ENDPOINT-serve`, within IAM's 64 characters (a longer one is cut and given a hash,
/// so that two endpoints never share a role).
pub fn role_name(cluster: &str, endpoint: &str) -> String {
    let full = format!("{cluster}-{endpoint}-serve");
    if full.len() <= 64 {
        return full;
    }
    let hash = hex::encode(&sha2::Sha256::digest(full.as_bytes())[..4]);
    let mut cut: String = full.chars().take(64 - 9).collect();
    cut.push('-');
    cut.push_str(&hash);
    cut
}

/// Who may take the role: the ServiceAccount `namespace/service_account` through the
/// cluster's OIDC provider.
pub fn trust_policy(
    provider_arn: &str,
    issuer: &str,
    namespace: &str,
    service_account: &str,
) -> String {
    let host = issuer.trim_start_matches("https://");
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    format!("{host}:sub"): format!("system:serviceaccount:{namespace}:{service_account}"),
                    format!("{host}:aud"): "sts.amazonaws.com"
                }
            }
        }]
    })
    .to_string()
}

/// Read of the store's prefix, and nothing else.
pub fn read_policy(partition: &str, bucket: &str, prefix: &str) -> String {
    let objects = if prefix.is_empty() {
        format!("arn:{partition}:s3:::{bucket}/*")
    } else {
        format!("arn:{partition}:s3:::{bucket}/{prefix}/*")
    };
    let mut list = serde_json::json!({
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": format!("arn:{partition}:s3:::{bucket}")
    });
    if !prefix.is_empty() {
        list["Condition"] =
            serde_json::json!({ "StringLike": { "s3:prefix": [prefix, format!("{prefix}/*")] } });
    }
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects },
            list
        ]
    })
    .to_string()
}

/// What the role is for.
pub struct RoleFor<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub service_account: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    /// The endpoint's state records the role already (an update).
    pub recorded: bool,
}

/// Creates the role (or, when the endpoint records it, sets its trust and policy again);
/// returns its ARN.
pub async fn ensure(c: &Clients, r: &RoleFor<'_>) -> Result<String, PlatformError> {
    let Some(cluster) = eks::describe(c, r.cluster).await? else {
        return Err(PlatformError::Failed(format!(
            "EKS cluster {} not found",
            r.cluster
        )));
    };
    let issuer = cluster
        .identity()
        .and_then(|i| i.oidc())
        .and_then(|o| o.issuer())
        .ok_or_else(|| {
            PlatformError::Failed(format!("EKS cluster {} has no OIDC issuer", r.cluster))
        })?;
    let account = cluster
        .arn()
        .and_then(|a| a.split(':').nth(4))
        .ok_or_else(|| PlatformError::Failed(format!("EKS cluster {} has no ARN", r.cluster)))?;
    let partition = eks::partition(&c.region);
    let provider_arn = format!(
        "arn:{partition}:iam::{account}:oidc-provider/{}",
        issuer.trim_start_matches("https://")
    );
    let trust = trust_policy(&provider_arn, issuer, r.namespace, r.service_account);
    let name = r.name;
    let arn = match c.iam.get_role().role_name(name).send().await {
        Ok(o) => {
            if !r.recorded {
                return Err(PlatformError::Refused {
                    attribute: Some(AttributePath::attr("aws")),
                    summary: "IAM role exists".into(),
                    message: format!("an IAM role named {name:?} exists and this endpoint did not create it; give its ARN in aws.role_arn to use it, or delete it"),
                });
            }
            c.iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(&trust)
                .send()
                .await
                .map_err(|e| iam_error(&format!("UpdateAssumeRolePolicy {name}"), e))?;
            o.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            let o = c
                .iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(&trust)
                .description("Created by Modelplane: an endpoint's server reads its model store")
                .tags(eks::managed_by()?)
                .send()
                .await
                .map_err(|e| iam_error(&format!("CreateRole {name}"), e))?;
            o.role().map(|r| r.arn().to_string()).unwrap_or_default()
        }
        Err(e) => return Err(iam_error(&format!("GetRole {name}"), e)),
    };
    c.iam
        .put_role_policy()
        .role_name(name)
        .policy_name(POLICY)
        .policy_document(read_policy(partition, r.bucket, r.prefix))
        .send()
        .await
        .map_err(|e| iam_error(&format!("PutRolePolicy {name}"), e))?;
    Ok(arn)
}

/// Deletes a created role: its inline policy, then the role; one already gone is not an
/// error.
pub async fn delete(c: &Clients, name: &str) -> Result<(), PlatformError> {
    match c
        .iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(POLICY)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) => {}
        Err(e) => return Err(iam_error(&format!("DeleteRolePolicy {name}"), e)),
    }
    eks::delete_role(c, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations() {
        assert_eq!(
            s3_location("s3://models?region=eu-west-1"),
            Some(("models".into(), "".into()))
        );
        assert_eq!(
            s3_location("s3://models/team-a/?region=x"),
            Some(("models".into(), "team-a".into()))
        );
        assert_eq!(s3_location("az://acct/c"), None);
        assert_eq!(s3_location("s3://"), None);
    }

    #[test]
    fn role_names_fit_iam() {
        assert_eq!(role_name("ml", "iris"), "ml-iris-serve");
        let long = role_name(&"c".repeat(40), &"e".repeat(40));
        assert_eq!(long.len(), 64);
        assert_ne!(long, role_name(&"c".repeat(40), &"e".repeat(41)));
    }

    #[test]
    fn policies_are_scoped() {
        let t: serde_json::Value = serde_json::from_str(&trust_policy(
            "arn:aws:iam::1:oidc-provider/oidc.eks.x/id/AB",
            "https://oidc.eks.x/id/AB",
            "ml-inference",
            "iris",
        ))
        .unwrap();
        let cond = &t["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(
            cond["oidc.eks.x/id/AB:sub"],
            "system:serviceaccount:ml-inference:iris"
        );
        assert_eq!(cond["oidc.eks.x/id/AB:aud"], "sts.amazonaws.com");
        let p: serde_json::Value =
            serde_json::from_str(&read_policy("aws", "models", "team-a")).unwrap();
        assert_eq!(
            p["Statement"][0]["Resource"],
            "arn:aws:s3:::models/team-a/*"
        );
        assert_eq!(
            p["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0],
            "team-a"
        );
        let whole: serde_json::Value =
            serde_json::from_str(&read_policy("aws", "models", "")).unwrap();
        assert!(whole["Statement"][1].get("Condition").is_none());
    }
}
