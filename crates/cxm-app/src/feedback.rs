//! Voice of the customer over HTTP: answers in (`POST /api/v1/feedback`), enriched with
//! sentiment and cues, and NPS/CSAT/CES out (`GET /api/v1/metrics/{metric}`) as trends with
//! intervals, sliced, and compared with the previous period.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use cxm_analytics::scores::{self, Score};
use cxm_store::{FeedbackRow, HistogramRow, Slice};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// Runs blocking theme work (store and clustering) off the async workers.
pub async fn blocking<T: Send + 'static>(
    st: &App,
    f: impl FnOnce(&dyn cxm_store::Store) -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let store = st.store.0.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("theme task failed: {e}")))?
}

/// An answer ready to store: text is scored for sentiment and cues on the way in. Every
/// entry point (API, hosted survey, CSV import) goes through here.
pub fn enrich(
    analyzer: &cxm_analytics::Analyzer,
    answer: cxm_domain::feedback::Answer,
) -> (FeedbackRow, Option<cxm_analytics::Sentiment>) {
    let s = answer.text.as_deref().map(|t| analyzer.analyze(t));
    let row = FeedbackRow {
        // the CX-corrected score is the one every figure uses; VADER's own compound stays
        // beside the cues for anyone comparing the two
        sentiment: s.as_ref().and_then(|s| s.cx_compound),
        cues: s.as_ref().and_then(|s| {
            serde_json::to_string(&StoredCues {
                cues: &s.cues,
                vader_compound: s.compound,
                cx_phrases: s.cx_phrases.iter().map(|h| h.phrase).collect(),
            })
            .ok()
        }),
        answer,
    };
    (row, s)
}

/// What is kept with an answer besides its score: the cues, VADER's uncorrected compound
/// and the CX phrases that corrected it.
#[derive(serde::Serialize)]
struct StoredCues<'a> {
    #[serde(flatten)]
    cues: &'a cxm_analytics::Cues,
    vader_compound: Option<f64>,
    cx_phrases: Vec<&'static str>,
}

pub const MAX_ANSWERS: usize = 1000;

/// A multiple-choice answer may carry its options as an array: it is stored as one answer
/// per option, each with its own idempotency key (`<key>:<option>`).
pub fn expand_choices(a: &Value) -> Vec<Value> {
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
pub async fn unknown_versions(
    st: &App,
    tenant: &str,
    rows: &[FeedbackRow],
) -> AppResult<Vec<String>> {
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
    /// Never true when either period has fewer than 30 answers or the test cannot apply.
    pub significant: bool,
    /// Why the change was not tested, when it was not.
    pub note: Option<String>,
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

pub fn parse_day(s: &str, what: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        AppError::new(
            ErrorCode::InvalidParameter,
            format!("{what} must be YYYY-MM-DD (got {s:?})"),
        )
    })
}

pub fn period_of(day: &str, interval: &str) -> String {
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

pub fn point(period: String, group: Option<String>, s: Score) -> Point {
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

pub fn compute(metric: &str, h: &[(i64, u64)]) -> Option<Score> {
    match metric {
        "nps" => scores::nps(h),
        "csat" => scores::csat(h),
        _ => scores::ces(h),
    }
}

pub fn histogram(rows: &[HistogramRow]) -> Vec<(i64, u64)> {
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
) -> AppResult<MetricReport> {
    let definition = match metric {
        "nps" => "% promoters (9-10) - % detractors (0-6), in [-100, 100]",
        "csat" => "% of answers 4-5 on a 1-5 scale",
        "ces" => "mean on a 1-7 ease scale; share = % easy (5-7)",
        other => {
            return Err(AppError::new(
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
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "from must be on or before to, and at most ten years apart",
        ));
    }
    let interval = q.interval.clone().unwrap_or_else(|| "week".into());
    if !["day", "week", "month"].contains(&interval.as_str()) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "interval must be day, week or month",
        ));
    }
    let by = match q.by.as_deref() {
        None => None,
        Some(b) => Some(Slice::parse(b).ok_or_else(|| {
            AppError::new(
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
    let note = match (&prev_score, &overall_score) {
        (Some(a), Some(b)) => scores::not_comparable(a, b),
        (None, _) => Some("the previous period has no answers".to_string()),
        (_, None) => Some("the current period has no answers".to_string()),
    };
    let p_value = match (&prev_score, &overall_score) {
        (Some(a), Some(b)) if note.is_none() => scores::change_p_value(a, b),
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
            note,
        },
        overall: overall_score.map(|s| point(format!("{f}..{tt}"), None, s)),
        series,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThemeQuery {
    /// Days of answers the figures cover, 1-730 (default 90).
    pub days: Option<u32>,
    /// `all` also lists merged and retired themes.
    pub status: Option<String>,
}

pub fn theme_days(days: Option<u32>) -> AppResult<u32> {
    let days = days.unwrap_or(90);
    if !(1..=730).contains(&days) {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "days must be between 1 and 730",
        ));
    }
    Ok(days)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// Days of text answers to cluster, 1-730 (default 90).
    pub days: Option<u32>,
    /// Themes to look for, 2-200 (default: about sqrt(n/2)).
    pub k: Option<usize>,
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
