//! Who is applying: the identity a store's credential chain resolves to (AWS STS
//! `GetCallerIdentity`, the Entra ID token's claims), else the operating-system user. Approvals
//! and audit records name it; separation of duties compares it.

use base64::Engine;
use modelplane_serve::objects::{self, AzureAuth, Location, Service};

use crate::stores::Connection;

/// The identity of this process against the store `store_uri` names: `aws:ARN`,
/// `azure:NAME (OBJECT_ID)`, `s3-key:ACCESS_KEY_ID@ENDPOINT` on an S3-compatible server without
/// STS, or `os:USER@HOST` for a local store or an Azure account key.
pub async fn caller(store_uri: &str, conn: &Connection) -> Result<String, String> {
    if store_uri.starts_with("file://") {
        return Ok(os_user());
    }
    let loc = Location::parse(store_uri)?;
    match loc.service {
        Service::S3 => aws(&loc, conn).await,
        Service::Azure => azure(&loc, conn).await,
    }
}

/// `os:USER@HOST`: the effective user's name from the user database (else `$USER`), and the
/// host name.
pub fn os_user() -> String {
    let user =
        user_name().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    format!("os:{user}@{}", host_name())
}

fn user_name() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; the name is copied out
    // before any other call could reuse it.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_str()
            .ok()
            .map(String::from)
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and the read below stops at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

async fn aws(loc: &Location, conn: &Connection) -> Result<String, String> {
    let sdk = objects::aws_sdk_config(
        loc.region.clone().or_else(|| conn.aws_region.clone()),
        conn.auth.aws_profile.clone(),
    )
    .await;
    let mut b = aws_sdk_sts::config::Builder::from(&sdk);
    if let Some(e) = loc.endpoint.as_ref().or(conn.aws_endpoint.as_ref()) {
        b = b.endpoint_url(e);
    }
    if sdk.region().is_none() {
        b = b.region(aws_sdk_sts::config::Region::new("us-east-1"));
    }
    let sts = aws_sdk_sts::Client::from_conf(b.build());
    match sts.get_caller_identity().send().await {
        Ok(out) => match out.arn() {
            Some(arn) => Ok(format!("aws:{arn}")),
            None => Err("AWS STS GetCallerIdentity returned no ARN".into()),
        },
        Err(e) => {
            let why = crate::stores::s3::describe(&e);
            // An S3-compatible server (MinIO, Ceph) has no STS: its users are access keys.
            if let Some(endpoint) = &loc.endpoint {
                if let Some(p) = sdk.credentials_provider() {
                    use aws_credential_types::provider::ProvideCredentials;
                    if let Ok(c) = p.provide_credentials().await {
                        return Ok(format!("s3-key:{}@{endpoint}", c.access_key_id()));
                    }
                }
            }
            Err(format!(
                "cannot tell who is applying: AWS STS GetCallerIdentity failed ({why}); check the AWS credential chain"
            ))
        }
    }
}

async fn azure(loc: &Location, conn: &Connection) -> Result<String, String> {
    match objects::azure_auth(&conn.auth)? {
        // A shared key names no one: the person is the operating-system user.
        AzureAuth::Key(_) => Ok(format!(
            "{} (account key of {})",
            os_user(),
            loc.account.as_deref().unwrap_or_default()
        )),
        AzureAuth::Token(cred) => {
            let t = cred
                .get_token(&[objects::AZURE_STORAGE_SCOPE], None)
                .await
                .map_err(|e| format!("cannot tell who is applying: no Azure token: {e}"))?;
            token_identity(t.token.secret()).ok_or_else(|| {
                "cannot tell who is applying: the Azure token carries no oid claim".into()
            })
        }
    }
}

/// `azure:NAME (OBJECT_ID)` from an Entra ID access token's claims (`upn`, `unique_name` or
/// `appid` for the name; `oid`). The token is not verified: it is this process's own.
fn token_identity(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let oid = claims["oid"].as_str()?;
    let name = ["upn", "unique_name", "preferred_username", "appid"]
        .iter()
        .find_map(|k| claims[*k].as_str())
        .unwrap_or("unknown");
    Some(format!("azure:{name} ({oid})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_principal() {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let jwt = format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256"})),
            enc(serde_json::json!({"oid": "0f1e", "upn": "ana@example.com"}))
        );
        assert_eq!(
            token_identity(&jwt).as_deref(),
            Some("azure:ana@example.com (0f1e)")
        );
        let app = format!(
            "h.{}.s",
            enc(serde_json::json!({"oid": "77", "appid": "c0ffee"}))
        );
        assert_eq!(token_identity(&app).as_deref(), Some("azure:c0ffee (77)"));
        assert_eq!(token_identity("not-a-jwt"), None);
        assert_eq!(
            token_identity(&format!("h.{}.s", enc(serde_json::json!({"upn": "x"})))),
            None
        );
    }

    #[test]
    fn the_os_user_is_named() {
        let me = os_user();
        assert!(me.starts_with("os:") && me.contains('@'), "{me}");
        assert!(!me.contains("unknown@"), "{me}");
    }
}
