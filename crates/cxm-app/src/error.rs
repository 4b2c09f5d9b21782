//! The one error enum of the application layer, and the table of stable codes behind every
//! answer cxm gives. The protocols render it (the HTTP crate as problem+json with the status
//! named here, the CLI as `code: detail`); no other place defines a code.

macro_rules! codes {
    ($($variant:ident => ($code:literal, $status:literal, $title:literal),)*) => {
        /// Stable error codes. Never rename one: clients match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];
            pub fn code(self) -> &'static str { match self { $(ErrorCode::$variant => $code,)* } }
            /// The HTTP status a protocol answers with: the code's class of failure, written
            /// as the number every client already knows.
            pub fn status(self) -> u16 { match self { $(ErrorCode::$variant => $status,)* } }
            pub fn title(self) -> &'static str { match self { $(ErrorCode::$variant => $title,)* } }
        }
    };
}

codes! {
    MissingCredentials => ("missing_credentials", 401, "No credentials were sent"),
    InvalidCredentials => ("invalid_credentials", 401, "The key or session is not valid"),
    WrongKeyKind => ("wrong_key_kind", 403, "This key cannot call this endpoint"),
    Forbidden => ("forbidden", 403, "Your role does not allow this"),
    InvalidJson => ("invalid_json", 400, "The body is not valid JSON"),
    InvalidGzip => ("invalid_gzip", 400, "The body is not valid gzip"),
    InvalidBatch => ("invalid_batch", 400, "The batch is malformed"),
    InvalidParameter => ("invalid_parameter", 400, "A parameter is invalid"),
    RefusedUrl => ("invalid_parameter", 422, "The URL names an address cxm may not reach"),
    PayloadTooLarge => ("payload_too_large", 413, "The request is too large"),
    RequestTimeout => ("request_timeout", 408, "The request body did not arrive in time"),
    TooManyEvents => ("too_many_events", 413, "The request carries more events than one request may"),
    RateLimited => ("rate_limited", 429, "Too many requests"),
    InvalidDefinition => ("invalid_definition", 422, "The definition is not valid"),
    NotFound => ("not_found", 404, "Not found"),
    Conflict => ("conflict", 409, "The resource already exists"),
    ContactRule => ("contact_rule", 409, "A contact-frequency rule holds this invitation back"),
    VerificationFailed => ("verification_failed", 409, "The ticket's verification check does not pass"),
    InvalidTransition => ("invalid_transition", 409, "The ticket cannot move to that state from where it is"),
    UnknownAgent => ("unknown_agent", 422, "No such agent is registered"),
    UnknownAction => ("unknown_action", 422, "No policy schema knows that action"),
    InvalidPolicy => ("invalid_policy", 422, "The policies are not valid"),
    DisclosureMissing => ("disclosure_missing", 422, "An agent's message must disclose that it is automated"),
    NoKnownChannel => ("no_known_channel", 422, "There is no known channel to send a code to"),
    InvalidCode => ("invalid_code", 422, "The code is wrong"),
    StepUpExpired => ("step_up_expired", 409, "The step-up verification is over"),
    DecisionMismatch => ("decision_mismatch", 409, "The decision does not cover this action"),
    DecisionUsed => ("decision_used", 409, "The decision was already used"),
    DecisionNotAllowed => ("decision_not_allowed", 409, "The decision does not allow acting"),
    NotPending => ("not_pending", 409, "The decision is not waiting for a review"),
    ShuttingDown => ("shutting_down", 503, "The server is shutting down"),
    StoreUnavailable => ("store_unavailable", 503, "The store is unavailable"),
    LogUnavailable => ("log_unavailable", 503, "The ingest log is unavailable"),
    Internal => ("internal", 500, "Internal error"),
}

/// What went wrong in a use case: a stable code, a sentence for the person who sent the
/// request, and when to come back if the answer is "not now".
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
    pub reset_epoch_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> AppError {
        AppError {
            code,
            detail: detail.into(),
            retry_after_secs: None,
            reset_epoch_secs: None,
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.detail)
    }
}

impl std::error::Error for AppError {}

pub type AppResult<T> = Result<T, AppError>;

impl From<cxm_store::StoreError> for AppError {
    fn from(e: cxm_store::StoreError) -> Self {
        use cxm_store::StoreError as S;
        match e {
            S::NotFound(d) => AppError::new(ErrorCode::NotFound, d),
            S::Conflict(d) => AppError::new(ErrorCode::Conflict, d),
            S::Invalid(d) => AppError::new(ErrorCode::InvalidParameter, d),
            S::Backend(d) => {
                tracing::error!(error = %d, "store error");
                AppError::new(
                    ErrorCode::StoreUnavailable,
                    "the store could not complete the request; retry later",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// Two variants may share a code only when they differ in status (a refused URL is an
    /// `invalid_parameter` answered 422); a status outside 4xx/5xx would be a typo.
    #[test]
    fn codes_are_distinct_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!((400..600).contains(&c.status()), "{c:?}");
            assert!(seen.insert((c.code(), c.status())), "{c:?} repeats a code");
        }
    }
}
