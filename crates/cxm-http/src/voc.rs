//! Voice of the customer over HTTP: answers in (`POST /api/v1/feedback`), enriched with
//! sentiment and cues, and NPS/CSAT/CES out (`GET /api/v1/metrics/{metric}`) as trends with
//! intervals, sliced, and compared with the previous period.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use cxm_analytics::scores::{self, Score};
use cxm_store::{FeedbackOutcome, FeedbackRow, HistogramRow, Slice};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::themes;
use crate::AppState;

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

/// Runs blocking theme work (store and clustering) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&dyn cxm_store::Store) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let store = st.store.0.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("theme task failed: {e}")))?
}

/// An answer ready to store: text is scored for sentiment and cues on the way in. Every
/// entry point (API, hosted survey, CSV import) goes through here.
pub fn enrich(
    analyzer: &cxm_analytics::Analyzer,
    answer: cxm_domain::feedback::Answer,
) -> (FeedbackRow, Option<cxm_analytics::Sentiment>) {
    let s = answer.text.as_deref().map(|t| analyzer.analyze(t));
    let row = FeedbackRow {
        sentiment: s.as_ref().and_then(|s| s.compound),
        cues: s.as_ref().and_then(|s| serde_json::to_string(&s.cues).ok()),
        answer,
    };
    (row, s)
}

const MAX_ANSWERS: usize = 1000;

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
    let data = crate::ingest::read_body(headers, body, st.config.max_request_bytes).await?;
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

/// A multiple-choice answer may carry its options as an array: it is stored as one answer
/// per option, each with its own idempotency key (`<key>:<option>`).
fn expand_choices(a: &Value) -> Vec<Value> {
    match (a.get("type").and_then(Value::as_str), a.get("value")) {
        (Some("choice"), Some(Value::Array(options))) if !options.is_empty() => {
            let key = a
                .get("idempotency_key")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| {
                    format!(
                        "{}:{}",
                        a["response_id"].as_str().unwrap_or_default(),
                        a["question"].as_str().unwrap_or_default()
                    )
                });
            options
                .iter()
                .map(|o| {
                    let mut one = a.clone();
                    one["value"] = o.clone();
                    one["idempotency_key"] =
                        format!("{key}:{}", o.as_str().unwrap_or_default()).into();
                    one
                })
                .collect()
        }
        _ => vec![a.clone()],
    }
}

/// Answers naming a version of a survey cxm holds must name a version that exists; answers
/// for surveys cxm does not know (imports from other tools) are taken as they are.
async fn unknown_versions(
    st: &AppState,
    tenant: &str,
    rows: &[FeedbackRow],
) -> ApiResult<Vec<String>> {
    let mut asked: Vec<(String, i64)> = rows
        .iter()
        .filter_map(|r| Some((r.answer.survey_id.clone()?, r.answer.survey_version?)))
        .collect();
    asked.sort();
    asked.dedup();
    if asked.is_empty() {
        return Ok(vec![]);
    }
    let t = tenant.to_string();
    Ok(st
        .store
        .run(move |s| {
            let mut out = vec![];
            for (id, v) in asked {
                if s.survey(&t, &id, Some(v))?.is_some() {
                    continue;
                }
                if let Some((latest, _)) = s.survey(&t, &id, None)? {
                    out.push(format!(
                        "survey_version: survey {id:?} has no version {v} (the latest is {latest})"
                    ));
                }
            }
            Ok(out)
        })
        .await?)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricQuery {
    /// First day, YYYY-MM-DD (default: 90 days ago).
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (default: today).
    pub to: Option<String>,
    /// day, week (default) or month.
    pub interval: Option<String>,
    /// channel, survey, journey, stage or agent.
    pub by: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Point {
    pub period: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub n: u64,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// NPS: % promoters; CSAT: % satisfied; CES: % easy.
    pub share: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Change {
    pub previous_from: String,
    pub previous_to: String,
    pub previous: Option<Point>,
    pub delta: Option<f64>,
    /// Two-sided z test of the difference.
    pub p_value: Option<f64>,
    pub significant: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MetricReport {
    pub metric: String,
    pub definition: &'static str,
    pub from: String,
    pub to: String,
    pub interval: String,
    pub overall: Option<Point>,
    pub series: Vec<Point>,
    pub change: Change,
}

fn parse_day(s: &str, what: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{what} must be YYYY-MM-DD (got {s:?})"),
        )
    })
}

fn period_of(day: &str, interval: &str) -> String {
    let Ok(d) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
        return day.to_string();
    };
    match interval {
        "week" => (d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
            .format("%Y-%m-%d")
            .to_string(),
        "month" => format!("{:04}-{:02}-01", d.year(), d.month()),
        _ => day.to_string(),
    }
}

fn point(period: String, group: Option<String>, s: Score) -> Point {
    let r = |x: f64| (x * 100.0).round() / 100.0;
    Point {
        period,
        group,
        n: s.n,
        value: r(s.value),
        ci_low: r(s.ci_low),
        ci_high: r(s.ci_high),
        share: r(s.share),
    }
}

fn compute(metric: &str, h: &[(i64, u64)]) -> Option<Score> {
    match metric {
        "nps" => scores::nps(h),
        "csat" => scores::csat(h),
        _ => scores::ces(h),
    }
}

fn histogram(rows: &[HistogramRow]) -> Vec<(i64, u64)> {
    let mut m: BTreeMap<i64, u64> = BTreeMap::new();
    for r in rows {
        *m.entry(r.score).or_default() += r.answers;
    }
    m.into_iter().collect()
}

pub async fn report(
    store: &cxm_store::StoreHandle,
    tenant: &str,
    metric: &str,
    q: &MetricQuery,
) -> ApiResult<MetricReport> {
    let definition = match metric {
        "nps" => "% promoters (9-10) - % detractors (0-6), in [-100, 100]",
        "csat" => "% of answers 4-5 on a 1-5 scale",
        "ces" => "mean on a 1-7 ease scale; share = % easy (5-7)",
        other => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no metric {other:?}: use nps, csat or ces"),
            ))
        }
    };
    let today = Utc::now().date_naive();
    let to =
        q.to.as_deref()
            .map(|s| parse_day(s, "to"))
            .transpose()?
            .unwrap_or(today);
    let from = q
        .from
        .as_deref()
        .map(|s| parse_day(s, "from"))
        .transpose()?
        .unwrap_or(to - Duration::days(89));
    if from > to || (to - from).num_days() > 3660 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "from must be on or before to, and at most ten years apart",
        ));
    }
    let interval = q.interval.clone().unwrap_or_else(|| "week".into());
    if !["day", "week", "month"].contains(&interval.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "interval must be day, week or month",
        ));
    }
    let by = match q.by.as_deref() {
        None => None,
        Some(b) => Some(Slice::parse(b).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "by must be channel, survey, journey, stage or agent",
            )
        })?),
    };
    let len = (to - from).num_days() + 1;
    let (prev_from, prev_to) = (from - Duration::days(len), from - Duration::days(1));
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let (t, m) = (tenant.to_string(), metric.to_string());
    let (f, tt, pf, pt) = (fmt(from), fmt(to), fmt(prev_from), fmt(prev_to));
    let (f2, t2, pf2, pt2) = (f.clone(), tt.clone(), pf.clone(), pt.clone());
    let (rows, prev) = store
        .run(move |s| {
            Ok((
                s.feedback_histogram(&t, &m, &f2, &t2, by)?,
                s.feedback_histogram(&t, &m, &pf2, &pt2, None)?,
            ))
        })
        .await?;
    let overall_score = compute(metric, &histogram(&rows));
    let prev_score = compute(metric, &histogram(&prev));
    let mut buckets: BTreeMap<(String, String), Vec<HistogramRow>> = BTreeMap::new();
    for r in rows {
        buckets
            .entry((period_of(&r.day, &interval), r.group.clone()))
            .or_default()
            .push(r);
    }
    let series = buckets
        .into_iter()
        .filter_map(|((period, group), rs)| {
            compute(metric, &histogram(&rs)).map(|s| point(period, by.map(|_| group), s))
        })
        .collect();
    let p_value = match (&prev_score, &overall_score) {
        (Some(a), Some(b)) => scores::change_p_value(a, b),
        _ => None,
    };
    Ok(MetricReport {
        metric: metric.to_string(),
        definition,
        from: f.clone(),
        to: tt.clone(),
        interval,
        change: Change {
            previous_from: pf,
            previous_to: pt,
            delta: match (&prev_score, &overall_score) {
                (Some(a), Some(b)) => Some(((b.value - a.value) * 100.0).round() / 100.0),
                _ => None,
            },
            previous: prev_score.map(|s| point(String::new(), None, s)),
            significant: p_value.is_some_and(|p| p < 0.05),
            p_value,
        },
        overall: overall_score.map(|s| point(format!("{f}..{tt}"), None, s)),
        series,
    })
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThemeQuery {
    /// Days of answers the figures cover, 1-730 (default 90).
    pub days: Option<u32>,
    /// `all` also lists merged and retired themes.
    pub status: Option<String>,
}

fn theme_days(days: Option<u32>) -> ApiResult<u32> {
    let days = days.unwrap_or(90);
    if !(1..=730).contains(&days) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "days must be between 1 and 730",
        ));
    }
    Ok(days)
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// Days of text answers to cluster, 1-730 (default 90).
    pub days: Option<u32>,
    /// Themes to look for, 2-200 (default: about sqrt(n/2)).
    pub k: Option<usize>,
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub label: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The theme that takes this one's answers.
    pub into: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    /// Answers of the theme using any of these words move to the new theme.
    pub terms: Vec<String>,
    pub label: String,
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
