//! Every error the HTTP surface returns, as RFC 9457 problem+json with a stable `code`.
//! The table in [`ErrorCode`] is the one place codes and statuses are defined; the README
//! lists it for integrators.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

macro_rules! codes {
    ($($variant:ident => ($code:literal, $status:ident, $title:literal),)*) => {
        /// Stable error codes. Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];
            pub fn code(self) -> &'static str { match self { $(ErrorCode::$variant => $code,)* } }
            pub fn status(self) -> StatusCode { match self { $(ErrorCode::$variant => StatusCode::$status,)* } }
            pub fn title(self) -> &'static str { match self { $(ErrorCode::$variant => $title,)* } }
        }
    };
}

codes! {
    MissingCredentials => ("missing_credentials", UNAUTHORIZED, "No credentials were sent"),
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED, "The key or session is not valid"),
    WrongKeyKind => ("wrong_key_kind", FORBIDDEN, "This key cannot call this endpoint"),
    Forbidden => ("forbidden", FORBIDDEN, "Your role does not allow this"),
    InvalidJson => ("invalid_json", BAD_REQUEST, "The body is not valid JSON"),
    InvalidGzip => ("invalid_gzip", BAD_REQUEST, "The body is not valid gzip"),
    InvalidBatch => ("invalid_batch", BAD_REQUEST, "The batch is malformed"),
    InvalidParameter => ("invalid_parameter", BAD_REQUEST, "A parameter is invalid"),
    RefusedUrl => ("invalid_parameter", UNPROCESSABLE_ENTITY, "The URL names an address cxm may not reach"),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "The request is too large"),
    RequestTimeout => ("request_timeout", REQUEST_TIMEOUT, "The request body did not arrive in time"),
    TooManyEvents => ("too_many_events", PAYLOAD_TOO_LARGE, "The request carries more events than one request may"),
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, "Too many requests"),
    InvalidDefinition => ("invalid_definition", UNPROCESSABLE_ENTITY, "The definition is not valid"),
    NotFound => ("not_found", NOT_FOUND, "Not found"),
    Conflict => ("conflict", CONFLICT, "The resource already exists"),
    ContactRule => ("contact_rule", CONFLICT, "A contact-frequency rule holds this invitation back"),
    VerificationFailed => ("verification_failed", CONFLICT, "The ticket's verification check does not pass"),
    InvalidTransition => ("invalid_transition", CONFLICT, "The ticket cannot move to that state from where it is"),
    UnknownAgent => ("unknown_agent", UNPROCESSABLE_ENTITY, "No such agent is registered"),
    UnknownAction => ("unknown_action", UNPROCESSABLE_ENTITY, "No policy schema knows that action"),
    InvalidPolicy => ("invalid_policy", UNPROCESSABLE_ENTITY, "The policies are not valid"),
    DisclosureMissing => ("disclosure_missing", UNPROCESSABLE_ENTITY, "An agent's message must disclose that it is automated"),
    NoKnownChannel => ("no_known_channel", UNPROCESSABLE_ENTITY, "There is no known channel to send a code to"),
    InvalidCode => ("invalid_code", UNPROCESSABLE_ENTITY, "The code is wrong"),
    StepUpExpired => ("step_up_expired", CONFLICT, "The step-up verification is over"),
    DecisionMismatch => ("decision_mismatch", CONFLICT, "The decision does not cover this action"),
    DecisionUsed => ("decision_used", CONFLICT, "The decision was already used"),
    DecisionNotAllowed => ("decision_not_allowed", CONFLICT, "The decision does not allow acting"),
    NotPending => ("not_pending", CONFLICT, "The decision is not waiting for a review"),
    ShuttingDown => ("shutting_down", SERVICE_UNAVAILABLE, "The server is shutting down"),
    StoreUnavailable => ("store_unavailable", SERVICE_UNAVAILABLE, "The store is unavailable"),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "Internal error"),
}

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
        use cxm_store::StoreError as S;
        match e {
            S::NotFound(d) => ApiError::new(ErrorCode::NotFound, d),
            S::Conflict(d) => ApiError::new(ErrorCode::Conflict, d),
            S::Invalid(d) => ApiError::new(ErrorCode::InvalidParameter, d),
            S::Backend(d) => {
                tracing::error!(error = %d, "store error");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the store could not complete the request; retry later",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
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
