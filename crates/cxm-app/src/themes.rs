//! Themes as a tenant lives with them: discovered over recent text answers (nightly and on
//! demand), new answers placed as they arrive, analysts' renames, merges and splits kept,
//! and per-theme figures (volume trend, sentiment, NPS of mentioners against others, ARR of
//! mentioning accounts) read from the assignments.
//!
//! These functions are blocking (they run the store and the clustering); the API calls them on
//! the blocking pool and the CLI calls them directly, so both behave the same.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{Datelike, Duration, TimeZone, Utc};
use cxm_analytics::scores;
use cxm_analytics::text::Tokenizer;
use cxm_analytics::themes::{EditError, Options, Registry, Status, Theme, Vocabulary, NOISE};
use cxm_store::{arr_of, Store, TextAnswer, ThemeAssignment, ThemeEdit, ThemeSave, ThemeState};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};

/// Text answers one discovery clusters: the newest in the window (k-means on 20,000 short
/// texts takes a few seconds on one core). Every other text answer is then placed in the
/// new themes by its nearest centroid.
pub const DISCOVERY_SAMPLE: u32 = 20_000;
/// A discovery needs this many text answers to say anything.
pub const MIN_TEXTS: usize = 10;

/// Registry edits are read-modify-write; one at a time per process.
static REGISTRY: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn corrupt(e: serde_json::Error) -> AppError {
    tracing::error!(error = %e, "theme registry does not parse");
    AppError::new(ErrorCode::Internal, "the theme registry is unreadable")
}

fn load(store: &dyn Store, tenant: &str) -> AppResult<(ThemeState, Registry)> {
    let state = store.load_themes(tenant)?;
    let mut reg = Registry::default();
    if state.version > 0 {
        reg.vocabulary = serde_json::from_str::<Vocabulary>(&state.vocabulary).map_err(corrupt)?;
        reg.noise_below = state.noise_below as f32;
    }
    for doc in &state.themes {
        reg.themes
            .push(serde_json::from_str::<Theme>(doc).map_err(corrupt)?);
    }
    Ok((state, reg))
}

fn docs(reg: &Registry) -> AppResult<Vec<(String, String)>> {
    reg.themes
        .iter()
        .map(|t| Ok((t.id.clone(), serde_json::to_string(t).map_err(corrupt)?)))
        .collect()
}

fn day_of(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn assignment(a: &TextAnswer, theme_id: String) -> ThemeAssignment {
    ThemeAssignment {
        feedback_id: a.id,
        theme_id,
        day: day_of(a.collected_at_ms),
        response_id: a.response_id.clone(),
        sentiment: a.sentiment,
        account: a.account.clone(),
    }
}

fn new_theme_id() -> String {
    format!("th_{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiscoverySummary {
    /// Registry version after this discovery.
    pub version: i64,
    pub answers: usize,
    pub k: usize,
    /// Clusters recognised as known themes (their names and edits kept).
    pub matched: usize,
    pub created: usize,
    pub retired: usize,
    /// Answers in the noise bucket.
    pub noise: usize,
    /// Other text answers (beyond the clustered sample) placed in the new themes.
    pub placed: usize,
}

/// Clusters the newest text answers of the last `days` days afresh and folds the result
/// into the tenant's registry. Fails with `invalid_parameter` when there is too little text.
pub fn discover(
    store: &dyn Store,
    tenant: &str,
    days: u32,
    k: Option<usize>,
) -> AppResult<DiscoverySummary> {
    let to = Utc::now().timestamp_millis() + 1;
    let from = to - i64::from(days) * 86_400_000;
    let texts = store.text_answers(tenant, from, to, DISCOVERY_SAMPLE)?;
    if texts.len() < MIN_TEXTS {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!(
                "{} text answers in the last {days} days; a discovery needs at least {MIN_TEXTS}",
                texts.len()
            ),
        ));
    }
    let refs: Vec<&str> = texts.iter().map(|a| a.text.as_str()).collect();
    let _guard = lock();
    let (_, mut reg) = load(store, tenant)?;
    let out = reg.rediscover(
        &refs,
        &Options {
            k,
            ..Options::default()
        },
        new_theme_id,
    );
    let vocabulary = serde_json::to_string(&reg.vocabulary).map_err(corrupt)?;
    let version = store.save_themes(
        tenant,
        &ThemeSave {
            discovery: Some((vocabulary, f64::from(reg.noise_below))),
            themes: docs(&reg)?,
            edit: None,
        },
    )?;
    let rows: Vec<ThemeAssignment> = texts
        .iter()
        .zip(&out.assignments)
        .map(|(a, t)| assignment(a, t.clone()))
        .collect();
    for chunk in rows.chunks(5000) {
        store.assign_themes(tenant, chunk)?;
    }
    // every other text answer, older or beyond the sample, moves to the new themes too, so
    // theme volumes count all answers and not only the clustered sample
    let sampled: HashSet<i64> = texts.iter().map(|a| a.id).collect();
    let placer = reg.placer();
    let tok = Tokenizer::default();
    let mut after = 0;
    let mut placed = 0;
    loop {
        let batch = store.text_answers_after(tenant, after, 5000)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let rows: Vec<ThemeAssignment> = batch
            .iter()
            .filter(|a| !sampled.contains(&a.id))
            .map(|a| assignment(a, placer.assign(&tok, &a.text)))
            .collect();
        store.assign_themes(tenant, &rows)?;
        placed += rows.len();
    }
    store.refresh_theme_rollup(tenant)?;
    tracing::info!(
        tenant,
        version,
        answers = texts.len(),
        k = out.k,
        created = out.created,
        retired = out.retired,
        noise = out.noise,
        "themes discovered"
    );
    Ok(DiscoverySummary {
        version,
        answers: texts.len(),
        k: out.k,
        matched: out.matched,
        created: out.created,
        retired: out.retired,
        noise: out.noise,
        placed,
    })
}

/// Gives text answers that arrived since the last placement their theme. Nothing happens
/// before a tenant's first discovery.
pub fn place_new(store: &dyn Store, tenant: &str) -> AppResult<usize> {
    let _guard = lock();
    let (state, reg) = load(store, tenant)?;
    if state.version == 0 {
        return Ok(0);
    }
    place_with(store, tenant, &reg)
}

fn place_with(store: &dyn Store, tenant: &str, reg: &Registry) -> AppResult<usize> {
    const BATCH: u32 = 2000;
    let tok = Tokenizer::default();
    let placer = reg.placer();
    let mut placed = 0;
    loop {
        let after = store.theme_watermark(tenant)?;
        let batch = store.text_answers_after(tenant, after, BATCH)?;
        let rows: Vec<ThemeAssignment> = batch
            .iter()
            .map(|a| assignment(a, placer.assign(&tok, &a.text)))
            .collect();
        store.place_themes(tenant, &rows)?;
        placed += rows.len();
        if batch.len() < BATCH as usize {
            return Ok(placed);
        }
    }
}

/// What an analyst changes about a theme.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum EditRequest {
    Rename { label: String },
    Merge { into: String },
    Split { terms: Vec<String>, label: String },
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EditOutcome {
    /// The theme edited, or the new theme a split created.
    pub theme_id: String,
    /// Answers that moved to another theme.
    pub moved: usize,
}

/// Applies an edit, records who made it, and moves the answers it affects.
pub fn edit(
    store: &dyn Store,
    tenant: &str,
    theme_id: &str,
    req: &EditRequest,
    actor: &str,
) -> AppResult<EditOutcome> {
    let _guard = lock();
    let (state, mut reg) = load(store, tenant)?;
    if state.version == 0 {
        return Err(AppError::new(
            ErrorCode::NotFound,
            "no themes yet: run a discovery first",
        ));
    }
    let to_api = |e: EditError| match e {
        EditError::NotFound(m) => AppError::new(ErrorCode::NotFound, m),
        EditError::Invalid(m) => AppError::new(ErrorCode::InvalidParameter, m),
    };
    let (kind, detail, result_id, affected) = match req {
        EditRequest::Rename { label } => {
            reg.rename(theme_id, label).map_err(to_api)?;
            (
                "rename",
                label.trim().to_string(),
                theme_id.to_string(),
                vec![],
            )
        }
        EditRequest::Merge { into } => {
            reg.merge(theme_id, into).map_err(to_api)?;
            let detail = format!("into {into}");
            (
                "merge",
                detail,
                into.clone(),
                vec![theme_id.to_string(), into.clone()],
            )
        }
        EditRequest::Split { terms, label } => {
            let id = new_theme_id();
            reg.split(theme_id, terms, label, id.clone())
                .map_err(to_api)?;
            let detail = format!("{} by {}", label.trim(), terms.join(", "));
            ("split", detail, id, vec![theme_id.to_string()])
        }
    };
    store.save_themes(
        tenant,
        &ThemeSave {
            discovery: None,
            themes: docs(&reg)?,
            edit: Some(ThemeEdit {
                theme_id: theme_id.to_string(),
                kind: kind.into(),
                detail,
                actor: actor.into(),
                created_at_ms: 0,
            }),
        },
    )?;
    // move the answers the edit concerns: the merged theme's into its target, the matching
    // answers of a split parent into the split
    let mut moved = vec![];
    for id in &affected {
        for a in store.theme_members(tenant, std::slice::from_ref(id), 1_000_000)? {
            let now = reg.resolve(id, &Registry::stems(&a.text));
            if &now != id {
                moved.push(assignment(&a, now));
            }
        }
    }
    for chunk in moved.chunks(5000) {
        store.assign_themes(tenant, chunk)?;
    }
    if !moved.is_empty() {
        store.refresh_theme_rollup(tenant)?;
    }
    tracing::info!(
        tenant,
        theme = theme_id,
        kind,
        actor,
        moved = moved.len(),
        "theme edited"
    );
    Ok(EditOutcome {
        theme_id: result_id,
        moved: moved.len(),
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Monday of the week.
    pub week: String,
    pub answers: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeSummary {
    pub id: String,
    /// The analyst's name if given, else the discovered label.
    pub name: String,
    pub label: String,
    pub renamed: bool,
    /// active, merged or retired (`noise` for the bucket of unplaced answers).
    pub status: String,
    pub top_terms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split_terms: Vec<String>,
    pub answers: u64,
    /// Share of the window's placed answers, in percent.
    pub share: f64,
    /// Answers per week over the window.
    pub trend: Vec<TrendPoint>,
    /// Last 7 days against the 7 before, in percent (None when the earlier week had none).
    pub week_change: Option<f64>,
    /// Mean VADER compound of the theme's English answers.
    pub sentiment: Option<f64>,
    /// NPS of responses that mention the theme, and of all other responses.
    pub nps_mentioners: Option<f64>,
    pub nps_others: Option<f64>,
    /// nps_mentioners - nps_others: what the theme does to NPS (key-driver impact).
    pub nps_impact: Option<f64>,
    /// Accounts whose answers mention the theme, and their summed ARR.
    pub accounts: usize,
    pub arr: f64,
    pub quotes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeList {
    pub days: u32,
    /// Registry version (0: no discovery yet).
    pub version: i64,
    pub discovered_at: Option<String>,
    /// Placed answers in the window, noise included.
    pub answers: u64,
    pub themes: Vec<ThemeSummary>,
    /// Recent analyst edits, newest first.
    pub edits: Vec<ThemeEdit>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn monday(day: &str) -> String {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(|d| {
            (d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|_| day.to_string())
}

/// Every theme with its figures over the last `days` days. `all` includes merged and
/// retired themes; the noise bucket is listed last when it holds answers.
pub fn list(store: &dyn Store, tenant: &str, days: u32, all: bool) -> AppResult<ThemeList> {
    let today = Utc::now().date_naive();
    let from_date = today - Duration::days(i64::from(days.max(1)) - 1);
    list_between(store, tenant, from_date, today, all)
}

/// Every theme with its figures from `from_date` to `today` (both included; the dashboard's
/// date range). "This week" is the seven days ending on `today`.
pub fn list_between(
    store: &dyn Store,
    tenant: &str,
    from_date: chrono::NaiveDate,
    today: chrono::NaiveDate,
    all: bool,
) -> AppResult<ThemeList> {
    let days = ((today - from_date).num_days() + 1).max(1) as u32;
    let (state, reg) = load(store, tenant)?;
    let (from, to) = (
        from_date.format("%Y-%m-%d").to_string(),
        today.format("%Y-%m-%d").to_string(),
    );
    let week_ago = (today - Duration::days(6)).format("%Y-%m-%d").to_string();
    let two_weeks_ago = (today - Duration::days(13)).format("%Y-%m-%d").to_string();
    let daily = store.theme_days(tenant, &from, &to)?;
    let nps = store.theme_nps(tenant, &from, &to)?;
    let accounts = store.theme_accounts(tenant, &from, &to)?;
    // mentioners come as NPS categories (10, 7, 0): fold every answer the same way
    let all_nps: Vec<(i64, u64)> = {
        let mut h: BTreeMap<i64, u64> = BTreeMap::new();
        for r in store.feedback_histogram(tenant, "nps", &from, &to, None)? {
            let category = match r.score {
                9.. => 10,
                7 | 8 => 7,
                _ => 0,
            };
            *h.entry(category).or_default() += r.answers;
        }
        h.into_iter().collect()
    };
    let edits = store.theme_edits(tenant, 20)?;

    #[derive(Default)]
    struct Acc {
        answers: u64,
        sent_sum: f64,
        sent_n: u64,
        weeks: BTreeMap<String, u64>,
        last7: u64,
        prev7: u64,
        nps: BTreeMap<i64, u64>,
        accounts: HashSet<String>,
        arr: f64,
    }
    let mut acc: HashMap<String, Acc> = HashMap::new();
    for d in &daily {
        let a = acc.entry(d.theme_id.clone()).or_default();
        a.answers += d.answers;
        a.sent_sum += d.sentiment_sum;
        a.sent_n += d.sentiment_n;
        *a.weeks.entry(monday(&d.day)).or_default() += d.answers;
        if d.day >= week_ago {
            a.last7 += d.answers;
        } else if d.day >= two_weeks_ago {
            a.prev7 += d.answers;
        }
    }
    for n in &nps {
        *acc.entry(n.theme_id.clone())
            .or_default()
            .nps
            .entry(n.score)
            .or_default() += n.responses;
    }
    for r in &accounts {
        let a = acc.entry(r.theme_id.clone()).or_default();
        if a.accounts.insert(r.account.clone()) {
            let traits: serde_json::Value =
                serde_json::from_str(&r.traits).unwrap_or(serde_json::Value::Null);
            a.arr += arr_of(&traits).unwrap_or(0.0);
        }
    }
    let total: u64 = acc.values().map(|a| a.answers).sum();
    let weeks: Vec<String> = {
        let mut w = vec![];
        let mut d =
            chrono::NaiveDate::parse_from_str(&monday(&from), "%Y-%m-%d").unwrap_or(from_date);
        while d <= today {
            w.push(d.format("%Y-%m-%d").to_string());
            d += Duration::days(7);
        }
        w
    };
    let summary = |t: Option<&Theme>, id: &str| -> ThemeSummary {
        let empty = Acc::default();
        let a = acc.get(id).unwrap_or(&empty);
        let mentioners: Vec<(i64, u64)> = a.nps.iter().map(|(s, n)| (*s, *n)).collect();
        let others: Vec<(i64, u64)> = all_nps
            .iter()
            .map(|(s, n)| (*s, n.saturating_sub(a.nps.get(s).copied().unwrap_or(0))))
            .collect();
        let m = scores::nps(&mentioners).map(|s| round(s.value, 1));
        let o = scores::nps(&others).map(|s| round(s.value, 1));
        ThemeSummary {
            id: id.to_string(),
            name: t.map_or("Unclustered".into(), |t| t.name().to_string()),
            label: t.map_or("answers far from every theme".into(), |t| t.label.clone()),
            renamed: t.is_some_and(|t| t.custom_label.is_some()),
            status: match t.map(|t| t.status) {
                None => "noise",
                Some(Status::Active) => "active",
                Some(Status::Merged) => "merged",
                Some(Status::Retired) => "retired",
            }
            .into(),
            top_terms: t.map(|t| t.top_terms.clone()).unwrap_or_default(),
            merged_into: t.and_then(|t| t.merged_into.clone()),
            split_from: t.and_then(|t| t.split_from.clone()),
            split_terms: t.map(|t| t.split_terms.clone()).unwrap_or_default(),
            answers: a.answers,
            share: if total > 0 {
                round(a.answers as f64 / total as f64 * 100.0, 1)
            } else {
                0.0
            },
            trend: weeks
                .iter()
                .map(|w| TrendPoint {
                    week: w.clone(),
                    answers: a.weeks.get(w).copied().unwrap_or(0),
                })
                .collect(),
            week_change: (a.prev7 > 0).then(|| {
                round(
                    (a.last7 as f64 - a.prev7 as f64) / a.prev7 as f64 * 100.0,
                    1,
                )
            }),
            sentiment: (a.sent_n > 0).then(|| round(a.sent_sum / a.sent_n as f64, 3)),
            nps_mentioners: m,
            nps_others: o,
            nps_impact: m.zip(o).map(|(a, b)| round(a - b, 1)),
            accounts: a.accounts.len(),
            arr: round(a.arr, 2),
            quotes: t.map(|t| t.quotes.clone()).unwrap_or_default(),
        }
    };
    let mut themes: Vec<ThemeSummary> = reg
        .themes
        .iter()
        .filter(|t| all || t.status == Status::Active)
        .map(|t| summary(Some(t), &t.id))
        .collect();
    themes.sort_by(|a, b| b.answers.cmp(&a.answers).then(a.name.cmp(&b.name)));
    if acc.get(NOISE).is_some_and(|a| a.answers > 0) {
        themes.push(summary(None, NOISE));
    }
    Ok(ThemeList {
        days,
        version: state.version,
        discovered_at: (state.version > 0).then(|| {
            Utc.timestamp_millis_opt(state.discovered_at_ms)
                .single()
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
        answers: total,
        themes,
        edits,
    })
}

/// Whether a text fits none of the tenant's themes (it would land in the noise bucket):
/// something the company has not heard about yet, worth a follow-up. False before the first
/// discovery.
pub fn is_new_topic(store: &dyn Store, tenant: &str, text: &str) -> AppResult<bool> {
    if text.trim().is_empty() {
        return Ok(false);
    }
    let (state, reg) = load(store, tenant)?;
    Ok(state.version > 0 && reg.placer().assign(&Tokenizer::default(), text) == NOISE)
}

/// What the hourly job does for one tenant: discover when the last discovery is older than
/// `every` (or there was none and there is enough text), then place new answers.
pub fn upkeep(store: &dyn Store, tenant: &str, every: std::time::Duration) -> AppResult<()> {
    let state = store.load_themes(tenant)?;
    let age_ms = Utc::now().timestamp_millis() - state.discovered_at_ms;
    if state.version == 0 || age_ms >= every.as_millis() as i64 {
        match discover(store, tenant, 90, None) {
            Ok(_) => {}
            // too little text is not a failure of the job
            Err(e) if e.code == ErrorCode::InvalidParameter => {}
            Err(e) => return Err(e),
        }
    }
    place_new(store, tenant)?;
    Ok(())
}
