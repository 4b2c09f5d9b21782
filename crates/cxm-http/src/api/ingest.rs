//! The tracking API (Segment's routes, PostHog's `/batch`) and the native events API: bodies
//! read under the cap and gunzipped, keys checked, then the ingest use case; a 200 leaves
//! only after the commit that holds the events.

use cxm_app::ingest::{accept, BatchBody, Incoming, IngestQuery, NativeBody, Route, Success};
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
    accept(
        st,
        Incoming {
            route,
            body: &data,
            header_key: crate::auth::header_credential(headers),
            historical,
            received_at,
            started,
        },
    )
    .await?;
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

/// The Segment tracking API (long and short paths) and PostHog's batch endpoint.
pub fn tracking_routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::post;
    axum::Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/b", post(batch))
        .route("/v1/identify", post(identify))
        .route("/v1/i", post(identify))
        .route("/v1/track", post(track))
        .route("/v1/t", post(track))
        .route("/v1/page", post(page))
        .route("/v1/p", post(page))
        .route("/v1/screen", post(screen))
        .route("/v1/s", post(screen))
        .route("/v1/group", post(group))
        .route("/v1/g", post(group))
        .route("/v1/alias", post(alias))
        .route("/v1/a", post(alias))
        // PostHog's batch endpoint, so its SDKs can send here too
        .route("/batch", post(batch))
        .route("/batch/", post(batch))
}
