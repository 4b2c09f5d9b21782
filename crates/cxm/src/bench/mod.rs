//! `cxm bench`: reproducible measurements against a real server on 127.0.0.1 (in this
//! process, on a fresh store unless --database-url is given). Figures go to stdout as JSON.

mod decisions;
mod sign_in;

use decisions::decisions;
use sign_in::sign_in;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::config::{ServeArgs, Settings, StoreArgs};
use crate::generate::Generator;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Batched ingest throughput over HTTP (/v1/batch) with dedup, identity and durable commits.
    Ingest(IngestArgs),
    /// Single-event latency (/v1/track) at a fixed request rate.
    Latency(LatencyArgs),
    /// Context API latency for one customer with many events in a large store.
    Context(ContextArgs),
    /// Feedback ingest (POST /api/v1/feedback) and NPS trend query latency.
    Feedback(FeedbackArgs),
    /// Journey measurement: a cold walk of the whole log, the incremental walk of new
    /// events, and reading a journey's metrics (the demo's two journeys).
    Journeys(JourneyArgs),
    /// Account health: the cold walk of the log into daily facts, rescoring every account,
    /// and a one-year backtest (reuses a --keep directory made by `bench journeys`).
    Health(JourneyArgs),
    /// Agent decisions: the in-process policy evaluation, POST /api/v1/decisions with
    /// enrichment and durable logging under concurrency, and `audit verify` over the chain.
    Decisions(DecisionArgs),
    /// Sign-in under attack: a flood of wrong passwords at once, each from its own loopback
    /// address (so only the verification slots hold them back), and how long an unknown
    /// email takes beside a known one.
    SignIn(SignInArgs),
}

#[derive(Args, Debug)]
pub struct SignInArgs {
    /// Wrong sign-ins sent at once.
    #[arg(long, default_value_t = 200)]
    pub parallel: usize,
    /// Sequential sign-ins timed per kind (known email, unknown email).
    #[arg(long, default_value_t = 40)]
    pub timed: usize,
}

#[derive(Args, Debug)]
pub struct DecisionArgs {
    /// Asks sent over HTTP.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Events generated first, so asks name real customers with timelines and answers.
    #[arg(long, default_value_t = 50_000)]
    pub events: u64,
    /// Audit entries to verify (the chain is topped up with logged decisions to this size).
    #[arg(long, default_value_t = 1_000_000)]
    pub audit_entries: usize,
}

#[derive(Args, Debug)]
pub struct JourneyArgs {
    /// Events to load before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events added after the cold walk, walked incrementally.
    #[arg(long, default_value_t = 10_000)]
    pub increment: u64,
    /// Metric reads to time.
    #[arg(long, default_value_t = 200)]
    pub reads: usize,
    /// Keep this data directory instead of a temporary one (a second run skips loading).
    #[arg(long)]
    pub keep: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// Answers to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub answers: u64,
    /// Answers per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Metric queries to time.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Events to load before measuring.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seed of the random generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct LatencyArgs {
    /// Requests per second to hold.
    #[arg(long, default_value_t = 1000)]
    pub rps: u64,
    /// How long to hold it, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Args, Debug)]
pub struct ContextArgs {
    /// Events in the store besides the measured customer's.
    #[arg(long, default_value_t = 1_000_000)]
    pub background: u64,
    /// Events of the measured customer.
    #[arg(long, default_value_t = 10_000)]
    pub customer_events: u64,
    /// Context requests to time.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
}

struct Running {
    base: String,
    write_key: String,
    secret_key: String,
    store: Arc<dyn cxm_store::Store>,
    tenant: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: Option<tempfile::TempDir>,
}

async fn start(store_args: &StoreArgs) -> anyhow::Result<Running> {
    let dir = if store_args.database_url.is_none() && store_args.data_dir.is_none() {
        Some(tempfile::tempdir()?)
    } else {
        None
    };
    let mut sa = store_args.clone();
    if let Some(d) = &dir {
        sa.data_dir = Some(d.path().to_path_buf());
    }
    let serve = ServeArgs {
        rate_limit: Some(0.0),
        ..Default::default()
    };
    let settings = Settings::resolve(&sa, &serve)?;
    // the postgres client blocks: open and set up off the async workers
    let s2 = settings.clone();
    let (store, t) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = s2.open_store()?;
        let t = crate::setup::create_tenant(store.as_ref(), "bench")?;
        Ok((store, t))
    })
    .await??;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s2 = store.clone();
    let server = tokio::spawn(async move {
        crate::server::run(&settings, s2, listener, async {
            rx.await.ok();
        })
        .await
    });
    Ok(Running {
        base,
        write_key: t.write_key,
        secret_key: t.secret_key,
        store,
        tenant: t.tenant_id,
        stop: Some(tx),
        server,
        _dir: dir,
    })
}

impl Running {
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.server.await??;
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    json!({"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": cpu, "os": std::env::consts::OS})
}

pub async fn run(cmd: BenchCmd, store_args: &StoreArgs) -> anyhow::Result<Value> {
    match cmd {
        BenchCmd::Ingest(a) => ingest(a, store_args).await,
        BenchCmd::Latency(a) => latency(a, store_args).await,
        BenchCmd::Context(a) => context(a, store_args).await,
        BenchCmd::Feedback(a) => feedback(a, store_args).await,
        BenchCmd::Journeys(a) => {
            let sa = store_args.clone();
            tokio::task::spawn_blocking(move || journeys(a, &sa)).await?
        }
        BenchCmd::Decisions(a) => decisions(a, store_args).await,
        BenchCmd::SignIn(a) => sign_in(a, store_args).await,
        BenchCmd::Health(a) => {
            let sa = store_args.clone();
            tokio::task::spawn_blocking(move || health(a, &sa)).await?
        }
    }
}

/// The store and tenant a journeys/health bench runs on: a kept directory's, or a fresh one
/// loaded with generated events. Returns the seconds spent loading.
fn bench_store(
    a: &JourneyArgs,
    store_args: &StoreArgs,
    tmp: &std::path::Path,
) -> anyhow::Result<(Arc<dyn cxm_store::Store>, String, f64)> {
    let mut sa = store_args.clone();
    if sa.database_url.is_none() && sa.data_dir.is_none() {
        sa.data_dir = Some(a.keep.clone().unwrap_or_else(|| tmp.to_path_buf()));
    }
    let settings = Settings::resolve(&sa, &ServeArgs::default())?;
    let store = settings.open_store()?;
    if let Some(t) = store
        .list_tenants()?
        .into_iter()
        .find(|t| t.name == "bench-journeys")
    {
        return Ok((store, t.id, 0.0));
    }
    let t = crate::setup::create_tenant(store.as_ref(), "bench-journeys")?;
    let started = Instant::now();
    let events = Generator::new(3, chrono::Utc::now()).events(a.events);
    crate::load::load(store.as_ref(), &t.tenant_id, "bench", events, true)?;
    Ok((store, t.tenant_id, started.elapsed().as_secs_f64()))
}

/// Blocking, against the store directly.
fn health(a: JourneyArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    use cxm_app::health as h;
    let tmp = tempfile::tempdir()?;
    let (store, tenant, load_secs) = bench_store(&a, store_args, tmp.path())?;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("{}: {}", e.code.code(), e.detail);
    let head = store.max_event_seq()?;
    let cold = Instant::now();
    let mut walked = 0;
    loop {
        let n = h::advance_facts(store.as_ref(), &tenant).map_err(api)?;
        walked += n;
        if n == 0 {
            break;
        }
    }
    let cold_secs = cold.elapsed().as_secs_f64();
    let mut rescore = vec![];
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        last = Some(h::recompute(store.as_ref(), &tenant, chrono::Utc::now()).map_err(api)?);
        rescore.push(t.elapsed().as_secs_f64());
    }
    let r = last.context("no rescore")?;
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(365);
    let t = Instant::now();
    let bt = h::backtest(store.as_ref(), &tenant, from, today, 90).map_err(api)?;
    let backtest_secs = t.elapsed().as_secs_f64();
    Ok(json!({
        "bench": "health", "backend": store.backend(), "store_events": head, "load_seconds": load_secs,
        "facts_cold_walk_seconds": cold_secs, "facts_rows_read": walked,
        "accounts": r.accounts, "at_risk": r.at_risk, "rescore_seconds": rescore,
        "last_rescore_ms": {"load": r.load_millis, "score": r.score_millis, "save": r.save_millis},
        "backtest_seconds": backtest_secs, "backtest_checkpoints": bt.checkpoints, "backtest_churned_accounts": bt.churned_accounts,
        "backtest": bt.rows.iter().map(|r| json!({"signal": r.signal, "precision": r.precision, "recall": r.recall, "lift": r.lift, "lead_days": r.median_lead_days, "suggested": r.suggested_threshold})).collect::<Vec<_>>(),
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }))
}

/// Blocking: the store directly, no server (its journey worker would race the measured walk).
fn journeys(a: JourneyArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    use cxm_app::journeys as j;
    let tmp = tempfile::tempdir()?;
    let (store, tenant, load_secs) = bench_store(&a, store_args, tmp.path())?;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("{}: {}", e.code.code(), e.detail);
    let end = chrono::Utc::now();
    // a fresh version of each journey: measured from the start of the log
    let mut ids = vec![];
    for (n, yaml) in crate::generate::journeys(end.date_naive())
        .iter()
        .enumerate()
    {
        let mut def = j::parse_definition(yaml).map_err(anyhow::Error::msg)?;
        def.stages[0].name = format!("{} ({})", def.stages[0].name, uuid::Uuid::new_v4().simple());
        def.stages[0].target_hours =
            Some(2.0 + n as f64 + (end.timestamp_millis() % 1000) as f64 / 1000.0);
        ids.push(
            j::save(store.as_ref(), &tenant, &def, "bench")
                .map_err(api)?
                .journey_id,
        );
    }
    let head = store.max_event_seq()?;
    // the server's compactor keeps the columnar log current as events arrive; a kept store
    // has it already, a fresh one pays for it here (measured apart)
    let t = Instant::now();
    let compacted = j::compact(store.as_ref(), &tenant).map_err(api)?;
    let compact_secs = t.elapsed().as_secs_f64();
    let blocks = store.event_blocks(&tenant, 0, u32::MAX)?.len();
    let journeys: Vec<_> = ids
        .iter()
        .filter_map(|id| store.journey(&tenant, id, None).ok().flatten())
        .collect();
    // cold: journeys never walked, measured from the whole log when their metrics are asked
    let mut cold_metrics = vec![];
    for jr in &journeys {
        let t = Instant::now();
        let m = j::metrics(store.as_ref(), &tenant, jr, chrono::Utc::now()).map_err(api)?;
        anyhow::ensure!(
            m.source == j::Source::Scan,
            "metrics did not come from a scan"
        );
        cold_metrics.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let defs: Vec<_> = journeys
        .iter()
        .map(|jr| {
            Ok((
                jr.journey_id.clone(),
                j::parse_definition(&jr.definition).map_err(anyhow::Error::msg)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    let both = cxm_app::journey_scan::scan(store.as_ref(), &tenant, &defs, false).map_err(api)?;
    let both_ms = t.elapsed().as_secs_f64() * 1000.0;
    // the worker's first pass: the same scan, then every position, visit and tally saved
    let cold = Instant::now();
    let walked = j::catch_up(store.as_ref(), &tenant, usize::MAX).map_err(api)?;
    let cold_secs = cold.elapsed().as_secs_f64();
    let mut reads = vec![];
    let mut last = None;
    for i in 0..a.reads {
        let jr = &journeys[i % journeys.len()];
        let t = Instant::now();
        let m = j::metrics(store.as_ref(), &tenant, jr, chrono::Utc::now()).map_err(api)?;
        reads.push(t.elapsed());
        last = Some(m);
    }
    reads.sort();
    // new events arrive; the worker's next pass walks only them
    let more = Generator::new(
        chrono::Utc::now().timestamp_millis() as u64,
        chrono::Utc::now(),
    )
    .events(a.increment);
    crate::load::load(store.as_ref(), &tenant, "bench", more, true)?;
    let inc = Instant::now();
    let walked_inc = j::catch_up(store.as_ref(), &tenant, usize::MAX).map_err(api)?;
    let inc_secs = inc.elapsed().as_secs_f64();
    let m = last.context("no metrics read")?;
    Ok(json!({
        "bench": "journeys", "backend": store.backend(), "store_events": head, "load_seconds": load_secs,
        "journeys": journeys.len(), "journey_events_walked": walked,
        "compacted_events": compacted, "compact_seconds": compact_secs, "blocks": blocks,
        "cold_metrics_ms": cold_metrics, "cold_scan_both_journeys_ms": both_ms, "cold_scan_events_kept": both.events_read,
        "first_pass_saved_seconds": cold_secs,
        "metrics_reads": a.reads, "metrics_p50_ms": percentile(&reads, 0.5), "metrics_p95_ms": percentile(&reads, 0.95),
        "increment_events": a.increment, "increment_walked": walked_inc, "increment_walk_ms": inc_secs * 1000.0,
        "sample": {"journey": m.journey_id, "jps": m.score.jps, "stage_entries": m.stages.iter().map(|s| s.entries).collect::<Vec<_>>()},
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }))
}

/// Writes the request bodies to a file first (outside the timed window), so a 10M-event run
/// needs neither the generator's CPU nor gigabytes of memory while it is measured.
fn write_bodies(a: &IngestArgs, path: &std::path::Path) -> anyhow::Result<usize> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut batch = Vec::with_capacity(a.batch);
    let mut n = 0;
    let mut flush =
        |batch: &mut Vec<Value>, w: &mut std::io::BufWriter<std::fs::File>| -> anyhow::Result<()> {
            if !batch.is_empty() {
                serde_json::to_writer(
                    &mut *w,
                    &json!({"batch": batch, "sentAt": chrono::Utc::now().to_rfc3339()}),
                )?;
                w.write_all(b"\n")?;
                batch.clear();
                n += 1;
            }
            Ok(())
        };
    for e in Generator::new(a.seed, chrono::Utc::now()).events(a.events) {
        batch.push(e);
        if batch.len() == a.batch {
            flush(&mut batch, &mut w)?;
        }
    }
    flush(&mut batch, &mut w)?;
    w.flush()?;
    Ok(n)
}

async fn ingest(a: IngestArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        a.batch >= 1 && a.concurrency >= 1,
        "batch and concurrency must be at least 1"
    );
    let scratch = tempfile::tempdir()?;
    let bodies_path = scratch.path().join("bodies.ndjson");
    let requests = write_bodies(&a, &bodies_path)?;
    let r = start(store_args).await?;
    let rss_before = peak_rss_mb();
    // a reader thread streams bodies through a small bounded queue
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(a.concurrency * 4);
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        use std::io::BufRead;
        for line in std::io::BufReader::new(std::fs::File::open(&bodies_path)?).lines() {
            if tx.blocking_send(line?).is_err() {
                break;
            }
        }
        Ok(())
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..a.concurrency {
        let (client, rx, url, key) = (
            client.clone(),
            rx.clone(),
            format!("{}/v1/batch", r.base),
            r.write_key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            loop {
                let Some(body) = rx.lock().await.recv().await else {
                    break;
                };
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    resp.status() == 200,
                    "ingest answered {}: {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                );
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = vec![];
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed();
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("body reader panicked"))??;
    lat.sort();
    // the one writer's share of the run says whether it, or what feeds it, is the limit
    let metrics = client
        .get(format!("{}/metrics", r.base))
        .send()
        .await?
        .text()
        .await?;
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let commits = counter("cxm_ingest_commits_total");
    let writer = json!({
        "writer_busy_share": counter("cxm_ingest_writer_busy_seconds_total") / elapsed.as_secs_f64(),
        "commits": commits,
        "events_per_commit": if commits > 0.0 { counter("cxm_ingest_commit_events_total") / commits } else { 0.0 },
    });
    let stored = {
        let (s, t) = (r.store.clone(), r.tenant.clone());
        tokio::task::spawn_blocking(move || {
            s.overview(&t, 365, chrono::Utc::now().timestamp_millis())
        })
        .await??
    };
    let backend = r.store.backend();
    let tenant = r.tenant.clone();
    r.stop().await?;
    anyhow::ensure!(
        lat.len() == requests,
        "sent {} of {requests} requests",
        lat.len()
    );
    let events_per_sec = a.events as f64 / elapsed.as_secs_f64();
    // on PostgreSQL, beside it: the same rows copied bare into a table with the log's indexes,
    // 1,000 a transaction, once the server has stopped
    let ceiling = match store_args.database_url.clone() {
        Some(url) => {
            let c = tokio::task::spawn_blocking(move || {
                cxm_store::pg_copy_ceiling(&url, &tenant, 1000)
            })
            .await??;
            let per_sec = c.rows as f64 / c.seconds;
            json!({"copy_ceiling_rows_per_sec": per_sec, "copy_ceiling_rows": c.rows, "ratio_to_ceiling": events_per_sec / per_sec})
        }
        None => json!({}),
    };
    let mut out = json!({
        "bench": "ingest", "backend": backend, "events": a.events, "batch": a.batch, "concurrency": a.concurrency,
        "seconds": elapsed.as_secs_f64(), "events_per_sec": events_per_sec,
        "requests": lat.len(), "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99),
        "stored_events": stored.total_events, "profiles": stored.profiles, "quarantined": stored.quarantined,
        "peak_rss_mb_before_load": rss_before, "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    });
    if let Some(o) = out.as_object_mut() {
        for extra in [writer, ceiling] {
            if let Value::Object(c) = extra {
                o.extend(c);
            }
        }
    }
    Ok(out)
}

async fn latency(a: LatencyArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    let r = start(store_args).await?;
    let client = reqwest::Client::new();
    let total = a.rps * a.seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rps as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let (client, url, key, tx) = (
            client.clone(),
            format!("{}/v1/track", r.base),
            r.write_key.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let body = json!({"userId": format!("lat-{}", i % 5000), "event": "Feature Used", "messageId": format!("lat-{i}")}).to_string();
            let t = Instant::now();
            let ok = client
                .post(&url)
                .basic_auth(&key, Some(""))
                .body(body)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            let _ = tx.send((t.elapsed(), ok));
        });
    }
    drop(tx);
    let mut lat = vec![];
    let mut failed = 0;
    while let Some((d, ok)) = rx.recv().await {
        if !ok {
            failed += 1;
        }
        lat.push(d);
    }
    let elapsed = started.elapsed();
    lat.sort();
    let backend = r.store.backend();
    r.stop().await?;
    Ok(json!({
        "bench": "latency", "backend": backend, "target_rps": a.rps, "achieved_rps": lat.len() as f64 / elapsed.as_secs_f64(),
        "requests": lat.len(), "failed": failed, "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99), "max_ms": percentile(&lat, 1.0),
        "machine": machine(),
    }))
}

async fn context(a: ContextArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    let r = start(store_args).await?;
    let (store, tenant) = (r.store.clone(), r.tenant.clone());
    let bg = a.background;
    let ce = a.customer_events;
    let load_started = Instant::now();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let end = chrono::Utc::now();
        crate::load::load(store.as_ref(), &tenant, "bench", Generator::new(1, end).events(bg), true)?;
        let heavy = (0..ce).map(|i| {
            let ch = ["Chat Started", "Call Completed", "Feature Used", "Payment Failed", "Ticket Opened"][(i % 5) as usize];
            json!({"type": "track", "event": ch, "userId": "heavy-customer", "messageId": format!("heavy-{i}"), "timestamp": (end - chrono::Duration::minutes(i as i64)).to_rfc3339()})
        });
        crate::load::load(store.as_ref(), &tenant, "bench", heavy, true)?;
        Ok(())
    })
    .await??;
    let load_secs = load_started.elapsed().as_secs_f64();
    let client = reqwest::Client::new();
    let found: Value = client
        .get(format!(
            "{}/api/v1/customers?identifier=user_id:heavy-customer",
            r.base
        ))
        .bearer_auth(&r.secret_key)
        .send()
        .await?
        .json()
        .await?;
    let id = found["id"]
        .as_str()
        .context("heavy customer not found")?
        .to_string();
    let mut lat = vec![];
    for _ in 0..a.requests {
        let t = Instant::now();
        let resp = client
            .get(format!("{}/api/v1/customers/{id}/context", r.base))
            .bearer_auth(&r.secret_key)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "context answered {}", resp.status());
        let _ = resp.bytes().await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let backend = r.store.backend();
    r.stop().await?;
    Ok(json!({
        "bench": "context", "backend": backend, "store_events": a.background + a.customer_events, "customer_events": a.customer_events,
        "load_seconds": load_secs, "requests": a.requests, "p50_ms": percentile(&lat, 0.5), "p95_ms": percentile(&lat, 0.95), "p99_ms": percentile(&lat, 0.99),
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }))
}

/// Answers spread over a year, five channels and four surveys, about one in five with a
/// comment; bodies are built before the clock starts.
const COMMENT_OPENINGS: &[&str] = &[
    "Quick and friendly",
    "Had to call twice about billing",
    "fine",
    "The app keeps crashing",
    "Great agent, solved it at once",
    "My refund still has not arrived",
    "Delivery was late again",
    "The parcel arrived damaged",
    "Password reset link does not work",
    "Checkout failed on my card",
    "Prices went up without notice",
    "I am thinking of switching to another provider",
    "Waited forty minutes on hold",
    "The chat bot did not understand me",
    "Invoice shows the wrong amount",
];
const COMMENT_ENDINGS: &[&str] = &[
    "",
    " and nobody called back",
    ", thanks to the support team",
    " which is frustrating",
    " for the third time",
    " but the agent was kind",
    " on the mobile app",
    " after the last update",
];

/// Writes the request bodies to a file (outside the timed window), one per line, so a
/// 10M-answer run does not hold gigabytes of JSON in memory while it is measured.
fn feedback_bodies(a: &FeedbackArgs, path: &std::path::Path) -> anyhow::Result<usize> {
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = chrono::Utc::now();
    let channels = ["email", "chat", "voice", "web", "mobile"];
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut bodies = 0;
    let mut batch = Vec::with_capacity(a.batch);
    for i in 0..a.answers {
        let at = now - chrono::Duration::minutes(rng.gen_range(0..60 * 24 * 365));
        let (question, kind, value) = if i % 5 == 4 {
            // thousands of distinct texts, as real comments are, not a handful repeated
            let text = format!(
                "{}{} ({} {})",
                COMMENT_OPENINGS[rng.gen_range(0..COMMENT_OPENINGS.len())],
                COMMENT_ENDINGS[rng.gen_range(0..COMMENT_ENDINGS.len())],
                ["order", "ticket", "case", "account", "plan"][rng.gen_range(0..5)],
                rng.gen_range(0..1000)
            );
            ("why", "text", json!(text))
        } else {
            ("nps", "nps", json!(rng.gen_range(0..=10)))
        };
        batch.push(json!({"response_id": format!("b{}", i / 5), "question": question, "type": kind, "value": value,
                          "channel": channels[rng.gen_range(0..5)], "survey_id": format!("s{}", rng.gen_range(0..4)), "collected_at": at.to_rfc3339()}));
        if batch.len() == a.batch {
            serde_json::to_writer(&mut w, &json!({"answers": batch}))?;
            w.write_all(b"\n")?;
            batch.clear();
            bodies += 1;
        }
    }
    if !batch.is_empty() {
        serde_json::to_writer(&mut w, &json!({"answers": batch}))?;
        w.write_all(b"\n")?;
        bodies += 1;
    }
    w.flush()?;
    Ok(bodies)
}

async fn feedback(a: FeedbackArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    use std::io::BufRead;
    anyhow::ensure!((1..=1000).contains(&a.batch), "batch must be 1 to 1000");
    let scratch = tempfile::tempdir()?;
    let path = scratch.path().join("bodies.ndjson");
    let n_bodies = feedback_bodies(&a, &path)?;
    let lines = Arc::new(std::sync::Mutex::new(
        std::io::BufReader::new(std::fs::File::open(&path)?).lines(),
    ));
    let r = start(store_args).await?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..a.concurrency.max(1) {
        let (client, lines, url, key) = (
            client.clone(),
            lines.clone(),
            format!("{}/api/v1/feedback", r.base),
            r.write_key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let next = lines
                    .lock()
                    .map_err(|_| anyhow::anyhow!("reader poisoned"))?
                    .next();
                let Some(body) = next.transpose()? else { break };
                let resp = client
                    .post(&url)
                    .bearer_auth(&key)
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    resp.status() == 200,
                    "feedback answered {}: {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                );
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let mut lat = vec![];
    for i in 0..a.queries {
        let by = ["", "&by=channel", "&by=survey"][i % 3];
        let t = Instant::now();
        let resp = client
            .get(format!(
                "{}/api/v1/metrics/nps?interval=week{by}&from={}",
                r.base,
                (chrono::Utc::now() - chrono::Duration::days(364)).format("%Y-%m-%d")
            ))
            .bearer_auth(&r.secret_key)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "metrics answered {}", resp.status());
        let _ = resp.bytes().await?;
        lat.push(t.elapsed());
    }
    lat.sort();

    // themes: a discovery over the newest 20,000 texts, which then places every other text
    let t = Instant::now();
    let resp = client
        .post(format!("{}/api/v1/themes/discover", r.base))
        .bearer_auth(&r.secret_key)
        .json(&json!({"days": 365}))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "discover answered {}", resp.status());
    let discovery: Value = resp.json().await?;
    let discover_secs = t.elapsed().as_secs_f64();
    let mut theme_lat = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        let resp = client
            .get(format!("{}/api/v1/themes?days=90", r.base))
            .bearer_auth(&r.secret_key)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "themes answered {}", resp.status());
        let _ = resp.bytes().await?;
        theme_lat.push(t.elapsed());
    }
    theme_lat.sort();
    let survey = survey_pages(&client, &r).await?;
    let backend = r.store.backend();
    r.stop().await?;
    Ok(json!({
        "bench": "feedback", "backend": backend, "answers": a.answers, "batch": a.batch, "concurrency": a.concurrency, "requests": n_bodies,
        "ingest_seconds": ingest_secs, "answers_per_sec": a.answers as f64 / ingest_secs,
        "metric_queries": lat.len(), "metric_p50_ms": percentile(&lat, 0.5), "metric_p95_ms": percentile(&lat, 0.95),
        "theme_discovery": discovery, "theme_discovery_seconds": discover_secs,
        "theme_list_p50_ms": percentile(&theme_lat, 0.5), "theme_list_p95_ms": percentile(&theme_lat, 0.95),
        "survey_page": survey,
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }))
}

/// The hosted survey page as a customer opens it: a ten-question survey with branching,
/// 200 fresh links (each first open records a display), timed from request to last byte.
async fn survey_pages(client: &reqwest::Client, r: &Running) -> anyhow::Result<Value> {
    let mut questions = vec![
        json!({"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true}),
        json!({"id": "csat", "type": "csat", "prompt": "How satisfied are you with support?"}),
        json!({"id": "ces", "type": "ces", "prompt": "How easy was it to get help?"}),
        json!({"id": "channel", "type": "choice", "prompt": "Where did you contact us?", "choices": ["chat", "phone", "email"]}),
    ];
    for i in 0..6 {
        questions.push(
            json!({"id": format!("t{i}"), "type": "text", "prompt": format!("Tell us more ({i})")}),
        );
    }
    let def =
        json!({"survey_id": "bench", "definition": {"name": "Bench", "questions": questions}});
    let resp = client
        .post(format!("{}/api/v1/surveys", r.base))
        .bearer_auth(&r.secret_key)
        .json(&def)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status() == 201,
        "survey save answered {}",
        resp.status()
    );
    let mut lat = vec![];
    for _ in 0..200 {
        let link: Value = client
            .post(format!("{}/api/v1/surveys/bench/links", r.base))
            .bearer_auth(&r.secret_key)
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let url = format!("{}{}", r.base, link["url"].as_str().unwrap_or_default());
        let t = Instant::now();
        let resp = client.get(&url).send().await?;
        anyhow::ensure!(
            resp.status() == 200,
            "survey page answered {}",
            resp.status()
        );
        let _ = resp.bytes().await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok(
        json!({"questions": 10, "pages": 200, "p50_ms": percentile(&lat, 0.5), "p95_ms": percentile(&lat, 0.95), "max_ms": percentile(&lat, 1.0)}),
    )
}
