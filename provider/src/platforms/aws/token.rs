//! The token EKS accepts from a client: a presigned STS `GetCallerIdentity` URL, as
//! `aws eks get-token` and aws-iam-authenticator make it, without either of them.
//!
//! The format (aws-iam-authenticator's `pkg/token`): a GET of
//! `https://sts.REGION.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`, signed with
//! SigV4 for the service `sts` in the query string (`X-Amz-Expires=60`), the header
//! `x-k8s-aws-id: CLUSTER` among the signed headers; the token is `k8s-aws-v1.` followed by
//! the URL in unpadded base64url. The API server checks it by calling that URL, so the
//! caller's identity is the token's, and it expires with the signature (15 minutes at most,
//! whatever `X-Amz-Expires` says).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;

/// The prefix of every EKS token.
pub const PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";

/// The token for `cluster` in `region`, signed at `now` with `credentials`.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, String> {
    let url = presigned_url(credentials, region, cluster, now)?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

/// The presigned `GetCallerIdentity` URL inside a token.
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, String> {
    let host = sts_host(region);
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the EKS token: {e}"))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("cannot sign the EKS token: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the EKS token: {e}"))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| format!("cannot sign the EKS token: {e}"))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// STS's regional endpoint (the global one would do, but EKS documents the regional one).
fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(String::from),
            None,
            "test",
        )
    }

    #[test]
    fn the_token_is_the_documented_presigned_url() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14T22:13:20Z
        let t = token(&creds(None), "eu-west-1", "ml-prod", now).unwrap();
        let b64 = t.strip_prefix(PREFIX).expect("k8s-aws-v1. prefix");
        assert!(
            !b64.contains('=') && !b64.contains('+') && !b64.contains('/'),
            "unpadded base64url: {b64}"
        );
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
        let u = url::Url::parse(&url).unwrap();
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.host_str(), Some("sts.eu-west-1.amazonaws.com"));
        let q: std::collections::BTreeMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["Version"], "2011-06-15");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            q["X-Amz-Credential"],
            "AKIDEXAMPLE/20231114/eu-west-1/sts/aws4_request"
        );
        assert_eq!(q["X-Amz-Date"], "20231114T221320Z");
        assert_eq!(q["X-Amz-Expires"], "60");
        // The cluster header is signed, so the token is only good for this cluster.
        assert_eq!(q["X-Amz-SignedHeaders"], "host;x-k8s-aws-id");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(q["X-Amz-Signature"].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!q.contains_key("X-Amz-Security-Token"));
    }

    #[test]
    fn the_signature_depends_on_the_cluster_and_session_tokens_travel() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = presigned_url(&creds(None), "us-east-1", "a", now).unwrap();
        let b = presigned_url(&creds(None), "us-east-1", "b", now).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            a,
            presigned_url(&creds(None), "us-east-1", "a", now).unwrap(),
            "deterministic"
        );
        let s = presigned_url(&creds(Some("FwoGZXIvYXdzEXAMPLE")), "cn-north-1", "a", now).unwrap();
        let u = url::Url::parse(&s).unwrap();
        assert_eq!(u.host_str(), Some("sts.cn-north-1.amazonaws.com.cn"));
        assert!(u
            .query_pairs()
            .any(|(k, v)| k == "X-Amz-Security-Token" && v == "FwoGZXIvYXdzEXAMPLE"));
    }
}
