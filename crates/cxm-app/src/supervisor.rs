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
    /// Store-wide, on one process of a cluster.
    Once,
    /// Store-wide, on every process at once: it claims its work in the store.
    Shared,
}

/// What a pass found: nothing left to do (pause), or more waiting (go again at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Idle,
    More,
}

/// What the supervisor needs to know of a worker before it runs it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub scope: Scope,
    /// The pause after a pass with nothing more to do.
    pub every: Duration,
    /// How long after the start the first pass waits (an hourly purge need not run at boot).
    pub first_after: Duration,
}

impl Spec {
    pub const fn new(name: &'static str, scope: Scope, every: Duration) -> Spec {
        Spec {
            name,
            scope,
            every,
            first_after: Duration::ZERO,
        }
    }

    /// The first pass waits one pause.
    pub const fn after_a_pause(self) -> Spec {
        Spec {
            first_after: self.every,
            ..self
        }
    }
}

/// A background job. Its state between passes lives in the value itself.
pub trait Worker: Send + Sync + 'static {
    fn spec(&self) -> Spec;
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
            let spec = w.spec();
            entries.push(Entry {
                name: spec.name,
                scope: spec.scope,
                every: spec.every,
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
                            Scope::Shared => "shared",
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
    let spec = w.spec();
    let name = spec.name;
    if !spec.first_after.is_zero() && !pause(spec.first_after, None, &mut stop).await {
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
        if !pause(spec.every, w.wake(&app), &mut stop).await {
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
    let name = w.spec().name;
    let mut failed = false;
    let mut more = false;
    match w.spec().scope {
        Scope::Once | Scope::Shared => {
            if w.spec().scope == Scope::Shared || placement.runs(name, None) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppError, ErrorCode};
    use std::sync::Mutex;

    /// Records every tenant it is handed; fails for the `broken` one; a pass takes `slow`
    /// and says so when it finished.
    struct Probe {
        seen: Arc<Mutex<Vec<String>>>,
        finished: Arc<AtomicU64>,
        slow: Duration,
        broken: Option<String>,
    }

    impl Worker for Probe {
        fn spec(&self) -> Spec {
            Spec::new("probe", Scope::PerTenant, Duration::from_millis(10))
        }
        fn pass<'a>(&'a self, _app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
            Box::pin(async move {
                let t = tenant.unwrap_or_default().to_string();
                tokio::time::sleep(self.slow).await;
                self.seen.lock().unwrap().push(t.clone());
                self.finished.fetch_add(1, Ordering::SeqCst);
                if self.broken.as_deref() == Some(t.as_str()) {
                    return Err(AppError::new(ErrorCode::Internal, "this tenant fails"));
                }
                Ok(Pass::Idle)
            })
        }
    }

    /// Runs the probe for every tenant but the one named "elsewhere".
    struct NotElsewhere(Arc<Mutex<BTreeMap<String, String>>>);

    impl Placement for NotElsewhere {
        fn runs(&self, _worker: &str, tenant: Option<&str>) -> bool {
            let names = self.0.lock().unwrap();
            tenant.is_some_and(|t| names.get(t).map(String::as_str) != Some("elsewhere"))
        }
    }

    async fn app() -> (Arc<App>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = cxm_store::open(None, dir.path(), cxm_store::StoreSettings::default()).unwrap();
        let (committer, _writer) = cxm_store::committer::Committer::spawn(store.clone());
        (App::new(store, committer, crate::Config::default()), dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_run_per_tenant_where_placed_and_a_failure_stays_with_its_tenant() {
        let (app, _dir) = app().await;
        let mut names = BTreeMap::new();
        for n in ["acme", "broken", "elsewhere"] {
            let t = app.store.0.create_tenant(n).unwrap();
            names.insert(t.id, n.to_string());
        }
        let broken = names
            .iter()
            .find(|(_, n)| *n == "broken")
            .map(|(id, _)| id.clone());
        let names = Arc::new(Mutex::new(names));
        let seen = Arc::new(Mutex::new(vec![]));
        let probe = Probe {
            seen: seen.clone(),
            finished: Arc::default(),
            slow: Duration::ZERO,
            broken,
        };
        let sup = Supervisor::start(
            app.clone(),
            vec![Box::new(probe)],
            Arc::new(NotElsewhere(names.clone())),
        );
        let roster = sup.roster();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while roster.status()["probe"].passes < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sup.stop(Duration::from_secs(5)).await;
        let status = roster.status()["probe"].clone();
        assert!(status.passes >= 3, "{status:?}");
        let names = names.lock().unwrap();
        let seen: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|id| names[id].clone())
            .collect();
        assert!(seen.iter().any(|n| n == "acme"), "{seen:?}");
        assert!(
            !seen.iter().any(|n| n == "elsewhere"),
            "placement ignored: {seen:?}"
        );
        // the broken tenant fails every round and is counted; acme still runs in each
        assert!(status.errors >= 3, "{status:?}");
        let acme = seen.iter().filter(|n| *n == "acme").count() as u64;
        assert!(acme >= status.errors, "{seen:?} {status:?}");
        assert_eq!(status.scope, "tenant");
        assert!(status.last_run_ms.is_some());
        let metrics = roster.render_metrics();
        assert!(
            metrics.contains("cxm_worker_errors_total{worker=\"probe\"}"),
            "{metrics}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_lets_the_pass_in_progress_finish() {
        let (app, _dir) = app().await;
        app.store.0.create_tenant("acme").unwrap();
        let finished = Arc::new(AtomicU64::new(0));
        let probe = Probe {
            seen: Arc::default(),
            finished: finished.clone(),
            slow: Duration::from_millis(300),
            broken: None,
        };
        let sup = Supervisor::start(app, vec![Box::new(probe)], Arc::new(Everything));
        let roster = sup.roster();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !roster.status()["probe"].running && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(roster.status()["probe"].running);
        let before = finished.load(Ordering::SeqCst);
        sup.stop(Duration::from_secs(5)).await;
        // the pass that was running when the stop came ended, and no other began
        assert_eq!(finished.load(Ordering::SeqCst), before + 1);
        assert!(!roster.status()["probe"].running);
    }
}
