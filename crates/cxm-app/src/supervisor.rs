//! The one place that runs background work. Every loop cxm keeps (theme placement and
//! re-discovery, the journey walker, health scoring, survey triggers, webhook and mail
//! delivery, retention, audit checkpoints, guardrails, equity, the dedup window) is a named
//! [`Worker`]: one pass at a time, for one tenant or once for the whole store, with a pause
//! between passes. The supervisor starts them, stops them gracefully (a pass in progress
//! finishes), and keeps what an operator asks of each: when it last ran, how far behind it is,
//! how often it failed.
//!
//! Which passes run on this process is the [`Placement`]'s answer, asked before every pass:
//! one process runs everything; a cluster answers per worker and tenant.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{App, AppResult};

pub type PassFuture<'a> = Pin<Box<dyn Future<Output = AppResult<Pass>> + Send + 'a>>;

/// Whether a worker is handed tenants one at a time or runs once over the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PerTenant,
    Once,
}

/// What a pass found: nothing left to do (pause), or more waiting (go again at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Idle,
    More,
}

/// A background job. Its state between passes lives in the value itself.
pub trait Worker: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn scope(&self) -> Scope;
    /// The pause after a pass with nothing more to do.
    fn every(&self) -> Duration;
    /// How long after the start the first pass waits (an hourly purge need not run at boot).
    fn first_after(&self) -> Duration {
        Duration::ZERO
    }
    /// Something that, when notified, cuts the pause short.
    fn wake<'a>(&self, _app: &'a App) -> Option<&'a tokio::sync::Notify> {
        None
    }
    /// One pass; `tenant` is set for [`Scope::PerTenant`] workers.
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a>;
}

/// Decides which worker passes this process runs. The cluster answers per tenant; one process
/// answers yes to all.
pub trait Placement: Send + Sync + 'static {
    fn runs(&self, worker: &str, tenant: Option<&str>) -> bool;
}

/// Everything runs here.
pub struct Everything;

impl Placement for Everything {
    fn runs(&self, _worker: &str, _tenant: Option<&str>) -> bool {
        true
    }
}

/// What the supervisor knows of one worker.
#[derive(Default)]
pub struct WorkerStats {
    pub passes: AtomicU64,
    pub errors: AtomicU64,
    /// Unix ms when the last pass ended, and when the last pass with no error ended.
    pub last_run_ms: AtomicI64,
    pub last_ok_ms: AtomicI64,
    pub running: AtomicBool,
}

/// A worker's figures at one moment, for `/readyz` and the CLI.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WorkerStatus {
    pub scope: &'static str,
    pub passes: u64,
    pub errors: u64,
    /// Unix ms when the last pass ended; absent before the first.
    pub last_run_ms: Option<i64>,
    /// Seconds since the last pass that ended without an error (since the start when there
    /// was none yet), less the worker's own pause: how far behind its schedule it is.
    pub lag_seconds: f64,
    pub running: bool,
}

struct Entry {
    name: &'static str,
    scope: Scope,
    every: Duration,
    stats: Arc<WorkerStats>,
}

/// Running workers. Dropping it does not stop them; call [`Supervisor::stop`].
pub struct Supervisor {
    roster: Arc<Roster>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The workers' names and figures, readable while they run (`/readyz`, `/metrics`).
pub struct Roster {
    entries: Vec<Entry>,
    started_ms: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Supervisor {
    /// Starts every worker on the current runtime.
    pub fn start(
        app: Arc<App>,
        workers: Vec<Box<dyn Worker>>,
        placement: Arc<dyn Placement>,
    ) -> Supervisor {
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut entries = vec![];
        let mut handles = vec![];
        for w in workers {
            let stats = Arc::new(WorkerStats::default());
            entries.push(Entry {
                name: w.name(),
                scope: w.scope(),
                every: w.every(),
                stats: stats.clone(),
            });
            let (app, placement, rx) = (app.clone(), placement.clone(), stop.subscribe());
            handles.push(tokio::spawn(run(app, w, placement, stats, rx)));
        }
        Supervisor {
            roster: Arc::new(Roster {
                entries,
                started_ms: now_ms(),
            }),
            handles,
            stop,
        }
    }

    pub fn roster(&self) -> Arc<Roster> {
        self.roster.clone()
    }

    /// Asks every worker to stop after its current pass and waits up to `grace` for them;
    /// any still running then is cut off.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (h, e) in self.handles.into_iter().zip(&self.roster.entries) {
            let abort = h.abort_handle();
            if tokio::time::timeout_at(deadline, h).await.is_err() {
                tracing::warn!(worker = e.name, "worker did not stop in time; cut off");
                abort.abort();
            }
        }
    }
}

impl Roster {
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }

    pub fn status(&self) -> BTreeMap<&'static str, WorkerStatus> {
        let now = now_ms();
        self.entries
            .iter()
            .map(|e| {
                let s = &e.stats;
                let last_run = s.last_run_ms.load(Ordering::Relaxed);
                let last_ok = s.last_ok_ms.load(Ordering::Relaxed);
                let since = if last_ok > 0 {
                    last_ok
                } else {
                    self.started_ms
                };
                let behind = (now - since) as f64 / 1000.0 - e.every.as_secs_f64();
                (
                    e.name,
                    WorkerStatus {
                        scope: match e.scope {
                            Scope::PerTenant => "tenant",
                            Scope::Once => "once",
                        },
                        passes: s.passes.load(Ordering::Relaxed),
                        errors: s.errors.load(Ordering::Relaxed),
                        last_run_ms: (last_run > 0).then_some(last_run),
                        lag_seconds: (behind.max(0.0) * 10.0).round() / 10.0,
                        running: s.running.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }

    /// The workers' figures in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let status = self.status();
        let mut s = String::new();
        let mut family =
            |name: &str, help: &str, kind: &str, value: &dyn Fn(&WorkerStatus) -> String| {
                let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (w, st) in &status {
                    let _ = writeln!(s, "{name}{{worker=\"{w}\"}} {}", value(st));
                }
            };
        family(
            "cxm_worker_passes_total",
            "background worker passes run",
            "counter",
            &|st| st.passes.to_string(),
        );
        family(
            "cxm_worker_errors_total",
            "background worker passes that failed (per tenant for tenant workers)",
            "counter",
            &|st| st.errors.to_string(),
        );
        family(
            "cxm_worker_last_run_timestamp_seconds",
            "when a worker's last pass ended",
            "gauge",
            &|st| format!("{}", st.last_run_ms.unwrap_or(0) as f64 / 1000.0),
        );
        family(
            "cxm_worker_lag_seconds",
            "how far a worker is behind its schedule",
            "gauge",
            &|st| st.lag_seconds.to_string(),
        );
        s
    }
}

/// Waits `d`, or less when woken; false when the supervisor is stopping.
async fn pause(
    d: Duration,
    wake: Option<&tokio::sync::Notify>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    let woken = async {
        match wake {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = woken => true,
        _ = stop.changed() => false,
    }
}

async fn run(
    app: Arc<App>,
    w: Box<dyn Worker>,
    placement: Arc<dyn Placement>,
    stats: Arc<WorkerStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let name = w.name();
    if !w.first_after().is_zero() && !pause(w.first_after(), None, &mut stop).await {
        return;
    }
    loop {
        stats.running.store(true, Ordering::Relaxed);
        let (more, failed) = one_round(&app, w.as_ref(), placement.as_ref(), &stats).await;
        stats.running.store(false, Ordering::Relaxed);
        let end = now_ms();
        stats.passes.fetch_add(1, Ordering::Relaxed);
        stats.last_run_ms.store(end, Ordering::Relaxed);
        if !failed {
            stats.last_ok_ms.store(end, Ordering::Relaxed);
        }
        if *stop.borrow() {
            return;
        }
        // more may be waiting (a long log after a new journey): go on without a pause
        if more {
            tokio::task::yield_now().await;
            continue;
        }
        if !pause(w.every(), w.wake(&app), &mut stop).await {
            tracing::debug!(worker = name, "worker stopped");
            return;
        }
    }
}

/// One pass over every tenant this process runs the worker for (or the one pass of a
/// store-wide worker). A tenant's failure is logged and counted; the others still run.
async fn one_round(
    app: &Arc<App>,
    w: &dyn Worker,
    placement: &dyn Placement,
    stats: &WorkerStats,
) -> (bool, bool) {
    let name = w.name();
    let mut failed = false;
    let mut more = false;
    match w.scope() {
        Scope::Once => {
            if placement.runs(name, None) {
                match w.pass(app, None).await {
                    Ok(p) => more = p == Pass::More,
                    Err(e) => {
                        failed = true;
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(worker = name, error = %e.detail, "worker pass failed");
                    }
                }
            }
        }
        Scope::PerTenant => {
            let tenants = match app.store.run(|s| s.list_tenants()).await {
                Ok(t) => t,
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(worker = name, error = %e, "worker could not list tenants");
                    return (false, true);
                }
            };
            for t in tenants {
                if !placement.runs(name, Some(&t.id)) {
                    continue;
                }
                match w.pass(app, Some(&t.id)).await {
                    Ok(p) => more |= p == Pass::More,
                    Err(e) => {
                        failed = true;
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(worker = name, tenant = %t.id, error = %e.detail, "worker pass failed");
                    }
                }
            }
        }
    }
    (more, failed)
}
