//! A small typed client of Azure Resource Manager on azure_core's pipeline.
//!
//! Hand-written because Rust has no maintained ARM crate: the `azure_mgmt_*` crates are
//! unofficial and pinned to azure_core 0.10, and the official `azure_resourcemanager_*`
//! crates are placeholders. It does only what ARM documents for every resource provider, so
//! the per-service code (AKS, ACR, role assignments) is serde structs of the fields we use:
//!
//! - authentication: a bearer token from `azure_identity`'s chain for
//!   `https://management.azure.com/.default` (azure_core's policy, which refuses plain HTTP);
//! - retries: azure_core's retry policy, which honours `Retry-After` on 429 and 5xx;
//! - long-running operations (ARM's async operation pattern): a `PUT`, `PATCH`, `POST` or
//!   `DELETE` answered 201 or 202 is followed through its `Azure-AsyncOperation` URL (a
//!   status resource: `InProgress`, `Succeeded`, `Failed`, `Canceled` with an `error`), else
//!   its `Location` URL (202 while running), else the resource's own `provisioningState`;
//! - errors: ARM's `{"error": {"code", "message", "details"}}`, kept with the code so callers
//!   can tell quota from conflict from a missing SKU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::HeaderName;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::Policy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request,
    StatusCode, Transport, Url,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// ARM's public endpoint and the token scope for it.
pub const PUBLIC_ENDPOINT: &str = "https://management.azure.com";
pub const SCOPE: &str = "https://management.azure.com/.default";

const ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");
const LOCATION: HeaderName = HeaderName::from_static("location");
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// What went wrong, in ARM's terms.
#[derive(Clone, Debug, PartialEq)]
pub enum ArmError {
    /// 404: the resource (or its parent) does not exist.
    NotFound(String),
    /// ARM refused the request or the operation failed: its error code (`QuotaExceeded`,
    /// `OperationNotAllowed`, `Conflict`, …) and message, with details flattened in.
    Failed { code: String, message: String },
    /// The operation did not finish before the deadline; its last known status.
    TimedOut(String),
    /// Nothing usable came back (network, TLS, credentials, a body that is not ARM's).
    Transport(String),
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArmError::NotFound(what) => write!(f, "{what} not found"),
            ArmError::Failed { code, message } => write!(f, "{code}: {message}"),
            ArmError::TimedOut(status) => write!(f, "timed out ({status})"),
            ArmError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// ARM's error body.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

impl ErrorDetail {
    fn into_error(self) -> ArmError {
        let mut message = self.message;
        for d in self.details {
            if !d.message.is_empty() {
                message.push_str(&format!(" ({}: {})", d.code, d.message));
            }
        }
        ArmError::Failed {
            code: if self.code.is_empty() {
                "Unknown".into()
            } else {
                self.code
            },
            message,
        }
    }
}

/// The status resource an `Azure-AsyncOperation` URL answers.
#[derive(Debug, Deserialize)]
struct OperationStatus {
    status: String,
    error: Option<ErrorDetail>,
}

/// The part of any ARM resource that says whether it is done.
#[derive(Debug, Default, Deserialize)]
struct Provisioned {
    #[serde(default)]
    properties: Option<ProvisionedProperties>,
}

#[derive(Debug, Default, Deserialize)]
struct ProvisionedProperties {
    #[serde(rename = "provisioningState")]
    provisioning_state: Option<String>,
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn terminal(status: &str) -> bool {
    matches!(
        status.to_ascii_lowercase().as_str(),
        "succeeded" | "failed" | "canceled" | "cancelled"
    )
}

/// An ARM client for one subscription.
#[derive(Clone)]
pub struct Arm {
    pipeline: Pipeline,
    endpoint: Url,
    pub subscription: String,
    /// How often a long-running operation is asked again when ARM does not say (`Retry-After`).
    pub poll: Duration,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("endpoint", &self.endpoint.as_str())
            .field("subscription", &self.subscription)
            .finish()
    }
}

impl Arm {
    /// A client of `endpoint` (ARM's public one, a sovereign cloud's, or a test's), with
    /// tokens from `credential`; `transport` replaces the HTTP client (a test's, trusting its
    /// own CA).
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        endpoint: &str,
        subscription: &str,
        transport: Option<Transport>,
    ) -> Result<Self, ArmError> {
        let endpoint = Url::parse(endpoint)
            .map_err(|e| ArmError::Transport(format!("ARM endpoint {endpoint:?}: {e}")))?;
        let auth: Arc<dyn Policy> =
            Arc::new(BearerTokenAuthorizationPolicy::new(credential, [SCOPE]));
        let options = ClientOptions {
            transport,
            ..Default::default()
        };
        Ok(Arm {
            pipeline: Pipeline::new(
                Some("terraform-provider-modelplane"),
                Some(env!("CARGO_PKG_VERSION")),
                options,
                Vec::new(),
                vec![auth],
                None,
            ),
            endpoint,
            subscription: subscription.to_string(),
            poll: Duration::from_secs(10),
        })
    }

    /// `/subscriptions/SUB/resourceGroups/RG` and below.
    pub fn group_path(&self, group: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{group}",
            self.subscription
        )
    }

    fn url(&self, path: &str, api_version: &str) -> Result<Url, ArmError> {
        let mut u = self
            .endpoint
            .join(path)
            .map_err(|e| ArmError::Transport(format!("{path}: {e}")))?;
        u.query_pairs_mut().append_pair("api-version", api_version);
        Ok(u)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ArmError> {
        let mut req = Request::new(url.clone(), method);
        req.insert_header("accept", "application/json");
        if let Some(b) = body {
            req.insert_header("content-type", "application/json");
            req.set_body(b);
        }
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        self.pipeline
            .send(&Context::new(), &mut req, Some(options))
            .await
            .map_err(|e| ArmError::Transport(format!("{method} {}: {}", url.path(), chain(&e))))
    }

    fn failure(path: &str, r: &RawResponse) -> ArmError {
        if r.status() == StatusCode::NotFound {
            return ArmError::NotFound(path.to_string());
        }
        match serde_json::from_slice::<ErrorBody>(r.body().as_ref()) {
            Ok(ErrorBody { error: Some(e) }) => e.into_error(),
            _ => ArmError::Failed {
                code: format!("HTTP{}", u16::from(r.status())),
                message: String::from_utf8_lossy(r.body().as_ref())
                    .chars()
                    .take(400)
                    .collect(),
            },
        }
    }

    fn decode<T: DeserializeOwned>(path: &str, r: &RawResponse) -> Result<T, ArmError> {
        serde_json::from_slice(r.body().as_ref()).map_err(|e| {
            ArmError::Transport(format!(
                "{path}: the answer is not the expected resource: {e}"
            ))
        })
    }

    /// The resource at `path`, or `None` when there is none.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<Option<T>, ArmError> {
        let r = self
            .send(Method::Get, self.url(path, api_version)?, None)
            .await?;
        match r.status() {
            s if s.is_success() => Self::decode(path, &r).map(Some),
            StatusCode::NotFound => Ok(None),
            _ => Err(Self::failure(path, &r)),
        }
    }

    /// Creates or updates the resource at `path`, follows the operation to its end (by
    /// `deadline`), and returns the resource as it then is.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        body: &B,
        deadline: Instant,
    ) -> Result<T, ArmError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ArmError::Transport(e.to_string()))?;
        let r = self
            .send(Method::Put, self.url(path, api_version)?, Some(bytes))
            .await?;
        if !r.status().is_success() {
            return Err(Self::failure(path, &r));
        }
        self.follow(path, &r, deadline).await?;
        self.wait_provisioned(path, api_version, deadline).await
    }

    /// A `POST` action (`listClusterUserCredential`, …) and its answer.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<T, ArmError> {
        let r = self
            .send(
                Method::Post,
                self.url(path, api_version)?,
                Some(b"{}".to_vec()),
            )
            .await?;
        if !r.status().is_success() {
            return Err(Self::failure(path, &r));
        }
        Self::decode(path, &r)
    }

    /// A form POST to a URL outside ARM that takes ARM's token in its body (ACR's
    /// `/oauth2/exchange`), through the same pipeline: TLS, retries, the same transport.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, ArmError> {
        let u = Url::parse(url).map_err(|e| ArmError::Transport(format!("{url}: {e}")))?;
        let body = form
            .iter()
            .fold(
                url::form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(k, v);
                    s
                },
            )
            .finish();
        let mut req = Request::new(u.clone(), Method::Post);
        req.insert_header("accept", "application/json");
        req.insert_header("content-type", "application/x-www-form-urlencoded");
        req.set_body(body.into_bytes());
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        let r = self
            .pipeline
            .send(&Context::new(), &mut req, Some(options))
            .await
            .map_err(|e| ArmError::Transport(format!("POST {}: {}", u.path(), chain(&e))))?;
        if !r.status().is_success() {
            return Err(Self::failure(u.path(), &r));
        }
        Self::decode(u.path(), &r)
    }

    /// Deletes the resource at `path` and waits until it is gone; one already gone is not an
    /// error.
    pub async fn delete(
        &self,
        path: &str,
        api_version: &str,
        deadline: Instant,
    ) -> Result<(), ArmError> {
        let r = self
            .send(Method::Delete, self.url(path, api_version)?, None)
            .await?;
        match r.status() {
            StatusCode::NotFound | StatusCode::NoContent => return Ok(()),
            s if s.is_success() => {}
            _ => return Err(Self::failure(path, &r)),
        }
        self.follow(path, &r, deadline).await?;
        loop {
            match self.get::<serde_json::Value>(path, api_version).await? {
                None => return Ok(()),
                Some(_) if Instant::now() >= deadline => {
                    return Err(ArmError::TimedOut(format!("{path} still exists")))
                }
                Some(_) => tokio::time::sleep(self.poll).await,
            }
        }
    }

    fn wait_for(&self, r: &RawResponse) -> Duration {
        r.headers()
            .get_optional_str(&RETRY_AFTER)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(self.poll, |s| {
                Duration::from_secs(s).min(Duration::from_secs(60))
            })
    }

    /// Follows a 201/202's operation URL until it ends; a `Failed` or `Canceled` status is
    /// the operation's error.
    async fn follow(
        &self,
        path: &str,
        first: &RawResponse,
        deadline: Instant,
    ) -> Result<(), ArmError> {
        if !matches!(first.status(), StatusCode::Created | StatusCode::Accepted) {
            return Ok(());
        }
        let headers = first.headers();
        if let Some(op) = headers.get_optional_str(&ASYNC_OPERATION) {
            let url = Url::parse(op)
                .map_err(|e| ArmError::Transport(format!("Azure-AsyncOperation {op:?}: {e}")))?;
            let mut wait = self.wait_for(first);
            loop {
                let r = self.poll_once(path, &url, wait, deadline).await?;
                if !r.status().is_success() {
                    return Err(Self::failure(path, &r));
                }
                let s: OperationStatus = Self::decode(path, &r)?;
                match s.status.to_ascii_lowercase().as_str() {
                    "succeeded" => return Ok(()),
                    "failed" | "canceled" | "cancelled" => {
                        return Err(s.error.map_or(
                            ArmError::Failed {
                                code: s.status.clone(),
                                message: format!("the operation on {path} ended {}", s.status),
                            },
                            ErrorDetail::into_error,
                        ))
                    }
                    _ => wait = self.wait_for(&r),
                }
            }
        }
        if let Some(loc) = headers.get_optional_str(&LOCATION) {
            let url = Url::parse(loc)
                .map_err(|e| ArmError::Transport(format!("Location {loc:?}: {e}")))?;
            let mut wait = self.wait_for(first);
            loop {
                let r = self.poll_once(path, &url, wait, deadline).await?;
                match r.status() {
                    StatusCode::Accepted => wait = self.wait_for(&r),
                    s if s.is_success() => return Ok(()),
                    _ => return Err(Self::failure(path, &r)),
                }
            }
        }
        Ok(())
    }

    /// One poll of an operation URL, after `wait` (cut short by the deadline, which ends the
    /// wait with an error).
    async fn poll_once(
        &self,
        path: &str,
        url: &Url,
        wait: Duration,
        deadline: Instant,
    ) -> Result<RawResponse, ArmError> {
        if Instant::now() >= deadline {
            return Err(ArmError::TimedOut(format!(
                "{path}: the operation is still running"
            )));
        }
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        self.send(Method::Get, url.clone(), None).await
    }

    /// Reads the resource until its `provisioningState` is final; `Failed` is an error.
    async fn wait_provisioned<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        deadline: Instant,
    ) -> Result<T, ArmError> {
        loop {
            let r = self
                .send(Method::Get, self.url(path, api_version)?, None)
                .await?;
            if !r.status().is_success() {
                return Err(Self::failure(path, &r));
            }
            let p: Provisioned = Self::decode(path, &r)?;
            let state = p
                .properties
                .and_then(|p| p.provisioning_state)
                .unwrap_or_else(|| "Succeeded".into());
            if terminal(&state) {
                if !state.eq_ignore_ascii_case("succeeded") {
                    return Err(ArmError::Failed {
                        code: state.clone(),
                        message: format!("{path} is in provisioning state {state}"),
                    });
                }
                return Self::decode(path, &r);
            }
            if Instant::now() >= deadline {
                return Err(ArmError::TimedOut(format!("{path} is {state}")));
            }
            tokio::time::sleep(self.wait_for(&r)).await;
        }
    }
}
