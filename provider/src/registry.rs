//! OCI registries, through the distribution API (`oci-client`): pushing the bundled image
//! and resolving references to digests.
//!
//! Credentials, in order: the ones a resource is given; then the files container tools
//! write on `login` — `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` (podman),
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (docker, credential helpers
//! included); else anonymous. Basic auth and bearer tokens (the registry's token service,
//! as Docker Hub, Harbor, ECR and ACR use) are both handled by `oci-client`.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use modelplane_serve::image::Layout;

/// How to reach a registry.
#[derive(Clone, Default)]
pub struct Access {
    /// Plain HTTP instead of HTTPS (a loopback or lab registry).
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("insecure", &self.insecure)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses `HOST[:PORT]/PATH[:TAG][@sha256:…]`. A registry host is required: nothing is
/// pushed to Docker Hub by accident.
pub fn parse(reference: &str) -> Result<Reference, String> {
    let first = reference.split('/').next().unwrap_or("");
    if !reference.contains('/')
        || !(first.contains('.') || first.contains(':') || first == "localhost")
    {
        return Err(format!(
            "{reference:?} does not start with a registry host; write HOST[:PORT]/PATH, e.g. \"registry.example.com/ml/modelplane-serve\" or \"127.0.0.1:5000/modelplane-serve\""
        ));
    }
    reference
        .parse::<Reference>()
        .map_err(|e| format!("{reference:?} is not an image reference: {e}"))
}

fn credentials_from_files(registry: &str) -> Option<RegistryAuth> {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(f.into());
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(std::path::Path::new(&d).join("containers/auth.json"));
    }
    for f in files {
        if let Ok(file) = std::fs::File::open(&f) {
            if let Ok(c) = docker_credential::get_credential_from_reader(file, registry) {
                return Some(to_auth(c));
            }
        }
    }
    docker_credential::get_credential(registry)
        .ok()
        .map(to_auth)
}

fn to_auth(c: docker_credential::DockerCredential) -> RegistryAuth {
    match c {
        docker_credential::DockerCredential::UsernamePassword(u, p) => RegistryAuth::Basic(u, p),
        docker_credential::DockerCredential::IdentityToken(t) => RegistryAuth::Bearer(t),
    }
}

fn client(r: &Reference, access: &Access) -> (Client, RegistryAuth) {
    let protocol = if access.insecure {
        ClientProtocol::HttpsExcept(vec![r.resolve_registry().to_string()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let auth = match (&access.username, &access.password) {
        (Some(u), Some(p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        _ => credentials_from_files(r.resolve_registry()).unwrap_or(RegistryAuth::Anonymous),
    };
    (client, auth)
}

/// A registry error in words a user can act on.
fn explain(r: &Reference, e: OciDistributionError) -> String {
    let registry = r.resolve_registry();
    match e {
        OciDistributionError::AuthenticationFailure(why) => format!(
            "the registry {registry} refused the credentials ({why}); check username and password_wo, or log in with `podman login` / `docker login`"
        ),
        OciDistributionError::UnauthorizedError { url } => format!(
            "the registry {registry} refused access ({url}: 401 Unauthorized); give username and password_wo, or log in with `podman login` / `docker login`"
        ),
        OciDistributionError::ImageManifestNotFoundError(m) => {
            format!("image {r} not found in {registry} ({m})")
        }
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => format!(
            "cannot reach the registry {registry}: {e}{}",
            if e.to_string().contains("https") || format!("{e:?}").contains("Ssl") {
                "; for a registry served over plain HTTP set insecure = true"
            } else {
                ""
            }
        ),
        OciDistributionError::ServerError { code, url, message } if code == 401 || code == 403 => format!(
            "the registry {registry} refused access ({url}: HTTP {code} {message}); check the credentials"
        ),
        other => format!("registry {registry}: {other}"),
    }
}

/// Pushes every blob of a layout and its manifest under `tag`; returns the manifest digest.
pub async fn push(
    layout: &Layout,
    repository: &str,
    tag: &str,
    access: &Access,
) -> Result<String, String> {
    let r = parse(&format!("{repository}:{tag}"))?;
    let (client, auth) = client(&r, access);
    client
        .auth(&r, &auth, RegistryOperation::Push)
        .await
        .map_err(|e| explain(&r, e))?;
    for (_, digest, _) in &layout.blobs {
        let data = layout.blob(digest).map_err(|e| e.to_string())?;
        client
            .push_blob(&r, &data, digest)
            .await
            .map_err(|e| explain(&r, e))?;
    }
    client
        .push_manifest_raw(
            &r,
            layout.manifest.clone(),
            modelplane_serve::image::MANIFEST
                .parse()
                .map_err(|e| format!("{e}"))?,
        )
        .await
        .map_err(|e| explain(&r, e))?;
    Ok(layout.digest.clone())
}

/// The digest a reference resolves to; `Ok(None)` when the registry does not have it.
pub async fn resolve(reference: &str, access: &Access) -> Result<Option<String>, String> {
    let r = parse(reference)?;
    let (client, auth) = client(&r, access);
    match client.fetch_manifest_digest(&r, &auth).await {
        Ok(d) => Ok(Some(d)),
        Err(OciDistributionError::ImageManifestNotFoundError(_)) => Ok(None),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope
                .errors
                .iter()
                .any(|e| format!("{:?}", e.code).contains("Unknown")) =>
        {
            Ok(None)
        }
        Err(OciDistributionError::ServerError { code: 404, .. }) => Ok(None),
        Err(e) => Err(explain(&r, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_a_registry_host() {
        assert!(parse("127.0.0.1:5000/modelplane-serve:0.1.0").is_ok());
        assert!(parse("registry.example.com/ml/serve").is_ok());
        assert!(parse("localhost/serve").is_ok());
        let e = parse("modelplane-serve:latest").unwrap_err();
        assert!(e.contains("registry host"), "{e}");
        let e = parse("ml/serve").unwrap_err();
        assert!(e.contains("HOST[:PORT]/PATH"), "{e}");
        let e = parse("127.0.0.1:5000/UPPER").unwrap_err();
        assert!(e.contains("not an image reference"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        let a = Access {
            insecure: true,
            username: Some("ci".into()),
            password: Some("hunter2".into()),
        };
        let s = format!("{a:?}");
        assert!(!s.contains("hunter2") && s.contains("redacted"), "{s}");
    }
}
