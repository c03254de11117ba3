//! The `s3` and `s3_compatible` control plane through `aws-sdk-s3`: the bucket, versioning,
//! default encryption, public access block, lifecycle and tags.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectIdentifier,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use modelplane_serve::objects::{aws_sdk_config, Auth, Location};

use super::{Report, Settings, StoreError};

/// A client for the location's endpoint and region, with the AWS credential chain.
pub async fn client(loc: &Location, auth: &Auth) -> aws_sdk_s3::Client {
    let sdk = aws_sdk_config(loc.region.clone(), auth.aws_profile.clone()).await;
    let mut b = aws_sdk_s3::config::Builder::from(&sdk);
    if let Some(e) = &loc.endpoint {
        b = b.endpoint_url(e).force_path_style(loc.path_style);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// An SDK error in words: the service's code and message, else the whole error chain.
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => {
            let mut s = DisplayErrorContext(e).to_string();
            // The chain's own summary is enough; the debug dump after it is not for users.
            if let Some(i) = s.find(" (DispatchFailure") {
                s.truncate(i);
            }
            if s.contains("no credentials")
                || s.contains("NoCredentials")
                || s.contains("credentials provider")
            {
                format!(
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE \
                     (or `profile` in the provider's aws block), or run where an instance or pod role \
                     is available ({s})"
                )
            } else {
                s
            }
        }
    }
}

fn status<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    e.raw_response().map(|r| r.status_code())
}

/// The HTTP status of a raw response.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Whether the bucket exists (and is reachable with these credentials).
pub async fn exists(loc: &Location, auth: &Auth) -> Result<bool, StoreError> {
    let c = client(loc, auth).await;
    match c.head_bucket().bucket(&loc.bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if status(&e) == Some(404) => Ok(false),
        Err(e) if status(&e) == Some(403) => Err(StoreError::Remote(format!(
            "bucket {} exists but these credentials may not use it (403 Forbidden)",
            loc.bucket
        ))),
        Err(e) => Err(StoreError::Remote(format!(
            "bucket {}: {}",
            loc.bucket,
            describe(&e)
        ))),
    }
}

/// Creates the bucket (or checks that an adopted one exists), then applies the settings.
pub async fn create(loc: &Location, auth: &Auth, s: &Settings) -> Result<Report, StoreError> {
    let c = client(loc, auth).await;
    if s.create {
        let mut req = c.create_bucket().bucket(&loc.bucket);
        let region = c
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        if !region.is_empty() && region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        if let Err(e) = req.send().await {
            let owned = e
                .as_service_error()
                .is_some_and(|se| se.is_bucket_already_owned_by_you());
            let taken = e
                .as_service_error()
                .is_some_and(|se| se.is_bucket_already_exists());
            return Err(if owned {
                StoreError::Conflict(format!(
                    "bucket {} already exists in this account; set create = false to adopt it, or \
                     import it (terraform import ADDRESS {})",
                    loc.bucket,
                    loc.uri()
                ))
            } else if taken {
                StoreError::Conflict(format!(
                    "bucket name {} is taken by another account (S3 bucket names are global); \
                     choose another name",
                    loc.bucket
                ))
            } else {
                StoreError::Remote(format!(
                    "cannot create bucket {}: {}",
                    loc.bucket,
                    describe(&e)
                ))
            });
        }
    } else if !exists(loc, auth).await? {
        return Err(StoreError::NotFound(format!(
            "bucket {} does not exist (create = false adopts an existing bucket); create it, or set \
             create = true",
            loc.bucket
        )));
    }
    configure(loc, auth, s).await
}

/// A setting the server refused: fatal on AWS, a warning on S3-compatible servers.
fn refused<E, R>(
    what: &str,
    e: &SdkError<E, R>,
    s: &Settings,
    warnings: &mut Vec<String>,
) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let msg = describe(e);
    if s.lenient {
        warnings.push(format!(
            "{what} is not supported by this server and was skipped ({msg})"
        ));
        Ok(())
    } else {
        Err(StoreError::Remote(format!("cannot set {what}: {msg}")))
    }
}

/// Applies versioning, encryption, public access block, lifecycle and tags.
pub async fn configure(loc: &Location, auth: &Auth, s: &Settings) -> Result<Report, StoreError> {
    let c = client(loc, auth).await;
    let b = &loc.bucket;
    let mut warnings = Vec::new();

    if let Err(e) = c
        .put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
    {
        refused("versioning", &e, s, &mut warnings)?;
    }

    let default = match &s.kms_key_id {
        Some(k) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(k),
        None => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
        }
    };
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(default.build().expect("algorithm set"))
                .bucket_key_enabled(s.kms_key_id.is_some())
                .build(),
        )
        .build()
        .expect("one rule");
    if let Err(e) = c
        .put_bucket_encryption()
        .bucket(b)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
    {
        refused("default encryption", &e, s, &mut warnings)?;
    }

    if let Err(e) = c
        .put_public_access_block()
        .bucket(b)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
    {
        refused("the public access block", &e, s, &mut warnings)?;
    }

    let mut rule = LifecycleRule::builder()
        .id("modelplane")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(7)
                .build(),
        );
    if let Some(days) = s.noncurrent_version_days {
        rule = rule.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(days as i32)
                .build(),
        );
    }
    if let Err(e) = c
        .put_bucket_lifecycle_configuration()
        .bucket(b)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule.build().expect("status set"))
                .build()
                .expect("one rule"),
        )
        .send()
        .await
    {
        refused("the lifecycle rule", &e, s, &mut warnings)?;
    }

    if s.tags.is_empty() {
        if let Err(e) = c.delete_bucket_tagging().bucket(b).send().await {
            refused("tags", &e, s, &mut warnings)?;
        }
    } else {
        let tags: Vec<Tag> = s
            .tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value")
            })
            .collect();
        if let Err(e) = c
            .put_bucket_tagging()
            .bucket(b)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .expect("tags"),
            )
            .send()
            .await
        {
            refused("tags", &e, s, &mut warnings)?;
        }
    }

    let versioning = versioning(loc, auth).await.ok();
    Ok(Report {
        versioning,
        warnings,
    })
}

/// The bucket's versioning status: `Enabled`, `Suspended` or `Disabled`.
pub async fn versioning(loc: &Location, auth: &Auth) -> Result<String, StoreError> {
    let c = client(loc, auth).await;
    let v = c
        .get_bucket_versioning()
        .bucket(&loc.bucket)
        .send()
        .await
        .map_err(|e| StoreError::Remote(format!("bucket {}: {}", loc.bucket, describe(&e))))?;
    Ok(v.status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "Disabled".into()))
}

/// Deletes every object version and delete marker, then the bucket.
pub async fn delete(loc: &Location, auth: &Auth) -> Result<(), StoreError> {
    let c = client(loc, auth).await;
    let b = &loc.bucket;
    let err = |e: String| StoreError::Remote(format!("cannot empty bucket {b}: {e}"));
    loop {
        let page = match c
            .list_object_versions()
            .bucket(b)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(err(describe(&e))),
        };
        let mut ids: Vec<ObjectIdentifier> = Vec::new();
        for v in page.versions() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(v.key().unwrap_or_default())
                    .set_version_id(v.version_id().map(str::to_string))
                    .build()
                    .expect("key"),
            );
        }
        for m in page.delete_markers() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(m.key().unwrap_or_default())
                    .set_version_id(m.version_id().map(str::to_string))
                    .build()
                    .expect("key"),
            );
        }
        if ids.is_empty() {
            break;
        }
        for chunk in ids.chunks(1000) {
            let del = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .expect("objects");
            let out = c
                .delete_objects()
                .bucket(b)
                .delete(del)
                .send()
                .await
                .map_err(|e| err(describe(&e)))?;
            if let Some(first) = out.errors().first() {
                return Err(err(format!(
                    "{}: {}",
                    first.key().unwrap_or_default(),
                    first.message().unwrap_or_default()
                )));
            }
        }
    }
    match c.delete_bucket().bucket(b).send().await {
        Ok(_) => Ok(()),
        Err(e) if status(&e) == Some(404) => Ok(()),
        Err(e) => Err(StoreError::Remote(format!(
            "cannot delete bucket {b}: {}",
            describe(&e)
        ))),
    }
}

/// Checks an S3 bucket name against AWS's rules; the message says which rule is broken.
pub fn check_bucket_name(n: &str) -> Result<(), String> {
    if n.len() < 3 || n.len() > 63 {
        return Err("must be 3 to 63 characters".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-')))
    {
        return Err(format!(
            "contains {c:?}; S3 bucket names use lowercase letters, digits, '.' and '-'"
        ));
    }
    let first = n.chars().next().unwrap_or('-');
    let last = n.chars().last().unwrap_or('-');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("must begin and end with a letter or digit".into());
    }
    if n.contains("..") || n.contains(".-") || n.contains("-.") {
        return Err("must not contain two adjacent periods or a period next to a hyphen".into());
    }
    if n.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be formatted as an IP address".into());
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if n.starts_with(p) {
            return Err(format!("must not start with {p:?} (reserved by AWS)"));
        }
    }
    for s in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"] {
        if n.ends_with(s) {
            return Err(format!("must not end with {s:?} (reserved by AWS)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["models", "acme-models.prod", "a1b"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("ab", "3 to 63"),
            ("Models", "lowercase"),
            ("acme_models", "lowercase"),
            ("-models", "begin and end"),
            ("a..b", "adjacent"),
            ("192.168.1.1", "IP address"),
            ("xn--models", "reserved"),
            ("models-s3alias", "reserved"),
        ] {
            let e = check_bucket_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
