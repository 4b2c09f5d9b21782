//! Journeys: saving definitions (API, dashboard editor and `cxm journey apply` share
//! [`save`]), the worker pass that walks new events and answers through each journey
//! ([`advance`]), and the metrics read from the stage tallies ([`metrics`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use cxm_domain::journey::{JourneyDefinition, JourneyUnit};
use cxm_domain::journey_progress::{self as progress, StageStats};
use cxm_domain::jps::{self, Score};
use cxm_store::{JourneyCursor, JourneyProgress, Store, StoredJourney};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// Journey files may be this large (a 30-stage journey is a few kilobytes).
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;

/// Reads a definition from YAML or JSON text (JSON is YAML, but its errors read better).
pub fn parse_definition(text: &str) -> Result<JourneyDefinition, String> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(format!(
            "the definition is {} bytes; the limit is {MAX_DEFINITION_BYTES}",
            text.len()
        ));
    }
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not a journey definition: {e}"))
    } else {
        serde_norway::from_str(text).map_err(|e| format!("not a journey definition: {e}"))
    }
}

/// What saving did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Saved {
    pub journey_id: String,
    pub version: i64,
    /// The definition equals the latest version: nothing was saved.
    pub unchanged: bool,
}

/// Validates (event names against the standard taxonomy and what the tenant has sent) and
/// saves a definition as the journey's next version, unless it equals the latest.
pub fn save(
    store: &dyn Store,
    tenant: &str,
    def: &JourneyDefinition,
    actor: &str,
) -> AppResult<Saved> {
    let unknown = std::cell::RefCell::new(None);
    let known = |e: &str| {
        if cxm_domain::taxonomy::known_event(e).is_some() {
            return true;
        }
        match store.event_name_seen(tenant, e) {
            Ok(seen) => seen,
            Err(err) => {
                *unknown.borrow_mut() = Some(err.to_string());
                true
            }
        }
    };
    let checked = def.validate(known);
    if let Some(err) = unknown.into_inner() {
        return Err(AppError::new(ErrorCode::StoreUnavailable, err));
    }
    checked.map_err(|e| AppError::new(ErrorCode::InvalidDefinition, e))?;
    let journey_id = def.journey_id();
    let mut def = def.clone();
    def.id = Some(journey_id.clone());
    let mut carry = false;
    if let Some(latest) = store.journey(tenant, &journey_id, None)? {
        let old = serde_json::from_str::<JourneyDefinition>(&latest.definition).ok();
        if old.as_ref() == Some(&def) {
            return Ok(Saved {
                journey_id,
                version: latest.version,
                unchanged: true,
            });
        }
        // a new name, owner or review date measures the same thing: keep the measurements
        carry = old.is_some_and(|o| o.stages == def.stages && o.unit == def.unit);
    }
    let definition = serde_json::to_string(&def)
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
    let version = store.save_journey(
        tenant,
        &StoredJourney {
            journey_id: journey_id.clone(),
            version: 0,
            name: def.name.clone(),
            owner: def.owner.clone(),
            definition,
            created_by: actor.to_string(),
            created_at_ms: 0,
        },
        carry,
    )?;
    Ok(Saved {
        journey_id,
        version,
        unchanged: false,
    })
}

pub fn definition_of(j: &StoredJourney) -> AppResult<JourneyDefinition> {
    serde_json::from_str(&j.definition).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("stored journey {} is unreadable: {e}", j.journey_id),
        )
    })
}

/// Events read per pass, and the widest slice of the log one pass looks at.
pub const EVENTS_PER_PASS: u32 = 200_000;
/// A pass reads every event of the window: with a LIMIT, the database would gather and sort
/// the whole window's matches each time only to return the first page.
pub const LOG_WINDOW: i64 = 200_000;
pub const ANSWERS_PER_PASS: u32 = 5_000;

/// Customers' positions kept between the passes of one catch-up, so a long walk does not
/// read back what it just wrote. `complete` means every stored position is in `known`
/// (true from the start of a walk that begins at the start of the log).
#[derive(Default)]
pub struct Positions {
    pub known: std::collections::HashMap<String, progress::Position>,
    pub loaded: HashSet<String>,
    pub complete: bool,
}

/// One pass of one journey: walks the next events (or, once the log is caught up, the next
/// answers) and saves the result with the cursor. Returns how many rows it read; 0 means
/// the journey is up to date.
pub fn advance(
    store: &dyn Store,
    tenant: &str,
    j: &StoredJourney,
    cache: &mut Positions,
) -> AppResult<usize> {
    let def = definition_of(j)?;
    let shape = progress::Shape::of(&def);
    let names = progress::walked_names(&def);
    let matches: HashMap<&str, progress::Matches> = names
        .iter()
        .map(|n| (n.as_str(), progress::Matches::of(&def, n)))
        .collect();
    let cursor = store.journey_cursor(tenant, &j.journey_id, j.version)?;
    let head = store.max_event_seq()?;
    let mut stats: Vec<StageStats> = vec![StageStats::default(); def.stages.len()];
    for (i, st) in store.journey_stats(tenant, &j.journey_id, j.version)? {
        if i < stats.len() {
            stats[i] = st;
        }
    }
    let mut changed: HashSet<usize> = HashSet::new();
    let mut out = JourneyProgress {
        from: cursor,
        to: cursor,
        ..Default::default()
    };
    let read;
    if cursor.event_seq < head {
        let upto = head.min(cursor.event_seq + LOG_WINDOW);
        let mut events =
            store.journey_events(tenant, cursor.event_seq, upto, &names, EVENTS_PER_PASS)?;
        if def.unit == JourneyUnit::Account {
            let to = units(store, tenant, events.iter().map(|e| &e.profile_id))?;
            for e in &mut events {
                e.profile_id = e.profile_id.take().and_then(|p| to.get(&p).cloned());
            }
        }
        out.to.event_seq = match events.last() {
            Some(last) if events.len() == EVENTS_PER_PASS as usize => last.seq,
            _ => upto,
        };
        if cursor == JourneyCursor::default() {
            cache.complete = true;
        }
        if !cache.complete {
            let missing: Vec<String> = events
                .iter()
                .filter_map(|e| e.profile_id.clone())
                .filter(|p| !cache.loaded.contains(p))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let found = store.journey_positions(tenant, &j.journey_id, j.version, &missing)?;
            cache.known.extend(found);
            cache.loaded.extend(missing);
        }
        let positions = &mut cache.known;
        let mut moved: HashSet<String> = HashSet::new();
        for e in &events {
            let Some(p) = &e.profile_id else { continue };
            if e.name == progress::CONTEXT_VIEWED {
                if let Some(pos) = positions.get(p) {
                    let next = progress::context_viewed(pos, e.ts_ms, &e.channel);
                    positions.insert(p.clone(), next);
                    moved.insert(p.clone());
                }
                continue;
            }
            let Some(m) = matches.get(e.name.as_str()) else {
                continue;
            };
            let s = progress::step_matched(&shape, positions.get(p), m, e.ts_ms, &e.channel);
            for v in s.closed {
                let stage = &def.stages[v.stage];
                stats[v.stage].close(&v, stage.target_hours, stage.sla_hours);
                changed.insert(v.stage);
                out.visits.push((p.clone(), v));
            }
            if let Some((stage, back)) = s.entered {
                stats[stage].entries += 1;
                if back {
                    stats[stage].came_back += 1;
                }
                changed.insert(stage);
            }
            if let Some(pos) = s.position {
                positions.insert(p.clone(), pos);
                moved.insert(p.clone());
            }
        }
        out.positions = moved
            .into_iter()
            .filter_map(|p| positions.get(&p).map(|pos| (p, pos.clone())))
            .collect();
        read = events.len().max(1);
    } else {
        let answers = store.journey_answers(tenant, cursor.feedback_id, ANSWERS_PER_PASS)?;
        let Some(last) = answers.last() else {
            return Ok(0);
        };
        out.to.feedback_id = last.id;
        let index = def.index();
        let mut stage_of: Vec<Option<usize>> = answers
            .iter()
            .map(|a| {
                (a.journey == j.journey_id)
                    .then(|| index.get(a.stage.as_str()).copied())
                    .flatten()
            })
            .collect();
        let account_of = match def.unit {
            JourneyUnit::Account => {
                Some(units(store, tenant, answers.iter().map(|a| &a.profile_id))?)
            }
            JourneyUnit::Customer => None,
        };
        let unit = |p: &String| match &account_of {
            Some(to) => to.get(p).cloned(),
            None => Some(p.clone()),
        };
        let ask: Vec<(usize, (String, i64))> = answers
            .iter()
            .enumerate()
            .filter(|(i, _)| stage_of[*i].is_none())
            .filter_map(|(i, a)| {
                a.profile_id
                    .as_ref()
                    .and_then(unit)
                    .map(|p| (i, (p, a.collected_at_ms)))
            })
            .collect();
        let found = store.journey_stage_at(
            tenant,
            &j.journey_id,
            j.version,
            &ask.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>(),
        )?;
        for ((i, _), stage) in ask.iter().zip(found) {
            stage_of[*i] = stage;
        }
        for (a, stage) in answers.iter().zip(stage_of) {
            let (Some(stage), Some(answer)) = (stage, crate::journey_scan::stage_answer(a)) else {
                continue;
            };
            if stage < stats.len() {
                stats[stage].feedback.add(answer);
                changed.insert(stage);
            }
        }
        read = answers.len();
    }
    out.stats = changed.into_iter().map(|i| (i, stats[i].clone())).collect();
    if !store.save_journey_progress(tenant, &j.journey_id, j.version, &out)? {
        // another server (or a new version) got there first; the next pass starts from there
        *cache = Positions::default();
        return Ok(0);
    }
    Ok(read)
}

/// The accounts of the profiles named (an account journey walks accounts, not people).
pub fn units<'a>(
    store: &dyn Store,
    tenant: &str,
    profiles: impl Iterator<Item = &'a Option<String>>,
) -> AppResult<HashMap<String, String>> {
    let ps: Vec<String> = profiles
        .flatten()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    Ok(store.accounts_of(tenant, Some(&ps))?)
}

/// Writes the tenant's full blocks of the columnar log; returns how many events went in.
pub fn compact(store: &dyn Store, tenant: &str) -> AppResult<usize> {
    let mut n = 0;
    loop {
        let k = store.compact_events(tenant, cxm_store::columns::BLOCK_EVENTS)?;
        if k == 0 {
            return Ok(n);
        }
        n += k;
    }
}

/// The first pass of journeys never walked: one scan of the columnar log for all of them,
/// each saved as its first pass (positions, visits, tallies and cursor). Journeys it could
/// not save (another server got there) are left to the row walk. Returns the events read.
pub fn first_passes(
    store: &dyn Store,
    tenant: &str,
    fresh: &[StoredJourney],
    caches: &mut HashMap<(String, i64), Positions>,
) -> AppResult<usize> {
    let defs: Vec<(String, JourneyDefinition)> = fresh
        .iter()
        .map(|j| Ok((j.journey_id.clone(), definition_of(j)?)))
        .collect::<AppResult<_>>()?;
    let scan = crate::journey_scan::scan(store, tenant, &defs, true)?;
    for ((j, w), (_, def)) in fresh.iter().zip(&scan.journeys).zip(&defs) {
        let positions: Vec<(String, progress::Position)> = w
            .positions
            .iter()
            .map(|(p, pos)| (scan.unit_name(w, *p).to_string(), scan.named(pos)))
            .collect();
        let out = JourneyProgress {
            from: JourneyCursor::default(),
            to: JourneyCursor {
                event_seq: scan.through_seq,
                feedback_id: scan.answers_through,
            },
            visits: w
                .visits
                .iter()
                .map(|(p, v)| (scan.unit_name(w, *p).to_string(), v.clone()))
                .collect(),
            stats: (0..def.stages.len())
                .map(|i| (i, w.stats[i].clone()))
                .collect(),
            positions: positions.clone(),
        };
        if store.save_journey_progress(tenant, &j.journey_id, j.version, &out)? {
            caches.insert(
                (j.journey_id.clone(), j.version),
                Positions {
                    known: positions.into_iter().collect(),
                    loaded: HashSet::new(),
                    complete: true,
                },
            );
        }
    }
    Ok(scan.events_read.max(1))
}

/// Whether a scan reads mostly blocks: the log after the tenant's last block is short (or
/// the whole log is), so the rows it reads one by one fit in memory and take little time.
pub fn scan_ready(store: &dyn Store, tenant: &str) -> AppResult<bool> {
    const ROW_TAIL: i64 = 1_000_000;
    let head = store.max_event_seq()?;
    Ok(head <= ROW_TAIL || head - store.event_blocks_head(tenant)? <= ROW_TAIL)
}

/// Brings one tenant's journeys up to date, a bounded number of passes per call.
pub fn catch_up(store: &dyn Store, tenant: &str, max_passes: usize) -> AppResult<usize> {
    let mut read = 0;
    let journeys = store.list_journeys(tenant)?;
    let mut caches: HashMap<(String, i64), Positions> = HashMap::new();
    let mut fresh = vec![];
    for j in &journeys {
        if store.journey_cursor(tenant, &j.journey_id, j.version)? == JourneyCursor::default() {
            fresh.push(j.clone());
        }
    }
    if !fresh.is_empty() && store.max_event_seq()? > 0 && scan_ready(store, tenant)? {
        // a scan that cannot be made (a damaged block, say) leaves the walk to the rows
        match first_passes(store, tenant, &fresh, &mut caches) {
            Ok(n) => read += n,
            Err(e) => {
                tracing::warn!(tenant, error = %e.detail, "journey scan failed; walking rows")
            }
        }
    }
    for j in journeys {
        let mut cache = caches
            .remove(&(j.journey_id.clone(), j.version))
            .unwrap_or_default();
        for _ in 0..max_passes {
            let n = advance(store, tenant, &j, &mut cache)?;
            read += n;
            if n == 0 {
                break;
            }
        }
    }
    Ok(read)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeInStage {
    pub p50_hours: Option<f64>,
    pub p90_hours: Option<f64>,
    pub mean_hours: Option<f64>,
    /// Ended visits within the target time, in percent.
    pub within_target_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageFeedback {
    pub answers: u64,
    pub nps: Option<f64>,
    pub csat: Option<f64>,
    pub ces: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageMetrics {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub moment_of_truth: bool,
    pub target_hours: Option<f64>,
    pub sla_hours: Option<f64>,
    /// Stage ids this one leads to.
    pub next: Vec<String>,
    pub entries: u64,
    /// Entries that came back from a later stage.
    pub came_back: u64,
    /// Moved on or finished.
    pub converted: u64,
    /// Went back to an earlier stage.
    pub looped: u64,
    /// In the stage now, within its SLA (or 30 days).
    pub in_progress: u64,
    /// In the stage past its SLA (or 30 days) without progress.
    pub dropped_off: u64,
    pub conversion_pct: Option<f64>,
    pub drop_off_pct: Option<f64>,
    pub loop_pct: Option<f64>,
    pub time: TimeInStage,
    /// Ended visits that took longer than the SLA.
    pub ended_over_sla: u64,
    /// Customers in the stage now for longer than the SLA.
    pub breaching_now: u64,
    pub repeat_contacts: u64,
    /// First-contact resolution: ended visits without a repeat contact within 7 days, in percent.
    pub fcr_pct: Option<f64>,
    /// Repeat contacts that came on another channel (the customer had to explain again).
    pub re_explanations: u64,
    pub feedback: StageFeedback,
    pub score: Score,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewStatus {
    pub every_days: u32,
    #[schema(value_type = String)]
    pub next: NaiveDate,
    pub overdue_days: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flag {
    /// `review_overdue` or `sla_breach`.
    pub kind: String,
    pub stage: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JourneyMetrics {
    pub journey_id: String,
    pub version: i64,
    pub name: String,
    pub owner: String,
    /// Whose paths are measured: each customer's, or each account's people together.
    pub unit: JourneyUnit,
    /// Log position measured up to, and the log's head: equal when up to date.
    pub processed_seq: i64,
    pub head_seq: i64,
    pub answers_through: i64,
    /// `tallies` (kept by the worker), `scan` (the whole log walked for this answer) or
    /// `window` (the whole log walked, counting one window).
    pub source: Source,
    /// The window counted, when one was asked for: entries, visits that began in it and
    /// answers collected in it. In progress and past SLA are, of the customers who entered
    /// the stage in the window, those still in it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpan>,
    pub score: Score,
    pub formula: String,
    pub stages: Vec<StageMetrics>,
    pub review: Option<ReviewStatus>,
    pub flags: Vec<Flag>,
}

pub fn pct(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| (1000.0 * a as f64 / b as f64).round() / 10.0)
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A journey's metrics as of `now`, read from its tallies (no event is read).
pub fn metrics(
    store: &dyn Store,
    tenant: &str,
    j: &StoredJourney,
    now: DateTime<Utc>,
) -> AppResult<JourneyMetrics> {
    let def = definition_of(j)?;
    let stall_cut = stall_cuts(&def, now);
    let cursor: JourneyCursor = store.journey_cursor(tenant, &j.journey_id, j.version)?;
    let head = store.max_event_seq()?;
    // never walked yet (a new journey or version): measured from the columnar log at once
    // rather than shown empty until the worker's first pass is saved
    let scan = if cursor == JourneyCursor::default() && head > 0 && scan_ready(store, tenant)? {
        let one = [(j.journey_id.clone(), def.clone())];
        crate::journey_scan::scan(store, tenant, &one, false)
            .inspect_err(|e| tracing::warn!(tenant, error = %e.detail, "journey scan failed; showing the tallies"))
            .ok()
    } else {
        None
    };
    if let Some(scan) = scan {
        let w = &scan.journeys[0];
        let stalled = crate::journey_scan::stalled(w, &stall_cut);
        let cursor = JourneyCursor {
            event_seq: scan.through_seq,
            feedback_id: scan.answers_through,
        };
        return Ok(metrics_from(
            &def,
            j,
            w.stats.clone(),
            &stalled,
            cursor,
            head,
            now,
            Source::Scan,
        ));
    }
    let mut stats: Vec<StageStats> = vec![StageStats::default(); def.stages.len()];
    for (i, st) in store.journey_stats(tenant, &j.journey_id, j.version)? {
        if i < stats.len() {
            stats[i] = st;
        }
    }
    let stalled = store.journey_stalled(tenant, &j.journey_id, j.version, &stall_cut)?;
    Ok(metrics_from(
        &def,
        j,
        stats,
        &stalled,
        cursor,
        head,
        now,
        Source::Tallies,
    ))
}

/// Journeys' metrics over one window, from one walk of the log for all of them (in the
/// order given).
pub fn metrics_in(
    store: &dyn Store,
    tenant: &str,
    journeys: &[StoredJourney],
    window: crate::journey_scan::Window,
    now: DateTime<Utc>,
) -> AppResult<Vec<JourneyMetrics>> {
    if journeys.is_empty() {
        return Ok(vec![]);
    }
    let defs: Vec<(String, JourneyDefinition)> = journeys
        .iter()
        .map(|j| Ok((j.journey_id.clone(), definition_of(j)?)))
        .collect::<AppResult<_>>()?;
    let head = store.max_event_seq()?;
    let scan = crate::journey_scan::scan_window(store, tenant, &defs, window)?;
    let cursor = JourneyCursor {
        event_seq: scan.through_seq,
        feedback_id: scan.answers_through,
    };
    Ok(journeys
        .iter()
        .zip(&defs)
        .zip(&scan.journeys)
        .map(|((j, (_, def)), w)| {
            let stalled = crate::journey_scan::stalled_in(w, &stall_cuts(def, now), Some(window));
            let mut m = metrics_from(
                def,
                j,
                w.stats.clone(),
                &stalled,
                cursor,
                head,
                now,
                Source::Window,
            );
            m.window = Some(WindowSpan {
                from_ms: window.from_ms,
                to_ms: window.to_ms,
            });
            m
        })
        .collect())
}

/// Per stage, the entry time before which a customer still in it has dropped off (or, with
/// an SLA, is breaching it).
pub fn stall_cuts(def: &JourneyDefinition, now: DateTime<Utc>) -> Vec<(usize, i64)> {
    let now_ms = now.timestamp_millis();
    let hours = |h: f64| (h * 3_600_000.0) as i64;
    def.stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let h = s.sla_hours.unwrap_or(progress::DEFAULT_STALL_HOURS);
            (i, now_ms - hours(h))
        })
        .collect()
}

/// An optional window on the journey API: neither day given is all time, from the tallies.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// First day counted, YYYY-MM-DD UTC (with `to` alone: 90 days before it).
    pub from: Option<String>,
    /// Last day counted, YYYY-MM-DD UTC (with `from` alone: today).
    pub to: Option<String>,
}

impl WindowQuery {
    /// The window asked for, if any: whole UTC days, `from` through `to`.
    pub fn window(&self) -> AppResult<Option<crate::journey_scan::Window>> {
        if self.from.is_none() && self.to.is_none() {
            return Ok(None);
        }
        let to = match self.to.as_deref() {
            Some(t) => crate::feedback::parse_day(t, "to")?,
            None => Utc::now().date_naive(),
        };
        let from = match self.from.as_deref() {
            Some(f) => crate::feedback::parse_day(f, "from")?,
            None => to - chrono::Duration::days(89),
        };
        if from > to || (to - from).num_days() > 3660 {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                "from must be on or before to, and at most ten years apart",
            ));
        }
        Ok(Some(window_of_days(from, to)))
    }
}

/// Whole UTC days `from` through `to` as a window.
pub fn window_of_days(from: NaiveDate, to: NaiveDate) -> crate::journey_scan::Window {
    let ms = |d: NaiveDate| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    };
    crate::journey_scan::Window {
        from_ms: ms(from),
        to_ms: ms(to) + 86_400_000,
    }
}

/// The window a journey was measured over, `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct WindowSpan {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Where a journey's figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The tallies the journey worker keeps (no event read).
    Tallies,
    /// A walk of the whole log just now: the worker has not saved its first pass yet.
    Scan,
    /// A walk of the whole log just now, counting one window.
    Window,
}

#[allow(clippy::too_many_arguments)]
pub fn metrics_from(
    def: &JourneyDefinition,
    j: &StoredJourney,
    stats: Vec<StageStats>,
    stalled: &[u64],
    cursor: JourneyCursor,
    head: i64,
    now: DateTime<Utc>,
    source: Source,
) -> JourneyMetrics {
    let rank = progress::ranks(def);
    let mut flags = vec![];
    let stages: Vec<StageMetrics> = def
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let st = &stats[i];
            let dropped = stalled[i];
            let in_progress = st.open().saturating_sub(dropped);
            let settled = st.ended() + dropped;
            let breaching_now = if s.sla_hours.is_some() { dropped } else { 0 };
            if breaching_now > 0 {
                flags.push(Flag {
                    kind: "sla_breach".into(),
                    stage: Some(s.id.clone()),
                    detail: format!(
                        "{breaching_now} {} have been in {} longer than its {} h SLA (owner: {})",
                        def.unit.plural(),
                        s.name,
                        s.sla_hours.unwrap_or_default(),
                        s.owner
                    ),
                });
            }
            let f = &st.feedback;
            let nps_n = f.promoters + f.passives + f.detractors;
            StageMetrics {
                id: s.id.clone(),
                name: s.name.clone(),
                owner: s.owner.clone(),
                moment_of_truth: s.moment_of_truth,
                target_hours: s.target_hours,
                sla_hours: s.sla_hours,
                next: def
                    .successors(i)
                    .into_iter()
                    .map(|k| def.stages[k].id.clone())
                    .collect(),
                entries: st.entries,
                came_back: st.came_back,
                converted: st.converted(),
                looped: st.looped,
                in_progress,
                dropped_off: dropped,
                conversion_pct: pct(st.converted(), settled),
                drop_off_pct: pct(dropped, settled),
                loop_pct: pct(st.looped, settled),
                time: TimeInStage {
                    p50_hours: st.time_percentile(0.5).map(round2),
                    p90_hours: st.time_percentile(0.9).map(round2),
                    mean_hours: st.time_mean().map(round2),
                    within_target_pct: s
                        .target_hours
                        .and_then(|_| pct(st.within_target, st.timed())),
                },
                ended_over_sla: st.over_sla,
                breaching_now,
                repeat_contacts: st.repeat_contacts,
                fcr_pct: pct(st.ended() - st.repeat_visits.min(st.ended()), st.ended()),
                re_explanations: st.channel_switches,
                feedback: StageFeedback {
                    answers: f.answers(),
                    nps: (nps_n > 0).then(|| {
                        (1000.0 * (f.promoters as f64 - f.detractors as f64) / nps_n as f64).round()
                            / 10.0
                    }),
                    csat: pct(f.csat_top2, f.csat_n),
                    ces: (f.ces_n > 0).then(|| round2(f.ces_sum / f.ces_n as f64)),
                },
                score: jps::stage(def, i, st, dropped),
            }
        })
        .collect();
    let review = def.review.as_ref().map(|r| ReviewStatus {
        every_days: r.every_days,
        next: r.next,
        overdue_days: (now.date_naive() - r.next).num_days().max(0),
    });
    if let Some(r) = review.as_ref().filter(|r| r.overdue_days > 0) {
        flags.insert(
            0,
            Flag {
                kind: "review_overdue".into(),
                stage: None,
                detail: format!(
                    "the review was due on {} ({} days ago); {} reviews it",
                    r.next, r.overdue_days, def.owner
                ),
            },
        );
    }
    JourneyMetrics {
        journey_id: j.journey_id.clone(),
        version: j.version,
        name: def.name.clone(),
        owner: def.owner.clone(),
        unit: def.unit,
        processed_seq: cursor.event_seq,
        head_seq: head,
        answers_through: cursor.feedback_id,
        source,
        window: None,
        score: jps::journey(def, &rank, &stats),
        formula: jps::FORMULA.to_string(),
        stages,
        review,
        flags,
    }
}

// ---------------------------------------------------------------- API

#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneySummary {
    pub journey_id: String,
    pub version: i64,
    pub name: String,
    pub owner: String,
    /// Whose paths are measured: each customer's or each account's.
    pub unit: JourneyUnit,
    pub stages: usize,
    pub jps: Option<f64>,
    pub flags: Vec<Flag>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneyList {
    pub journeys: Vec<JourneySummary>,
}

/// Every journey, each with its JPS and flags (overdue review, SLA breaches).
pub fn summaries(
    store: &dyn Store,
    tenant: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<JourneySummary>> {
    store
        .list_journeys(tenant)?
        .iter()
        .map(|j| Ok(summary(metrics(store, tenant, j, now)?)))
        .collect()
}

/// Every journey measured over one window (one walk of the log for all of them).
pub fn summaries_in(
    store: &dyn Store,
    tenant: &str,
    window: crate::journey_scan::Window,
    now: DateTime<Utc>,
) -> AppResult<Vec<JourneySummary>> {
    let journeys = store.list_journeys(tenant)?;
    Ok(metrics_in(store, tenant, &journeys, window, now)?
        .into_iter()
        .map(summary)
        .collect())
}

fn summary(m: JourneyMetrics) -> JourneySummary {
    JourneySummary {
        journey_id: m.journey_id,
        version: m.version,
        name: m.name,
        owner: m.owner,
        unit: m.unit,
        stages: m.stages.len(),
        jps: m.score.jps,
        flags: m.flags,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JourneyDetail {
    pub journey_id: String,
    pub version: i64,
    pub definition: JourneyDefinition,
    /// Every version, newest first.
    pub history: Vec<StoredJourney>,
}

pub async fn find(st: &App, tenant: &str, id: &str) -> AppResult<StoredJourney> {
    let (t, i) = (tenant.to_string(), id.to_string());
    st.store
        .run(move |s| s.journey(&t, &i, None))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no journey {id}")))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReviewDone {
    /// What the review concluded, kept with the new version.
    #[serde(default)]
    pub note: Option<String>,
}

/// Moves the next review date `every_days` past `now` (a new version).
pub fn mark_reviewed(
    store: &dyn Store,
    tenant: &str,
    j: &StoredJourney,
    actor: &str,
    now: DateTime<Utc>,
) -> AppResult<Saved> {
    let mut def = definition_of(j)?;
    let Some(r) = def.review.as_mut() else {
        return Err(AppError::new(
            ErrorCode::InvalidDefinition,
            "this journey has no review cadence; add review.every_days first",
        ));
    };
    r.next = now.date_naive() + chrono::Days::new(u64::from(r.every_days));
    save(store, tenant, &def, actor)
}

/// Stage counts by id, for callers that want one stage's figures.
pub fn stage_by_id<'a>(m: &'a JourneyMetrics, id: &str) -> Option<&'a StageMetrics> {
    m.stages.iter().find(|s| s.id == id)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// The check's name, e.g. `chat-then-call`.
    pub name: String,
    pub passed: bool,
    /// What was sent and what was found, step by step.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckRuns {
    pub runs: Vec<cxm_store::JourneyCheckRun>,
}
