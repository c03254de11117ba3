//! The `azure_blob` control plane: a container in an existing storage account, through the
//! Azure SDK (`azure_storage_blob`).
//!
//! With an Entra ID credential the SDK authenticates itself. The SDK has no shared-key
//! authentication (needed for account keys: on-prem gateways, Azurite), so [`SharedKey`] signs
//! requests as a pipeline policy, following "Authorize with Shared Key" of the Storage REST
//! API.

use std::sync::Arc;

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use modelplane_serve::objects::{azure_auth, Auth, AzureAuth, Location};

use super::StoreError;

/// Signs each try of a request with the account key (`Authorization: SharedKey`).
#[derive(Debug)]
pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

impl SharedKey {
    pub fn new(account: &str, key_base64: &str) -> Result<SharedKey, String> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_base64.trim())
            .map_err(|_| {
                "the Azure storage account key is not valid base64; copy key1 or key2 of the \
                 account (Access keys) or its connection string"
                    .to_string()
            })?;
        Ok(SharedKey {
            account: account.to_string(),
            key,
        })
    }

    /// The string to sign for a request whose headers are final.
    fn string_to_sign(&self, req: &Request) -> String {
        let h = |name: &str| -> String {
            req.headers()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str().to_string())
                .unwrap_or_default()
        };
        let length = match h("content-length").as_str() {
            "0" => String::new(),
            other => other.to_string(),
        };
        let mut ms: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.as_str().trim().to_string(),
                )
            })
            .collect();
        ms.sort();
        let url = req.url();
        let mut resource = format!("/{}{}", self.account, url.path());
        let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (k, v) in url.query_pairs() {
            params
                .entry(k.to_ascii_lowercase())
                .or_default()
                .push(v.into_owned());
        }
        for (k, mut vs) in params {
            vs.sort();
            resource.push_str(&format!("\n{k}:{}", vs.join(",")));
        }
        let method = format!("{:?}", req.method()).to_ascii_uppercase();
        let mut s = format!(
            "{method}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
            h("content-encoding"),
            h("content-language"),
            h("content-md5"),
            h("content-type"),
            h("if-modified-since"),
            h("if-match"),
            h("if-none-match"),
            h("if-unmodified-since"),
            h("range"),
        );
        for (k, v) in ms {
            s.push_str(&format!("{k}:{v}\n"));
        }
        s.push_str(&resource);
        s
    }
}

#[tfplugin::async_trait]
impl Policy for SharedKey {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default()
            .replace("+0000", "GMT");
        request.insert_header("x-ms-date", now);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(self.string_to_sign(request).as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        request.insert_header("authorization", format!("SharedKey {}:{sig}", self.account));
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The container's URL: `ENDPOINT/CONTAINER`, the endpoint defaulting to the public cloud's.
pub fn container_url(loc: &Location) -> String {
    let account = loc.account.as_deref().unwrap_or_default();
    let endpoint = loc
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
    format!("{}/{}", endpoint.trim_end_matches('/'), loc.bucket)
}

/// A container client with the credential in force.
pub fn client(loc: &Location, auth: &Auth) -> Result<BlobContainerClient, StoreError> {
    let url = container_url(loc);
    let url = Url::parse(&url).map_err(|e| StoreError::Remote(format!("{url}: {e}")))?;
    let mut options = BlobContainerClientOptions::default();
    let credential = match azure_auth(auth).map_err(StoreError::Remote)? {
        AzureAuth::Key(k) => {
            let account = loc.account.as_deref().unwrap_or_default();
            let policy = SharedKey::new(account, &k).map_err(StoreError::Remote)?;
            options
                .client_options
                .per_try_policies
                .push(Arc::new(policy));
            None
        }
        AzureAuth::Token(t) => Some(t),
    };
    BlobContainerClient::new(url, credential, Some(options))
        .map_err(|e| StoreError::Remote(e.to_string()))
}

/// An SDK error in words a user can act on.
pub fn describe(e: &azure_core::Error, loc: &Location) -> String {
    let account = loc.account.as_deref().unwrap_or_default();
    match e.http_status().map(u16::from) {
        Some(403) => format!(
            "access to container {} in storage account {account} was refused (403): check the \
             account key or the identity's role (Storage Blob Data Contributor): {e}",
            loc.bucket
        ),
        _ if e.to_string().contains("dns error") || e.to_string().contains("resolve") => format!(
            "storage account {account} cannot be reached at {}: check the account name \
             (`storage_account`) or `endpoint`: {e}",
            container_url(loc)
        ),
        _ => e.to_string(),
    }
}

/// Whether the container exists.
pub async fn exists(loc: &Location, auth: &Auth) -> Result<bool, StoreError> {
    client(loc, auth)?
        .exists()
        .await
        .map_err(|e| StoreError::Remote(describe(&e, loc)))
}

/// Creates the container; an existing one is a conflict (adopt it with `create = false`).
pub async fn create(loc: &Location, auth: &Auth) -> Result<(), StoreError> {
    let c = client(loc, auth)?;
    match c.create(None).await {
        Ok(_) => Ok(()),
        Err(e) if e.http_status().map(u16::from) == Some(409) => {
            Err(StoreError::Conflict(format!(
            "container {} already exists in storage account {}; set create = false to adopt it, \
             or import it (terraform import ADDRESS {})",
            loc.bucket,
            loc.account.as_deref().unwrap_or_default(),
            loc.uri()
        )))
        }
        Err(e) => Err(StoreError::Remote(describe(&e, loc))),
    }
}

/// Deletes the container with everything in it.
pub async fn delete(loc: &Location, auth: &Auth) -> Result<(), StoreError> {
    match client(loc, auth)?.delete(None).await {
        Ok(_) => Ok(()),
        Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(()),
        Err(e) => Err(StoreError::Remote(describe(&e, loc))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_follows_the_rest_api() {
        let k = SharedKey::new("acct", "c2VjcmV0").unwrap();
        let mut r = Request::new(
            Url::parse("https://acct.blob.core.windows.net/models?restype=container&comp=list")
                .unwrap(),
            azure_core::http::Method::Get,
        );
        r.insert_header("x-ms-version", "2025-01-05");
        r.insert_header("x-ms-date", "Sun, 22 Nov 2026 08:00:00 GMT");
        let s = k.string_to_sign(&r);
        assert_eq!(
            s,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 22 Nov 2026 08:00:00 GMT\nx-ms-version:2025-01-05\n/acct/models\ncomp:list\nrestype:container"
        );
        assert!(SharedKey::new("acct", "not base64!").is_err());
    }
}
