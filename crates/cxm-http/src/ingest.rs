pub(crate) use cxm_app::ingest::*;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cxm_domain::{quarantine, Clock, IngestOptions, Quarantine};
use cxm_store::{AppendRequest, KeyKind};

use crate::api::ApiQuery;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;

pub fn success() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"success":true}"#,
    )
        .into_response()
}

/// Reads the body under the cap, then gunzips (by header or magic bytes) under the same cap,
/// so a gzip bomb stops at the limit instead of filling memory.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Bytes> {
    let raw = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if crate::listener::is_body_timeout(&e) {
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!("{e}; send it faster or in smaller requests"),
            )
        } else if too_large {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is over the {limit} byte limit"),
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidBatch,
                format!("cannot read the request body: {e}"),
            )
        }
    })?;
    let declared_gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    let magic = raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
    if !(declared_gzip || magic) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut dec = flate2::read::MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidGzip,
            format!("cannot gunzip the body: {e}"),
        )
    })?;
    if out.len() > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("decompressed body is over the {limit} byte limit"),
        ));
    }
    Ok(Bytes::from(out))
}

/// The whole ingest path for one request; `accept_secret` allows secret keys (native api).
pub async fn handle(
    st: &Arc<AppState>,
    route: Route,
    headers: &HeaderMap,
    body: Body,
    historical: bool,
) -> ApiResult<Response> {
    let started = Instant::now();
    if st.shutting_down.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is draining; retry on another instance or shortly",
        ));
    }
    let received_at = chrono::Utc::now();
    let data = read_body(headers, body, st.config.max_request_bytes).await?;
    let parsed = match parse(route, &data, st.config.max_batch_events) {
        Ok(p) => p,
        // a body that cannot be read cannot carry the key either: without a key in the
        // header, the missing credential is the first thing to fix
        Err(e)
            if e.code != ErrorCode::TooManyEvents
                && crate::auth::header_credential(headers).is_none() =>
        {
            return Err(ApiError::new(
                ErrorCode::MissingCredentials,
                format!(
                    "send the write key as Basic auth username, a Bearer token, or writeKey in the body (the body is not readable either: {})",
                    e.detail
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let token = crate::auth::header_credential(headers)
        .or(parsed.body_key.clone())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingCredentials, "send the write key as Basic auth username, a Bearer token, or writeKey in the body"))?;
    let key = st.keys.lookup(st, &token).await?;
    if key.kind == KeyKind::Agent || (key.kind != KeyKind::Write && !matches!(route, Route::Native))
    {
        return Err(ApiError::new(
            ErrorCode::WrongKeyKind,
            "the tracking api takes write keys; secret keys stay on servers",
        ));
    }
    if let Err(wait) = st.limiter.check(&key.id, parsed.messages.len()) {
        st.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        let secs = wait.ceil().max(1.0) as u64;
        let mut e = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "this key is over its limit of {} events per second (burst {}); this request carries {}",
                st.config.rate_limit_per_sec,
                st.config.rate_limit_burst,
                parsed.messages.len()
            ),
        );
        e.retry_after_secs = Some(secs);
        e.reset_epoch_secs = Some(received_at.timestamp() as u64 + secs);
        return Err(e);
    }
    let opts = IngestOptions {
        trust_timestamps: historical || st.config.trust_timestamps,
        max_event_bytes: st.config.max_event_bytes,
    };
    let clock = Clock {
        received_at,
        batch_sent_at: parsed.batch_sent_at,
    };
    let mut req = AppendRequest {
        tenant_id: key.tenant_id.clone(),
        write_key_id: key.id.clone(),
        events: Vec::with_capacity(parsed.messages.len()),
        // what quarantine keeps of a big request never outgrows the request itself; a small
        // one may keep a few rows more than its size, so its one bad event is still shown
        quarantined: Quarantine::new(
            quarantine::MAX_SAMPLES,
            data.len().max(quarantine::MIN_BUDGET_BYTES),
        ),
    };
    for (msg, len) in parsed.messages {
        match cxm_domain::normalize(&msg, len, &clock, &opts) {
            Ok(ev) => req.events.push(ev),
            Err(reason) => {
                // keep what we can of an oversized event without storing it whole
                let (kept, bytes) = if len > opts.max_event_bytes {
                    let stub = serde_json::json!({"truncated": true, "bytes": len, "messageId": msg.get("messageId")});
                    (stub, 64)
                } else {
                    (msg, len)
                };
                req.quarantined.push(kept, bytes, reason);
            }
        }
    }
    let outcome = st.committer.submit(req).await?;
    st.metrics
        .ingest_requests_ok
        .fetch_add(1, Ordering::Relaxed);
    st.metrics
        .events_accepted
        .fetch_add(u64::from(outcome.accepted), Ordering::Relaxed);
    st.metrics
        .events_duplicate
        .fetch_add(u64::from(outcome.duplicates), Ordering::Relaxed);
    st.metrics
        .events_quarantined
        .fetch_add(u64::from(outcome.quarantined), Ordering::Relaxed);
    st.metrics.observe_ingest(started.elapsed());
    if outcome.quarantined > 0 {
        tracing::debug!(tenant = %key.tenant_id, quarantined = outcome.quarantined, "events quarantined");
    }
    Ok(success())
}

async fn run(
    st: Arc<AppState>,
    route: Route,
    headers: HeaderMap,
    body: Body,
    historical: bool,
) -> Response {
    match handle(&st, route, &headers, body, historical).await {
        Ok(r) => r,
        Err(e) => {
            st.metrics
                .ingest_requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            e.into_response()
        }
    }
}

pub async fn batch(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    run(st, Route::Batch, headers, body, false).await
}

macro_rules! single {
    ($($fn:ident => $ty:literal),*) => {$(
        pub async fn $fn(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
            run(st, Route::Single($ty), headers, body, false).await
        }
    )*};
}
single!(identify => "identify", track => "track", page => "page", screen => "screen", group => "group", alias => "alias");

/// Native events API: `{"events": [...]}`, `{"batch": [...]}` or a bare array; takes a write
/// or secret key; `?historical=true` trusts timestamps for imports.
#[utoipa::path(post, path = "/api/v1/events", tag = "ingest",
    params(("historical" = Option<bool>, Query, description = "trust timestamps as sent (imports)")),
    request_body(content = NativeBody),
    responses((status = 200, description = "committed", body = Success, example = json!({"success": true})),
              (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
              (status = 413, body = crate::error::Problem), (status = 429, body = crate::error::Problem)),
    security(("bearer" = []), ("basic_write_key" = [])))]
pub async fn native(
    State(st): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(
        st,
        Route::Native,
        headers,
        body,
        q.historical.unwrap_or(false),
    )
    .await
}

/// Segment batch. Also mounted at `/v1/b`, and under the configured path prefix.
#[utoipa::path(post, path = "/v1/batch", tag = "ingest",
    request_body(content = BatchBody, description = "gzip accepted (by Content-Encoding or its magic bytes)"),
    responses((status = 200, description = "committed: exactly {\"success\":true}", body = Success),
              (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem, description = "a secret or agent key: the tracking API takes write keys"),
              (status = 413, body = crate::error::Problem), (status = 429, body = crate::error::Problem)),
    security(("basic_write_key" = []), ("bearer" = [])))]
pub async fn batch_doc() {}
