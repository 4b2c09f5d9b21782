//! The HTTP surface of cxm: ingest, the management API, problem+json errors, OpenAPI and
//! the dashboard. The only crate that knows HTTP and JSON shapes.

pub mod agent_pages;
pub mod agents;
pub mod api;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod builder;
pub mod dashboard;
pub mod decisions;
pub mod equity;
pub mod error;
pub mod experiment_pages;
pub mod experiments;
pub mod health;
pub mod health_pages;
pub mod ingest;
pub mod journey_pages;
pub mod journey_scan;
pub mod journeys;
pub mod listener;
pub mod logsafe;
pub mod mailer;
pub mod maturity;
pub mod openapi;
pub mod ops;
pub mod outbound;
pub mod phrasing;
pub mod policies;
pub mod privacy;
pub mod provenance;
pub mod sign_in;
pub mod step_up;
pub mod surveys;
pub mod themes;
pub mod ticket_pages;
pub mod tickets;
pub mod triggers;
pub mod user_pages;
pub mod users;
pub mod value_pages;
pub mod voc;
pub mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use cxm_store::committer::Committer;
use cxm_store::{Store, StoreHandle};

/// Settings of the HTTP layer (the CLI fills them from flags, env and the config file).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Cap on a request body after decompression.
    pub max_request_bytes: usize,
    pub max_event_bytes: usize,
    /// Events one ingest request may carry; a request over it is refused whole (413).
    pub max_batch_events: usize,
    /// Events per second per key, every event of a batch counted; 0 turns the limit off.
    pub rate_limit_per_sec: f64,
    pub rate_limit_burst: f64,
    /// Extra mount point for the tracking API, e.g. `/collect` serves `/collect/v1/batch`.
    pub path_prefix: String,
    /// Trust client timestamps on every request (historical backfills only).
    pub trust_timestamps: bool,
    pub session_ttl: Duration,
    /// Mark the session cookie Secure (set when serving behind TLS).
    pub secure_cookies: bool,
    /// How long a key lookup is cached; revocations by another process apply within it.
    pub key_cache_ttl: Duration,
    /// How often one customer may be invited to surveys (a survey may override).
    pub contact_rules: cxm_domain::survey::ContactRules,
    /// How often each tenant's themes are re-discovered; zero: only on demand.
    pub theme_rediscovery: Duration,
    /// SMTP relay for survey invitations; None leaves them in the outbox.
    pub mail: Option<mailer::MailConfig>,
    /// OpenAI-compatible chat endpoint that may word follow-up questions.
    pub llm: Option<phrasing::LlmConfig>,
    /// First webhook retry delay; each later one is six times longer (capped at six hours).
    pub webhook_retry_base: Duration,
    /// How long a client has to send a request's headers, and how long a kept-alive
    /// connection may sit idle waiting for the next request.
    pub header_timeout: Duration,
    /// How long a client has to send a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The URL people and providers reach this server at (`--public-url`): links in email,
    /// and the one name besides the listen address that the dashboard answers to.
    pub public_url: Option<String>,
    /// Private networks webhooks may reach anyway (`--webhook-allow-network`); by default
    /// none: loopback, RFC 1918, link-local and the like are refused.
    pub webhook_allow_networks: Vec<ipnet::IpNet>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_request_bytes: 4 * 1024 * 1024,
            max_event_bytes: cxm_domain::MAX_EVENT_BYTES,
            max_batch_events: 2_500,
            rate_limit_per_sec: 100_000.0,
            rate_limit_burst: 200_000.0,
            path_prefix: String::new(),
            trust_timestamps: false,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            key_cache_ttl: Duration::from_secs(5),
            contact_rules: cxm_domain::survey::ContactRules::default(),
            theme_rediscovery: Duration::from_secs(24 * 3600),
            mail: None,
            llm: None,
            webhook_retry_base: Duration::from_secs(5),
            webhook_allow_networks: vec![],
            public_url: None,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

pub struct AppState {
    pub store: StoreHandle,
    pub committer: Committer,
    pub config: HttpConfig,
    pub keys: auth::KeyCache,
    pub limiter: ingest::RateLimiter,
    pub metrics: ops::Metrics,
    pub shutting_down: AtomicBool,
    pub started: Instant,
    pub pages: dashboard::Pages,
    pub analyzer: cxm_analytics::Analyzer,
    /// Wakes the theme worker when text answers arrive.
    pub themes_wake: tokio::sync::Notify,
    /// Outbound HTTP to operator-configured endpoints (the optional phrasing model).
    pub http_client: reqwest::Client,
    /// Which addresses tenant-chosen URLs may reach, and the client that enforces it at
    /// connect time (webhook deliveries).
    pub outbound: outbound::OutboundPolicy,
    pub webhook_client: reqwest::Client,
    /// Compiled agent policies per tenant.
    pub policies: policies::PolicyCache,
    /// Group commit for decisions: answered only once logged.
    pub decision_log: cxm_store::decision_log::DecisionLog,
    /// Computed customer equity per tenant.
    pub equity: equity::EquityCache,
    /// Running policy rollouts per tenant.
    pub rollouts: policies::RolloutCache,
    /// Failed sign-ins per account and client, and the argon2 slots (about one per core).
    pub sign_ins: sign_in::Throttle,
    pub sign_in_slots: tokio::sync::Semaphore,
    /// The names the dashboard answers to, known once the listener is bound.
    hosts: std::sync::OnceLock<browser::Hosts>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, committer: Committer, config: HttpConfig) -> Arc<AppState> {
        Arc::new(AppState {
            store: StoreHandle(store.clone()),
            committer,
            keys: auth::KeyCache::new(config.key_cache_ttl),
            limiter: ingest::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            metrics: ops::Metrics::default(),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            pages: dashboard::Pages::new(),
            analyzer: cxm_analytics::Analyzer::new(),
            themes_wake: tokio::sync::Notify::new(),
            http_client: reqwest::Client::new(),
            outbound: outbound::OutboundPolicy {
                allow: config.webhook_allow_networks.clone(),
            },
            webhook_client: outbound::OutboundPolicy {
                allow: config.webhook_allow_networks.clone(),
            }
            .client(),
            policies: policies::PolicyCache::default(),
            decision_log: cxm_store::decision_log::DecisionLog::spawn(store.clone()),
            equity: equity::EquityCache::default(),
            rollouts: policies::RolloutCache::default(),
            hosts: std::sync::OnceLock::new(),
            sign_ins: sign_in::Throttle::default(),
            sign_in_slots: sign_in::slots(),
            config,
        })
    }

    /// The names this server answers to: `--public-url` and the listen address.
    pub fn hosts(&self) -> browser::Hosts {
        self.hosts
            .get()
            .cloned()
            .unwrap_or_else(|| browser::Hosts::new(self.config.public_url.as_deref(), None))
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}

fn tracking_routes() -> Router<Arc<AppState>> {
    use ingest::*;
    Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/b", post(batch))
        .route("/v1/identify", post(identify))
        .route("/v1/i", post(identify))
        .route("/v1/track", post(track))
        .route("/v1/t", post(track))
        .route("/v1/page", post(page))
        .route("/v1/p", post(page))
        .route("/v1/screen", post(screen))
        .route("/v1/s", post(screen))
        .route("/v1/group", post(group))
        .route("/v1/g", post(group))
        .route("/v1/alias", post(alias))
        .route("/v1/a", post(alias))
        // PostHog's batch endpoint, so its SDKs can send here too
        .route("/batch", post(batch))
        .route("/batch/", post(batch))
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    let prefix = state.config.path_prefix.trim_end_matches('/').to_string();
    let mut app = Router::new()
        .merge(tracking_routes())
        .merge(api::routes())
        .merge(voc::routes())
        .merge(surveys::routes())
        .merge(journeys::routes())
        .merge(health::routes())
        .merge(tickets::routes())
        .merge(decisions::routes())
        .merge(policies::routes())
        .merge(agents::routes())
        .merge(audit::routes())
        .merge(provenance::routes())
        .merge(step_up::routes())
        .merge(privacy::routes())
        .merge(experiments::routes())
        .merge(equity::routes())
        .merge(maturity::routes())
        .merge(webhooks::routes())
        .merge(users::routes())
        .merge(user_pages::routes())
        .merge(dashboard::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(openapi::serve));
    if !prefix.is_empty() && prefix.starts_with('/') {
        app = app.nest(&prefix, tracking_routes());
    }
    // bodies are capped inside the handlers, with a problem+json answer; this only stops
    // axum's own 2 MB default from answering first
    app.layer(DefaultBodyLimit::disable())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            browser::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            browser::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            listener::body_deadline,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests (their
/// events reach the committer) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = state.hosts.set(browser::Hosts::new(
        state.config.public_url.as_deref(),
        listener.local_addr().ok(),
    ));
    let app = router(state.clone());
    listener::run(listener, app, state, shutdown).await
}

/// Keeps themes current: places new text answers within seconds of their arrival (or when
/// woken), and hourly re-discovers any tenant whose last discovery is older than
/// `theme_rediscovery` (a tenant's first discovery runs once it has enough text).
pub async fn theme_worker(state: Arc<AppState>) {
    let every = state.config.theme_rediscovery;
    let mut last_upkeep: Option<Instant> = None;
    loop {
        let due = !every.is_zero()
            && last_upkeep.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600));
        let store = state.store.0.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<(), error::ApiError> {
            if due {
                for t in store.list_tenants()? {
                    if let Err(e) = themes::upkeep(store.as_ref(), &t.id, every) {
                        tracing::warn!(tenant = %t.id, error = %e.detail, "theme upkeep failed");
                    }
                }
            } else {
                for t in store.themed_tenants()? {
                    themes::place_new(store.as_ref(), &t)?;
                }
            }
            Ok(())
        })
        .await;
        if due {
            last_upkeep = Some(Instant::now());
        }
        match r {
            Ok(Err(e)) => tracing::warn!(error = %e.detail, "placing answers in themes failed"),
            Err(e) => tracing::warn!(error = %e, "theme worker task failed"),
            Ok(Ok(())) => {}
        }
        tokio::select! {
            _ = state.themes_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
