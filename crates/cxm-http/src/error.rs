//! Every error the HTTP surface returns, as RFC 9457 problem+json with a stable `code`.
//! The codes and their statuses are the application layer's table ([`ErrorCode`]); this
//! only renders them. `docs/api.md` lists them for integrators.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use cxm_app::AppError;
pub use cxm_app::ErrorCode;

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
    pub reset_epoch_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            retry_after_secs: None,
            reset_epoch_secs: None,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<cxm_store::StoreError> for ApiError {
    fn from(e: cxm_store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            code: e.code,
            detail: e.detail,
            retry_after_secs: e.retry_after_secs,
            reset_epoch_secs: e.reset_epoch_secs,
        }
    }
}

// closures handed to the application layer's `blocking` answer its error; the adapters'
// helpers answer this one: either converts to the other with `?`
impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        AppError {
            code: e.code,
            detail: e.detail,
            retry_after_secs: e.retry_after_secs,
            reset_epoch_secs: e.reset_epoch_secs,
        }
    }
}

/// Renders an application error the way every handler does (the trait is axum's to
/// implement, the type the application's, so the adapter goes through [`ApiError`]).
pub trait ProblemResponse {
    fn into_response(self) -> Response;
}

impl ProblemResponse for AppError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// The status a code is answered with.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let body = Problem {
            type_: format!("urn:cxm:problem:{}", self.code.code()),
            title: self.code.title(),
            status: status.as_u16(),
            code: self.code.code(),
            detail: self.detail,
            instance: None,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after_secs {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(s) = self.reset_epoch_secs {
            h.insert("x-ratelimit-reset", HeaderValue::from(s));
        }
        resp
    }
}
