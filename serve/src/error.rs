//! One error type for the server: client faults are answered precisely, server faults are
//! logged in full and answered generically. It maps to OIP JSON errors and gRPC statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug, thiserror::Error)]
pub enum ServeError {
    /// The request is malformed or does not fit the model (400 / INVALID_ARGUMENT).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown model, version or variant (404 / NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The model or server is not ready (503 / UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// A model of a shared endpoint does not fit its memory budget (503 with Retry-After /
    /// RESOURCE_EXHAUSTED).
    #[error("{0}")]
    NoRoom(String),
    /// The queue is full (429 / RESOURCE_EXHAUSTED).
    #[error("{0}")]
    Overloaded(String),
    /// The request did not finish in time (504 / DEADLINE_EXCEEDED).
    #[error("{0}")]
    Timeout(String),
    /// A remote variant's server failed or answered something else than an inference
    /// response (502 / UNAVAILABLE).
    #[error("{0}")]
    BadGateway(String),
    /// Missing or wrong credentials (401 / UNAUTHENTICATED).
    #[error("{0}")]
    Unauthorized(String),
    /// The request body is over `limits.max_body_bytes` (413 / RESOURCE_EXHAUSTED).
    #[error("{0}")]
    TooLarge(String),
    /// A fault of the server or the model (500 / INTERNAL); details go to the log.
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::Unavailable(_) | ServeError::NoRoom(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ServeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ServeError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The label used in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ServeError::BadRequest(_) => "bad_request",
            ServeError::NotFound(_) => "not_found",
            ServeError::Unavailable(_) => "unavailable",
            ServeError::NoRoom(_) => "no_room",
            ServeError::Overloaded(_) => "overloaded",
            ServeError::Timeout(_) => "timeout",
            ServeError::BadGateway(_) => "bad_gateway",
            ServeError::Unauthorized(_) => "unauthorized",
            ServeError::TooLarge(_) => "too_large",
            ServeError::Internal(_) => "internal",
        }
    }

    /// The message a client sees.
    pub fn public_message(&self) -> String {
        match self {
            ServeError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal server error; see the server log".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.public_message() }).to_string();
        let mut r = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if matches!(self, ServeError::NoRoom(_)) {
            // Room may come when other models' requests finish or they are unpinned.
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        r
    }
}

impl From<ServeError> for tonic::Status {
    fn from(e: ServeError) -> Self {
        let msg = e.public_message();
        match e {
            ServeError::BadRequest(_) => tonic::Status::invalid_argument(msg),
            ServeError::NotFound(_) => tonic::Status::not_found(msg),
            ServeError::Unavailable(_) => tonic::Status::unavailable(msg),
            ServeError::Overloaded(_) | ServeError::NoRoom(_) => {
                tonic::Status::resource_exhausted(msg)
            }
            ServeError::Timeout(_) => tonic::Status::deadline_exceeded(msg),
            ServeError::BadGateway(_) => tonic::Status::unavailable(msg),
            ServeError::Unauthorized(_) => tonic::Status::unauthenticated(msg),
            ServeError::TooLarge(_) => tonic::Status::resource_exhausted(msg),
            ServeError::Internal(_) => tonic::Status::internal(msg),
        }
    }
}
