//! Account health: the worker that keeps per-account daily facts from the event log and the
//! answers, the recompute that scores every account and opens or resolves alerts, the
//! backtest, and the API over them (accounts by band, signals, alerts).

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Days, NaiveDate, Utc};
use cxm_domain::health::{self, AccountDay, AccountFacts, Band, SignalSet};
use cxm_store::{AccountHealthRow, Alert, BandCount, NewAlert, Store};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};

/// The tenant's signal set and its version (0: the defaults, never saved).
pub fn signal_set(store: &dyn Store, tenant: &str) -> AppResult<(i64, SignalSet)> {
    match store.signal_set(tenant)? {
        Some((v, def)) => Ok((
            v,
            serde_json::from_str(&def).map_err(|e| {
                AppError::new(
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
) -> AppResult<i64> {
    set.validate()
        .map_err(|e| AppError::new(ErrorCode::InvalidDefinition, e))?;
    let def = serde_json::to_string(set)
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(store.save_signal_set(tenant, &def, actor)?)
}

pub const EVENTS_PER_PASS: u32 = 100_000;
pub const LOG_WINDOW: i64 = 200_000;
pub const ANSWERS_PER_PASS: u32 = 10_000;

pub fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// One pass over the next events (or, once caught up, answers) into the accounts' daily
/// facts. Returns the rows read; 0 means up to date.
pub fn advance_facts(store: &dyn Store, tenant: &str) -> AppResult<usize> {
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
pub fn horizon(set: &SignalSet, as_of: NaiveDate) -> NaiveDate {
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
pub fn recompute(store: &dyn Store, tenant: &str, now: DateTime<Utc>) -> AppResult<Recomputed> {
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
) -> AppResult<health::Backtest> {
    if from > to || (to - from).num_days() > 3 * 366 {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            "from must be before to, at most three years apart",
        ));
    }
    if !(7..=365).contains(&horizon_days) {
        return Err(AppError::new(
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
pub fn upkeep(store: &dyn Store, tenant: &str, force: bool) -> AppResult<Option<Recomputed>> {
    upkeep_with(store, tenant, force, None)
}

/// [`upkeep`] with the tenant's value model, which the ticket rules use to raise tickets
/// about top-tier accounts.
pub fn upkeep_with(
    store: &dyn Store,
    tenant: &str,
    force: bool,
    value: Option<&crate::equity::Computed>,
) -> AppResult<Option<Recomputed>> {
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
pub fn revenue_at_risk(store: &dyn Store, tenant: &str) -> AppResult<(f64, usize)> {
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

pub fn account_list(store: &dyn Store, tenant: &str, q: &AccountQuery) -> AppResult<AccountList> {
    if let Some(b) = q.band.as_deref() {
        if Band::parse(b).is_none() {
            return Err(AppError::new(
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

pub fn account_detail(store: &dyn Store, tenant: &str, id: &str) -> AppResult<AccountDetail> {
    let health = store
        .account_health_one(tenant, id)?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no health for account {id}")))?;
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignalsDoc {
    /// 0 while the defaults are in use.
    pub version: i64,
    #[serde(flatten)]
    pub set: SignalSet,
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

pub fn valid_status(s: &str) -> AppResult<()> {
    if ["open", "acknowledged", "resolved"].contains(&s) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!("status must be open, acknowledged or resolved (got {s:?})"),
        ))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AlertUpdate {
    /// acknowledged or resolved (or open again)
    pub status: String,
}
