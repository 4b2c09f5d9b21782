//! Every background job cxm runs, as a [`Worker`] the supervisor drives. Each one is a pass
//! over one tenant (or over the whole store) that calls the capability's own use case; the
//! schedule, the stop and the figures are the supervisor's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::supervisor::{Pass, PassFuture, Scope, Spec, Worker};
use crate::{blocking, App};

/// The workers a server runs, in the order they start.
pub fn all(app: &App) -> Vec<Box<dyn Worker>> {
    let mut w: Vec<Box<dyn Worker>> = vec![
        Box::new(Themes::default()),
        Box::new(Triggers),
        Box::new(Journeys::default()),
        Box::new(Health::default()),
        Box::new(Webhooks),
        Box::new(Checkpoints),
        Box::new(Retention),
        Box::new(Guardrails),
        Box::new(Equity),
        Box::new(Dedup),
    ];
    if let Some(cfg) = app.config.mail.clone() {
        w.push(Box::new(Mail::new(cfg)));
    }
    w
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Places new text answers in themes within seconds of their arrival (or when woken), and
/// hourly re-discovers a tenant whose last discovery is older than `theme_rediscovery` (a
/// tenant's first discovery runs once it has enough text).
#[derive(Default)]
pub struct Themes {
    upkept: Mutex<HashMap<String, Instant>>,
}

impl Worker for Themes {
    fn spec(&self) -> Spec {
        Spec::new("themes", Scope::PerTenant, Duration::from_secs(5))
    }
    fn wake<'a>(&self, app: &'a App) -> Option<&'a tokio::sync::Notify> {
        Some(&app.themes_wake)
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default().to_string();
            let every = app.config.theme_rediscovery;
            let due = !every.is_zero()
                && lock(&self.upkept)
                    .get(&t)
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(3600));
            if due {
                lock(&self.upkept).insert(t.clone(), Instant::now());
                blocking(app, move |s| crate::themes::upkeep(s, &t, every)).await?;
            } else {
                blocking(app, move |s| {
                    if s.themed_tenants()?.contains(&t) {
                        crate::themes::place_new(s, &t)?;
                    }
                    Ok(())
                })
                .await?;
            }
            Ok(Pass::Idle)
        })
    }
}

/// Sends the survey invitations that event triggers call for.
pub struct Triggers;

impl Worker for Triggers {
    fn spec(&self) -> Spec {
        Spec::new("survey_triggers", Scope::PerTenant, Duration::from_secs(2))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default();
            let n = crate::triggers::process_tenant(app, t).await?;
            if n > 0 {
                tracing::info!(tenant = %t, invitations = n, "survey invitations triggered");
            }
            Ok(Pass::Idle)
        })
    }
}

/// Compacts the event log into column blocks and walks every journey forward over it.
#[derive(Default)]
pub struct Journeys {
    // the log head and the blocks' head after each tenant's last compaction: finding the
    // next full block reads the rows after the blocks, so it waits until half a block more
    // has arrived, unless the blocks were dropped (an erasure or a purge) meanwhile
    tried: Arc<Mutex<HashMap<String, (i64, i64)>>>,
}

impl Worker for Journeys {
    fn spec(&self) -> Spec {
        Spec::new("journeys", Scope::PerTenant, Duration::from_secs(2))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let (t, tried) = (tenant.unwrap_or_default().to_string(), self.tried.clone());
            let read = blocking(app, move |s| {
                let head = s.max_event_seq()?;
                let last = lock(&tried).get(&t).copied();
                let blocks_head = s.event_blocks_head(&t)?;
                let due = last.is_none_or(|(at, blocks)| {
                    blocks != blocks_head
                        || head - at >= cxm_store::columns::BLOCK_EVENTS as i64 / 2
                });
                if due {
                    match crate::journeys::compact(s, &t) {
                        Ok(_) => {
                            let now = s.event_blocks_head(&t)?;
                            lock(&tried).insert(t.clone(), (head, now));
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %t, error = %e.detail, "event compaction failed")
                        }
                    }
                }
                crate::journeys::catch_up(s, &t, 50)
            })
            .await?;
            // more may be waiting (a long log after a new journey): go on without a pause
            Ok(if read > 0 { Pass::More } else { Pass::Idle })
        })
    }
}

/// Rescores account health (a full rescore every ten minutes, new facts in between) and
/// opens alerts.
#[derive(Default)]
pub struct Health {
    last_full: Mutex<HashMap<String, Instant>>,
}

impl Worker for Health {
    fn spec(&self) -> Spec {
        Spec::new("health", Scope::PerTenant, Duration::from_secs(3))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default().to_string();
            let force = lock(&self.last_full)
                .get(&t)
                .is_none_or(|at| at.elapsed() > Duration::from_secs(600));
            let value = app.equity.peek(&t);
            let id = t.clone();
            let r = blocking(app, move |s| {
                crate::health::upkeep_with(s, &id, force, value.as_deref())
            })
            .await?;
            if let Some(r) = r {
                lock(&self.last_full).insert(t.clone(), Instant::now());
                if r.alerts_opened > 0 {
                    tracing::info!(tenant = %t, accounts = r.accounts, at_risk = r.at_risk, alerts = r.alerts_opened, "account health rescored");
                }
            }
            Ok(Pass::Idle)
        })
    }
}

/// Delivers due webhooks, sixteen at a time, across every tenant.
pub struct Webhooks;

impl Worker for Webhooks {
    fn spec(&self) -> Spec {
        // every node drains the outbox: the store hands each delivery to one of them
        Spec::new("webhooks", Scope::Shared, Duration::from_secs(1))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, _: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let now = Utc::now().timestamp_millis();
            let due = app.store.run(move |s| s.due_webhooks(now, 16)).await?;
            if due.is_empty() {
                return Ok(Pass::Idle);
            }
            // the deliveries of one pass go out together; a slow receiver holds up only
            // the pass, never another tenant's next one for long (each send has a timeout)
            futures_util::future::join_all(
                due.into_iter()
                    .map(|d| crate::webhooks::deliver(app.clone(), d)),
            )
            .await;
            Ok(Pass::More)
        })
    }
}

/// Signs a checkpoint of each tenant's audit chain every ten minutes.
pub struct Checkpoints;

impl Worker for Checkpoints {
    fn spec(&self) -> Spec {
        Spec::new(
            "audit_checkpoints",
            Scope::PerTenant,
            Duration::from_secs(600),
        )
        .after_a_pause()
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default().to_string();
            blocking(app, move |s| crate::provenance::checkpoint_now(s, &t)).await?;
            Ok(Pass::Idle)
        })
    }
}

/// Purges what each tenant's retention policy no longer keeps, hourly.
pub struct Retention;

impl Worker for Retention {
    fn spec(&self) -> Spec {
        Spec::new("retention", Scope::PerTenant, Duration::from_secs(3600)).after_a_pause()
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default().to_string();
            let now = Utc::now().timestamp_millis();
            blocking(app, move |s| {
                let p = s.purge(&t, now)?;
                if p != cxm_store::Purged::default() {
                    tracing::info!(tenant = %t, events = p.events, feedback_texts = p.feedback_texts, transcripts = p.transcripts, quarantined = p.quarantined, "retention purge");
                }
                Ok(())
            })
            .await?;
            Ok(Pass::Idle)
        })
    }
}

/// Checks running experiments' guardrails every five minutes; a breach rolls back.
pub struct Guardrails;

impl Worker for Guardrails {
    fn spec(&self) -> Spec {
        Spec::new("guardrails", Scope::PerTenant, Duration::from_secs(300)).after_a_pause()
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default().to_string();
            blocking(app, move |s| {
                let now = Utc::now().timestamp_millis();
                for e in s.experiments(&t)? {
                    if e.status == "running" && e.definition.contains("\"guardrails\":[{") {
                        let r = crate::experiments::compute_results(s, &t, &e.id, now)?;
                        if r.rolled_back {
                            tracing::warn!(tenant = %t, experiment = %e.id, "guardrail breached; rolled back");
                        }
                    }
                }
                Ok(())
            })
            .await?;
            Ok(Pass::Idle)
        })
    }
}

/// Recomputes customer equity before the cached value goes stale.
pub struct Equity;

impl Worker for Equity {
    fn spec(&self) -> Spec {
        Spec::new("equity", Scope::PerTenant, crate::equity::FRESH / 2)
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let t = tenant.unwrap_or_default();
            app.equity.forget(t);
            crate::equity::current(app, t).await?;
            Ok(Pass::Idle)
        })
    }
}

/// Forgets message ids older than the dedup window, hourly.
pub struct Dedup;

impl Worker for Dedup {
    fn spec(&self) -> Spec {
        Spec::new("dedup_window", Scope::Once, Duration::from_secs(3600))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, _: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let cutoff = Utc::now().timestamp_millis() - app.config.dedup_window.as_millis() as i64;
            let n = app.store.run(move |s| s.prune_dedup(cutoff)).await?;
            if n > 0 {
                tracing::info!(removed = n, "pruned dedup window");
            }
            Ok(Pass::Idle)
        })
    }
}

/// Sends survey invitations waiting in the outbox through the SMTP relay.
pub struct Mail {
    cfg: crate::mailer::MailConfig,
    transport: lettre::SmtpTransport,
}

impl Mail {
    pub fn new(cfg: crate::mailer::MailConfig) -> Mail {
        let transport = lettre::SmtpTransport::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Mail { cfg, transport }
    }
}

impl Worker for Mail {
    fn spec(&self) -> Spec {
        // per tenant: in a cluster the tenant's owner is its one sender
        Spec::new("mail", Scope::PerTenant, Duration::from_secs(2))
    }
    fn pass<'a>(&'a self, app: &'a Arc<App>, tenant: Option<&'a str>) -> PassFuture<'a> {
        Box::pin(async move {
            let Some(tenant) = tenant else {
                return Ok(Pass::Idle);
            };
            crate::mailer::send_pending(app, &self.cfg, &self.transport, tenant).await?;
            Ok(Pass::Idle)
        })
    }
}
