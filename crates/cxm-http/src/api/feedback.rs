//! The feedback API: answers in (with the widget's CORS), NPS/CSAT/CES out, and the themes
//! API (list, discover, rename, merge, split).

use cxm_app::feedback::{
    blocking, enrich, expand_choices, report, theme_days, unknown_versions, DiscoverRequest,
    MergeRequest, MetricQuery, MetricReport, RenameRequest, SplitRequest, ThemeQuery, MAX_ANSWERS,
};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use cxm_store::FeedbackOutcome;
use serde_json::Value;

use crate::api::ApiJson;
use crate::api::ApiQuery;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::themes;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/feedback", post(ingest_feedback).options(preflight))
        .route("/api/v1/metrics/{metric}", get(metric))
        .route("/api/v1/themes", get(list_themes))
        .route("/api/v1/themes/discover", post(discover_themes))
        .route("/api/v1/themes/{id}", get(get_theme).patch(rename_theme))
        .route("/api/v1/themes/{id}/merge", post(merge_theme))
        .route("/api/v1/themes/{id}/split", post(split_theme))
}

/// The survey widget posts answers from customers' pages on other origins with a write key
/// (which can only send answers), so this one endpoint allows any origin. No cookies are
/// involved: credentials are never allowed cross-origin.
fn cors(mut r: axum::response::Response) -> axum::response::Response {
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-origin",
        axum::http::HeaderValue::from_static("*"),
    );
    h.insert(
        "access-control-allow-methods",
        axum::http::HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        axum::http::HeaderValue::from_static("authorization, content-type, content-encoding"),
    );
    h.insert(
        "access-control-max-age",
        axum::http::HeaderValue::from_static("86400"),
    );
    r
}

async fn preflight() -> axum::response::Response {
    cors(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Store answers: `{"answers": [...]}` or a bare array, with a write or secret key. All or
/// nothing: one invalid answer rejects the request and every problem is listed.
#[utoipa::path(post, path = "/api/v1/feedback", tag = "feedback",
    request_body(content = Object, description = "{\"answers\": [{response_id, question, type: nps|csat|ces|rating|choice|text, value, channel?, survey_id?, survey_version?, journey?, stage?, agent?, identifier?, account?, collected_at?, comment?, idempotency_key?}]}"),
    responses((status = 200, body = FeedbackOutcome), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn ingest_feedback(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    cors(match store_feedback(&st, &headers, body).await {
        Ok(j) => j.into_response(),
        Err(e) => e.into_response(),
    })
}

async fn store_feedback(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Json<FeedbackOutcome>> {
    let token = crate::auth::header_credential(headers).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingCredentials,
            "send a write or secret key as Authorization: Bearer",
        )
    })?;
    let key = st.keys.lookup(st, &token).await?;
    let data = crate::api::ingest::read_body(headers, body, st.config.max_request_bytes).await?;
    let v: Value = serde_json::from_slice(&data)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid json: {e}")))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => o.get("answers").and_then(Value::as_array).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidBatch,
                "the body must have an answers array",
            )
        })?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidBatch,
                "the body must be an answers array",
            ))
        }
    };
    if list.len() > MAX_ANSWERS {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("at most {MAX_ANSWERS} answers per request"),
        ));
    }
    let now = Utc::now();
    let mut rows = Vec::with_capacity(list.len());
    let mut problems = vec![];
    for (i, a) in list.iter().enumerate() {
        for a in expand_choices(a) {
            match cxm_domain::feedback::parse_answer(&a, now) {
                Ok(answer) => {
                    rows.push(enrich(&st.analyzer, answer).0);
                }
                Err(e) => problems.push(format!("answers[{i}].{}: {}", e.field, e.detail)),
            }
        }
    }
    problems.extend(unknown_versions(st, &key.tenant_id, &rows).await?);
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(20);
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!(
                "{n} invalid answer(s), nothing stored: {}",
                problems.join("; ")
            ),
        ));
    }
    let tenant = key.tenant_id.clone();
    let has_text = rows.iter().any(|r| r.answer.text.is_some());
    let out = st
        .store
        .run(move |s| s.insert_feedback(&tenant, &rows))
        .await?;
    if has_text {
        st.themes_wake.notify_one();
    }
    Ok(Json(out))
}

/// NPS, CSAT or CES over a period: overall with a 95% interval, a trend by day/week/month
/// (optionally sliced), and the change against the previous period of equal length.
#[utoipa::path(get, path = "/api/v1/metrics/{metric}", tag = "feedback", params(("metric" = String, Path, description = "nps, csat or ces"), MetricQuery),
    responses((status = 200, body = MetricReport), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn metric(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    Path(metric): Path<String>,
    ApiQuery(q): ApiQuery<MetricQuery>,
) -> ApiResult<Json<MetricReport>> {
    Ok(Json(report(&st.store, &p.tenant_id, &metric, &q).await?))
}

/// The tenant's themes with their figures: volume trend, sentiment, NPS of mentioners
/// against others (key-driver impact), accounts and ARR mentioning them, quotes.
#[utoipa::path(get, path = "/api/v1/themes", tag = "themes", params(ThemeQuery),
    responses((status = 200, body = themes::ThemeList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list_themes(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    ApiQuery(q): ApiQuery<ThemeQuery>,
) -> ApiResult<Json<themes::ThemeList>> {
    let days = theme_days(q.days)?;
    let all = match q.status.as_deref() {
        None | Some("active") => false,
        Some("all") => true,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "status must be active or all",
            ))
        }
    };
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| themes::list(s, &t, days, all)).await?,
    ))
}

/// One theme (or `noise`) with its figures.
#[utoipa::path(get, path = "/api/v1/themes/{id}", tag = "themes", params(("id" = String, Path), ThemeQuery),
    responses((status = 200, body = themes::ThemeSummary), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_theme(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ThemeQuery>,
) -> ApiResult<Json<themes::ThemeSummary>> {
    let days = theme_days(q.days)?;
    let t = p.tenant_id.clone();
    let list = blocking(&st, move |s| themes::list(s, &t, days, true)).await?;
    list.themes
        .into_iter()
        .find(|t| t.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no theme {id:?}")))
}

/// Re-discovers themes now (it also runs daily). Known themes keep their ids, names, merges
/// and splits; new clusters become new themes; themes not found again retire.
#[utoipa::path(post, path = "/api/v1/themes/discover", tag = "themes", request_body = DiscoverRequest,
    responses((status = 200, body = themes::DiscoverySummary), (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn discover_themes(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    ApiJson(r): ApiJson<DiscoverRequest>,
) -> ApiResult<Json<themes::DiscoverySummary>> {
    p.require_analyst()?;
    let days = theme_days(r.days)?;
    if r.k.is_some_and(|k| !(2..=200).contains(&k)) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "k must be between 2 and 200",
        ));
    }
    let t = p.tenant_id.clone();
    Ok(Json(
        blocking(&st, move |s| themes::discover(s, &t, days, r.k)).await?,
    ))
}

async fn edit_theme(
    st: &Arc<AppState>,
    p: &crate::auth::Principal,
    id: String,
    req: themes::EditRequest,
) -> ApiResult<Json<themes::EditOutcome>> {
    p.require_analyst()?;
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    Ok(Json(
        blocking(st, move |s| themes::edit(s, &t, &id, &req, &actor)).await?,
    ))
}

/// Names a theme; the name survives re-discovery.
#[utoipa::path(patch, path = "/api/v1/themes/{id}", tag = "themes", params(("id" = String, Path)), request_body = RenameRequest,
    responses((status = 200, body = themes::EditOutcome), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn rename_theme(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<RenameRequest>,
) -> ApiResult<Json<themes::EditOutcome>> {
    edit_theme(&st, &p, id, themes::EditRequest::Rename { label: r.label }).await
}

/// Merges a theme into another, now and after every re-discovery.
#[utoipa::path(post, path = "/api/v1/themes/{id}/merge", tag = "themes", params(("id" = String, Path)), request_body = MergeRequest,
    responses((status = 200, body = themes::EditOutcome), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn merge_theme(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<MergeRequest>,
) -> ApiResult<Json<themes::EditOutcome>> {
    edit_theme(&st, &p, id, themes::EditRequest::Merge { into: r.into }).await
}

/// Splits the answers of a theme that use given words into a new theme.
#[utoipa::path(post, path = "/api/v1/themes/{id}/split", tag = "themes", params(("id" = String, Path)), request_body = SplitRequest,
    responses((status = 200, body = themes::EditOutcome), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn split_theme(
    State(st): State<Arc<AppState>>,
    p: crate::auth::Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<SplitRequest>,
) -> ApiResult<Json<themes::EditOutcome>> {
    edit_theme(
        &st,
        &p,
        id,
        themes::EditRequest::Split {
            terms: r.terms,
            label: r.label,
        },
    )
    .await
}
