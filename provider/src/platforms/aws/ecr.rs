//! ECR for `modelplane_serving_image`: the repository (immutable tags, scan on push, a
//! lifecycle policy) and the registry login from `GetAuthorizationToken` (basic auth as `AWS`
//! with a 12-hour token). The push itself is the registry code every registry uses.

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use base64::Engine as _;

/// What the `ecr` block asks of the repository.
#[derive(Clone, Debug, PartialEq)]
pub struct RepositorySpec {
    pub name: String,
    pub scan_on_push: bool,
    /// The lifecycle policy keeps this many images, newest first.
    pub keep_images: u32,
    /// Untagged images are expired this many days after their push.
    pub untagged_days: u32,
}

/// A repository as ECR reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Repository {
    pub arn: String,
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`.
    pub uri: String,
    pub registry_id: String,
}

fn ecr_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    what: &str,
    e: aws_sdk_ecr::error::SdkError<E, R>,
) -> String {
    format!("{what}: {}", aws_sdk_ecr::error::DisplayErrorContext(e))
}

fn repository_of(r: &aws_sdk_ecr::types::Repository) -> Result<Repository, String> {
    match (r.repository_arn(), r.repository_uri(), r.registry_id()) {
        (Some(arn), Some(uri), Some(id)) => Ok(Repository {
            arn: arn.into(),
            uri: uri.into(),
            registry_id: id.into(),
        }),
        _ => Err(format!(
            "ECR returned repository {:?} without its ARN, URI or registry id",
            r.repository_name()
        )),
    }
}

/// The lifecycle policy document: untagged images expire after `untagged_days`; of all
/// images, the newest `keep_images` stay. ECR wants the `any` rule last.
pub fn lifecycle_policy(spec: &RepositorySpec) -> String {
    serde_json::json!({
        "rules": [
            {
                "rulePriority": 1,
                "description": format!("expire untagged images {} days after their push", spec.untagged_days),
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": spec.untagged_days
                },
                "action": { "type": "expire" }
            },
            {
                "rulePriority": 2,
                "description": format!("keep the newest {} images", spec.keep_images),
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": spec.keep_images
                },
                "action": { "type": "expire" }
            }
        ]
    })
    .to_string()
}

/// The repository of that name, or `None`.
pub async fn describe(c: &aws_sdk_ecr::Client, name: &str) -> Result<Option<Repository>, String> {
    match c
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(o) => o.repositories().first().map(repository_of).transpose(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ecr_error(&format!("DescribeRepositories {name}"), e)),
    }
}

/// Creates the repository, or takes the one of that name, and sets its tag immutability,
/// scanning and lifecycle policy to the spec.
pub async fn ensure(c: &aws_sdk_ecr::Client, spec: &RepositorySpec) -> Result<Repository, String> {
    let scanning = ImageScanningConfiguration::builder()
        .scan_on_push(spec.scan_on_push)
        .build();
    let repo = match c
        .create_repository()
        .repository_name(&spec.name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(scanning.clone())
        .send()
        .await
    {
        Ok(o) => match o.repository() {
            Some(r) => repository_of(r)?,
            None => {
                return Err(format!(
                    "CreateRepository {}: no repository in the answer",
                    spec.name
                ))
            }
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_already_exists_exception()) =>
        {
            let Some(r) = describe(c, &spec.name).await? else {
                return Err(format!(
                    "ECR repository {} exists and then does not; apply again",
                    spec.name
                ));
            };
            c.put_image_tag_mutability()
                .repository_name(&spec.name)
                .image_tag_mutability(ImageTagMutability::Immutable)
                .send()
                .await
                .map_err(|e| ecr_error(&format!("PutImageTagMutability {}", spec.name), e))?;
            c.put_image_scanning_configuration()
                .repository_name(&spec.name)
                .image_scanning_configuration(scanning)
                .send()
                .await
                .map_err(|e| {
                    ecr_error(&format!("PutImageScanningConfiguration {}", spec.name), e)
                })?;
            r
        }
        Err(e) => return Err(ecr_error(&format!("CreateRepository {}", spec.name), e)),
    };
    c.put_lifecycle_policy()
        .repository_name(&spec.name)
        .lifecycle_policy_text(lifecycle_policy(spec))
        .send()
        .await
        .map_err(|e| ecr_error(&format!("PutLifecyclePolicy {}", spec.name), e))?;
    Ok(repo)
}

/// The registry login: `GetAuthorizationToken` gives `base64("AWS:PASSWORD")`, valid 12
/// hours, for basic auth.
pub async fn login(c: &aws_sdk_ecr::Client, registry_id: &str) -> Result<(String, String), String> {
    let out = c
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| ecr_error("GetAuthorizationToken", e))?;
    let Some(token) = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
    else {
        return Err(format!(
            "GetAuthorizationToken returned no token for registry {registry_id}"
        ));
    };
    decode_token(token)
}

/// `base64("USER:PASSWORD")` → (user, password).
pub fn decode_token(token: &str) -> Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|e| format!("the ECR authorization token is not base64: {e}"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| "the ECR authorization token is not text".to_string())?;
    match text.split_once(':') {
        Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok((u.into(), p.into())),
        _ => Err("the ECR authorization token is not USER:PASSWORD".into()),
    }
}

/// Deletes the repository and the images in it; one already gone is not an error.
pub async fn delete(c: &aws_sdk_ecr::Client, name: &str) -> Result<(), String> {
    match c
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(ecr_error(&format!("DeleteRepository {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_decodes_to_basic_login() {
        let t = base64::engine::general_purpose::STANDARD.encode("AWS:eyJwYXlsb2Fk:with:colons");
        assert_eq!(
            decode_token(&t).unwrap(),
            ("AWS".into(), "eyJwYXlsb2Fk:with:colons".into())
        );
        assert!(decode_token("not base64!")
            .unwrap_err()
            .contains("not base64"));
        let no_colon = base64::engine::general_purpose::STANDARD.encode("AWS");
        assert!(decode_token(&no_colon)
            .unwrap_err()
            .contains("USER:PASSWORD"));
    }

    #[test]
    fn lifecycle_policy_puts_the_any_rule_last() {
        let p: serde_json::Value = serde_json::from_str(&lifecycle_policy(&RepositorySpec {
            name: "x".into(),
            scan_on_push: true,
            keep_images: 30,
            untagged_days: 7,
        }))
        .unwrap();
        let rules = p["rules"].as_array().unwrap();
        assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(rules[0]["selection"]["countNumber"], 7);
        assert_eq!(rules[1]["selection"]["tagStatus"], "any");
        assert_eq!(rules[1]["selection"]["countNumber"], 30);
        assert!(rules[1]["rulePriority"].as_u64() > rules[0]["rulePriority"].as_u64());
    }
}
