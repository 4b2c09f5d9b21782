//! Account health: the worker that keeps per-account daily facts from the event log and the
//! answers, the recompute that scores every account and opens or resolves alerts, the
//! backtest, and the API over them (accounts by band, signals, alerts).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Days, NaiveDate, Utc};
use cxm_domain::health::{self, AccountDay, AccountFacts, Band, SignalSet};
use cxm_store::{AccountHealthRow, Alert, BandCount, NewAlert, Store};
use serde::{Deserialize, Serialize};

use crate::api::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::voc::blocking;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/{id}", get(get_account))
        .route("/api/v1/signals", get(get_signals).put(put_signals))
        .route("/api/v1/signals/backtest", post(run_backtest))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert).post(update_alert))
}

/// The tenant's signal set and its version (0: the defaults, never saved).
pub fn signal_set(store: &dyn Store, tenant: &str) -> ApiResult<(i64, SignalSet)> {
    match store.signal_set(tenant)? {
        Some((v, def)) => Ok((
            v,
            serde_json::from_str(&def).map_err(|e| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("stored signal set is unreadable: {e}"),
                )
            })?,
        )),
        None => Ok((0, SignalSet::default())),
    }
}

pub fn save_signals(
    store: &dyn Store,
    tenant: &str,
    set: &SignalSet,
    actor: &str,
) -> ApiResult<i64> {
    set.validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidDefinition, e))?;
    let def = serde_json::to_string(set)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(store.save_signal_set(tenant, &def, actor)?)
}

const EVENTS_PER_PASS: u32 = 100_000;
const LOG_WINDOW: i64 = 200_000;
const ANSWERS_PER_PASS: u32 = 10_000;

fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// One pass over the next events (or, once caught up, answers) into the accounts' daily
/// facts. Returns the rows read; 0 means up to date.
pub fn advance_facts(store: &dyn Store, tenant: &str) -> ApiResult<usize> {
    let from = store.health_cursor(tenant)?;
    let head = store.max_event_seq()?;
    let mut to = from;
    let mut days: BTreeMap<(String, NaiveDate), AccountDay> = BTreeMap::new();
    let read;
    if from.event_seq < head {
        let upto = head.min(from.event_seq + LOG_WINDOW);
        let events = store.health_events(tenant, from.event_seq, upto, EVENTS_PER_PASS)?;
        to.event_seq = match events.last() {
            Some(last) if events.len() == EVENTS_PER_PASS as usize => last.seq,
            _ => upto,
        };
        for e in &events {
            let Some(account) = &e.account else { continue };
            let d = day_of(e.ts_ms);
            let add = AccountDay::of_event(d, e.name.as_deref(), &e.category);
            days.entry((account.clone(), d))
                .or_insert(AccountDay {
                    day: d,
                    ..Default::default()
                })
                .add(&add);
        }
        read = events.len().max(1);
    } else {
        let answers = store.account_answers(tenant, from.feedback_id, ANSWERS_PER_PASS)?;
        let Some(last) = answers.last() else {
            return Ok(0);
        };
        to.feedback_id = last.id;
        for a in &answers {
            let (Some(account), true) = (&a.account, health::low_score(&a.field_type, a.score))
            else {
                continue;
            };
            let d = day_of(a.collected_at_ms);
            days.entry((account.clone(), d))
                .or_insert(AccountDay {
                    day: d,
                    ..Default::default()
                })
                .low_scores += 1;
        }
        read = answers.len();
    }
    let rows: Vec<(String, AccountDay)> = days
        .into_iter()
        .filter(|(_, d)| !d.is_empty())
        .map(|((g, _), d)| (g, d))
        .collect();
    if !store.add_account_days(tenant, from, to, &rows)? {
        return Ok(0);
    }
    Ok(read)
}

/// The first day of facts an assessment as of `as_of` needs: twice the widest window (a
/// window and the one before it) or the longest inactivity threshold, with a month to spare.
fn horizon(set: &SignalSet, as_of: NaiveDate) -> NaiveDate {
    let days = set
        .signals
        .iter()
        .map(|s| match s.kind {
            health::SignalKind::InactiveDays => s.threshold.ceil() as u32,
            _ => 2 * s.window_days,
        })
        .max()
        .unwrap_or(60)
        + 31;
    as_of
        .checked_sub_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MIN)
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Recomputed {
    pub accounts: usize,
    pub at_risk: usize,
    pub alerts_opened: usize,
    pub alerts_resolved: usize,
    pub millis: u64,
    /// Where the time went: reading facts, scoring, saving scores and alerts.
    pub load_millis: u64,
    pub score_millis: u64,
    pub save_millis: u64,
}

/// Scores every account as of `now`, saves the scores, and opens alerts for accounts that
/// crossed into at risk or whose point-in-time signal fired (resolving those that cleared).
pub fn recompute(store: &dyn Store, tenant: &str, now: DateTime<Utc>) -> ApiResult<Recomputed> {
    let started = Instant::now();
    let (_, set) = signal_set(store, tenant)?;
    let today = now.date_naive();
    let since = horizon(&set, today);
    let accounts = store.accounts_for_health(tenant, since)?;
    // write only what changed: alerts to open that are not open yet, open ones that cleared
    let mut unresolved = HashSet::new();
    for status in ["open", "acknowledged"] {
        for a in store.list_alerts(tenant, Some(status), u32::MAX)? {
            unresolved.insert((a.group_id, a.kind, a.signal));
        }
    }
    let mut out = Recomputed {
        load_millis: started.elapsed().as_millis() as u64,
        ..Default::default()
    };
    let scoring = Instant::now();
    let mut rows = Vec::with_capacity(accounts.len());
    let (mut open, mut clear) = (vec![], vec![]);
    for a in accounts {
        // an account with nothing since the horizon is scored too: it is inactive
        let facts = AccountFacts {
            days: a.days,
            renewal: a.renewal,
            since: Some(since),
        };
        let h = health::assess(&set, &facts, today);
        if h.band == Band::AtRisk {
            out.at_risk += 1;
        }
        // most accounts change nothing: an alert is only built when it is to be opened
        let mut alert = |kind: &str,
                         signal: &str,
                         firing: bool,
                         make: &dyn Fn() -> (String, serde_json::Value)| {
            let key = (a.group_id.clone(), kind.to_string(), signal.to_string());
            match (firing, unresolved.contains(&key)) {
                (true, false) => {
                    let (title, detail) = make();
                    open.push(NewAlert {
                        group_id: key.0,
                        kind: key.1,
                        signal: key.2,
                        title,
                        detail,
                        arr: a.arr,
                        owner: a.owner.clone(),
                    });
                }
                (false, true) => clear.push(key),
                _ => {}
            }
        };
        alert("at_risk", "band", h.band == Band::AtRisk, &|| {
            let fired: Vec<&health::Reading> = h.readings.iter().filter(|r| r.fired).collect();
            (
                format!("{} is at risk (health {})", a.name, h.score),
                serde_json::json!({"score": h.score, "readings": fired}),
            )
        });
        for r in h.readings.iter().filter(|r| r.kind.point_in_time()) {
            alert("signal", &r.signal, r.fired, &|| {
                (
                    format!("{}: {}", a.name, r.detail),
                    serde_json::json!({"score": h.score, "readings": [r]}),
                )
            });
        }
        rows.push(AccountHealthRow {
            readings: serde_json::to_value(&h.readings).unwrap_or_default(),
            group_id: a.group_id,
            name: a.name,
            score: h.score,
            band: h.band.as_str().into(),
            arr: a.arr,
            computed_at_ms: now.timestamp_millis(),
        });
    }
    out.accounts = rows.len();
    out.score_millis = scoring.elapsed().as_millis() as u64;
    let saving = Instant::now();
    store.save_account_health(tenant, &rows, today)?;
    let (opened, resolved) = store.sync_alerts(tenant, &open, &clear, "cxm")?;
    for id in &opened {
        if let Some(a) = store.alert(tenant, *id)? {
            crate::webhooks::emit(store, tenant, "alert.opened", &a);
        }
    }
    out.save_millis = saving.elapsed().as_millis() as u64;
    out.alerts_opened = opened.len();
    out.alerts_resolved = resolved as usize;
    out.millis = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// Replays history: see [`health::backtest`].
pub fn backtest(
    store: &dyn Store,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
    horizon_days: u32,
) -> ApiResult<health::Backtest> {
    if from > to || (to - from).num_days() > 3 * 366 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "from must be before to, at most three years apart",
        ));
    }
    if !(7..=365).contains(&horizon_days) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "horizon_days must be 7 to 365",
        ));
    }
    let (_, set) = signal_set(store, tenant)?;
    let accounts: Vec<AccountFacts> = store
        .accounts_for_health(tenant, horizon(&set, from))?
        .into_iter()
        .filter(|a| !a.days.is_empty())
        .map(|a| AccountFacts {
            days: a.days,
            renewal: a.renewal,
            since: None,
        })
        .collect();
    Ok(health::backtest(&set, &accounts, from, to, horizon_days))
}

/// Brings one tenant's facts up to date (bounded) and rescores when anything moved or when
/// `force`.
pub fn upkeep(store: &dyn Store, tenant: &str, force: bool) -> ApiResult<Option<Recomputed>> {
    upkeep_with(store, tenant, force, None)
}

/// [`upkeep`] with the tenant's value model, which the ticket rules use to raise tickets
/// about top-tier accounts.
pub fn upkeep_with(
    store: &dyn Store,
    tenant: &str,
    force: bool,
    value: Option<&crate::equity::Computed>,
) -> ApiResult<Option<Recomputed>> {
    let mut moved = 0;
    for _ in 0..100 {
        let n = advance_facts(store, tenant)?;
        moved += n;
        if n == 0 {
            break;
        }
    }
    if moved > 0 || force {
        let r = recompute(store, tenant, Utc::now())?;
        crate::tickets::apply_rules_with(store, tenant, value)?;
        crate::tickets::sweep_sla(store, tenant, Utc::now().timestamp_millis())?;
        return Ok(Some(r));
    }
    Ok(None)
}

/// Keeps every tenant's facts current and rescores: after new events, and every ten
/// minutes regardless (inactivity grows while nothing happens).
pub async fn health_worker(state: Arc<AppState>) {
    let mut last_full: HashMap<String, Instant> = HashMap::new();
    loop {
        let tenants = state
            .store
            .run(|s| s.list_tenants())
            .await
            .unwrap_or_default();
        for t in tenants {
            let force = last_full
                .get(&t.id)
                .is_none_or(|at| at.elapsed() > Duration::from_secs(600));
            let id = t.id.clone();
            let value = state.equity.peek(&id);
            match blocking(&state, move |s| {
                upkeep_with(s, &id, force, value.as_deref())
            })
            .await
            {
                Ok(Some(r)) => {
                    last_full.insert(t.id.clone(), Instant::now());
                    if r.alerts_opened > 0 {
                        tracing::info!(tenant = %t.id, accounts = r.accounts, at_risk = r.at_risk, alerts = r.alerts_opened, "account health rescored");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(tenant = %t.id, error = %e.detail, "account health failed")
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

// ---------------------------------------------------------------- API

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// healthy, concerning or at_risk
    pub band: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountHealthRow>,
    pub bands: Vec<BandCount>,
    /// ARR of accounts with an unresolved alert.
    pub revenue_at_risk: f64,
    pub accounts_with_alerts: usize,
}

/// ARR of distinct accounts with an unresolved alert.
pub fn revenue_at_risk(store: &dyn Store, tenant: &str) -> ApiResult<(f64, usize)> {
    let mut seen = HashSet::new();
    let mut arr = 0.0;
    for status in ["open", "acknowledged"] {
        for a in store.list_alerts(tenant, Some(status), 100_000)? {
            if seen.insert(a.group_id.clone()) {
                arr += a.arr;
            }
        }
    }
    Ok((arr, seen.len()))
}

pub fn account_list(store: &dyn Store, tenant: &str, q: &AccountQuery) -> ApiResult<AccountList> {
    if let Some(b) = q.band.as_deref() {
        if Band::parse(b).is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("band must be healthy, concerning or at_risk (got {b:?})"),
            ));
        }
    }
    let accounts = store.account_health(
        tenant,
        q.band.as_deref(),
        q.limit.unwrap_or(100).clamp(1, 1000),
        q.offset.unwrap_or(0),
    )?;
    let (revenue_at_risk, accounts_with_alerts) = revenue_at_risk(store, tenant)?;
    Ok(AccountList {
        accounts,
        bands: store.band_counts(tenant)?,
        revenue_at_risk,
        accounts_with_alerts,
    })
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "health", params(AccountQuery),
    responses((status = 200, body = AccountList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list_accounts(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> ApiResult<Json<AccountList>> {
    let t = p.tenant_id;
    Ok(Json(blocking(&st, move |s| account_list(s, &t, &q)).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountDetail {
    #[serde(flatten)]
    pub health: AccountHealthRow,
    /// Daily scores over the last 90 days.
    pub trend: Vec<TrendPoint>,
    pub alerts: Vec<Alert>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    #[schema(value_type = String)]
    pub day: NaiveDate,
    pub score: f64,
}

pub fn account_detail(store: &dyn Store, tenant: &str, id: &str) -> ApiResult<AccountDetail> {
    let health = store
        .account_health_one(tenant, id)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no health for account {id}")))?;
    let since = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(90))
        .unwrap_or(NaiveDate::MIN);
    let trend = store
        .health_trend(tenant, id, since)?
        .into_iter()
        .map(|(day, score)| TrendPoint { day, score })
        .collect();
    let alerts = store
        .list_alerts(tenant, None, 1000)?
        .into_iter()
        .filter(|a| a.group_id == id)
        .collect();
    Ok(AccountDetail {
        health,
        trend,
        alerts,
    })
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = AccountDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_account(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountDetail>> {
    let t = p.tenant_id;
    Ok(Json(
        blocking(&st, move |s| account_detail(s, &t, &id)).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignalsDoc {
    /// 0 while the defaults are in use.
    pub version: i64,
    #[serde(flatten)]
    pub set: SignalSet,
}

#[utoipa::path(get, path = "/api/v1/signals", tag = "health", responses((status = 200, body = SignalsDoc)), security(("bearer" = [])))]
pub async fn get_signals(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<SignalsDoc>> {
    let t = p.tenant_id;
    let (version, set) = blocking(&st, move |s| signal_set(s, &t)).await?;
    Ok(Json(SignalsDoc { version, set }))
}

/// Replaces the signal set (a new version); accounts are rescored at once.
#[utoipa::path(put, path = "/api/v1/signals", tag = "health", request_body = SignalSet,
    responses((status = 200, body = SignalsDoc), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_signals(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(set): ApiJson<SignalSet>,
) -> ApiResult<Json<SignalsDoc>> {
    p.require_analyst()?;
    let (t, actor) = (p.tenant_id, p.actor);
    let doc = blocking(&st, move |s| {
        let version = save_signals(s, &t, &set, &actor)?;
        recompute(s, &t, Utc::now())?;
        Ok(SignalsDoc { version, set })
    })
    .await?;
    Ok(Json(doc))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BacktestRequest {
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    /// Days after a checkpoint within which a churn notice counts (default 90).
    pub horizon_days: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/signals/backtest", tag = "health", request_body = BacktestRequest,
    responses((status = 200, body = health::Backtest), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn run_backtest(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(req): ApiJson<BacktestRequest>,
) -> ApiResult<Json<health::Backtest>> {
    let t = p.tenant_id;
    Ok(Json(
        blocking(&st, move |s| {
            backtest(s, &t, req.from, req.to, req.horizon_days.unwrap_or(90))
        })
        .await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// open, acknowledged or resolved
    pub status: Option<String>,
    /// Only alerts routed to this owner (the account's `owner`, `csm` or `account_owner` trait).
    pub owner: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
    /// The value tier of each alert's account (when the value model has one), so an inbox
    /// can put the most valuable accounts first.
    pub value_tiers: std::collections::BTreeMap<String, String>,
}

fn valid_status(s: &str) -> ApiResult<()> {
    if ["open", "acknowledged", "resolved"].contains(&s) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("status must be open, acknowledged or resolved (got {s:?})"),
        ))
    }
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "health", params(AlertQuery),
    responses((status = 200, body = AlertList)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertList>> {
    if let Some(s) = q.status.as_deref() {
        valid_status(s)?;
    }
    let t = p.tenant_id.clone();
    let owner = q.owner.clone();
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let alerts = st
        .store
        .run(move |s| {
            // with an owner, look further back so their alerts are not cut by others'
            let scan = if owner.is_some() { 10_000 } else { limit };
            s.list_alerts(&t, q.status.as_deref(), scan)
        })
        .await?
        .into_iter()
        .filter(|a| q.owner.as_ref().is_none_or(|o| &a.owner == o))
        .take(limit as usize)
        .collect::<Vec<Alert>>();
    let value_tiers = st
        .equity
        .peek(&p.tenant_id)
        .map(|c| {
            alerts
                .iter()
                .filter_map(|a| {
                    c.account_tier
                        .get(&a.group_id)
                        .map(|t| (a.group_id.clone(), t.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(AlertList {
        alerts,
        value_tiers,
    }))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "health", params(("id" = i64, Path)),
    responses((status = 200, body = Alert), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_alert(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Alert>> {
    let t = p.tenant_id;
    st.store
        .run(move |s| s.alert(&t, id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no alert {id}")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AlertUpdate {
    /// acknowledged or resolved (or open again)
    pub status: String,
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}", tag = "health", params(("id" = i64, Path)), request_body = AlertUpdate,
    responses((status = 200, body = Alert), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn update_alert(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(u): ApiJson<AlertUpdate>,
) -> ApiResult<(StatusCode, Json<Alert>)> {
    valid_status(&u.status)?;
    if p.role == cxm_store::Role::Viewer {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot do this",
        ));
    }
    let (t, actor) = (p.tenant_id, p.actor);
    let a = blocking(&st, move |s| {
        if !s.set_alert_status(&t, id, &u.status, &actor)? {
            return Err(ApiError::new(ErrorCode::NotFound, format!("no alert {id}")));
        }
        s.alert(&t, id)?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no alert {id}")))
    })
    .await;
    match a {
        Ok(a) => Ok((StatusCode::OK, Json(a))),
        // reopening while another alert for the same account and signal is open
        Err(e) if e.code == ErrorCode::Conflict => Err(ApiError::new(
            ErrorCode::Conflict,
            "an alert for this account and signal is already open",
        )),
        Err(e) => Err(e),
    }
}
