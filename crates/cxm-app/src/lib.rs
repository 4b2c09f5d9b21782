//! The use cases of cxm, one module per capability, and the supervisor that runs its
//! background work. Protocols (the HTTP crate, the CLI) parse a request into the typed input a
//! use case takes, call it, and render its answer or its [`AppError`]; every rule about what
//! cxm does lives here or below (the domain, the analytics, the store).
//!
//! Blocking use cases take `&dyn Store` and run on the caller's thread (the CLI calls them
//! directly; async callers go through [`blocking`]). Use cases that talk to the outside world
//! (webhooks, mail, the phrasing model) are async and take the [`App`].

pub mod accounts;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod customers;
pub mod decisions;
pub mod equity;
pub mod error;
pub mod experiments;
pub mod feedback;
pub mod health;
pub mod home;
pub mod ingest;
pub mod journey_scan;
pub mod journeys;
pub mod locale;
pub mod logsafe;
pub mod mailer;
pub mod maturity;
pub mod metrics;
pub mod outbound;
pub mod phrasing;
pub mod policies;
pub mod privacy;
pub mod provenance;
pub mod sign_in;
pub mod step_up;
pub mod supervisor;
pub mod surveys;
pub mod themes;
pub mod tickets;
pub mod triggers;
pub mod users;
pub mod webhooks;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use cxm_store::committer::Committer;
use cxm_store::{Store, StoreHandle};

pub use error::{AppError, AppResult, ErrorCode};

/// What the use cases are told by the operator (the CLI fills it from flags, env and the
/// config file, through the server's settings).
#[derive(Debug, Clone)]
pub struct Config {
    pub max_event_bytes: usize,
    /// Events one ingest request may carry; a request over it is refused whole.
    pub max_batch_events: usize,
    /// Events per second per key, every event of a batch counted; 0 turns the limit off.
    pub rate_limit_per_sec: f64,
    pub rate_limit_burst: f64,
    /// Trust client timestamps on every request (historical backfills only).
    pub trust_timestamps: bool,
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
    /// The URL people reach this server at: links in email.
    pub public_url: Option<String>,
    /// Private networks webhooks may reach anyway; by default none.
    pub webhook_allow_networks: Vec<ipnet::IpNet>,
    /// How long message ids are remembered for deduplication.
    pub dedup_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_event_bytes: cxm_domain::MAX_EVENT_BYTES,
            max_batch_events: 2_500,
            rate_limit_per_sec: 100_000.0,
            rate_limit_burst: 200_000.0,
            trust_timestamps: false,
            key_cache_ttl: Duration::from_secs(5),
            contact_rules: cxm_domain::survey::ContactRules::default(),
            theme_rediscovery: Duration::from_secs(24 * 3600),
            mail: None,
            llm: None,
            webhook_retry_base: Duration::from_secs(5),
            public_url: None,
            webhook_allow_networks: vec![],
            dedup_window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The state every use case shares in a running server: the store, the ingest pipeline's
/// committer, the caches that spare the store, and the clients that reach out.
pub struct App {
    pub store: StoreHandle,
    pub committer: Committer,
    pub config: Config,
    pub keys: auth::KeyCache,
    pub limiter: ingest::RateLimiter,
    pub metrics: metrics::Metrics,
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
    /// The cluster's ingest log, when ingest goes through NATS JetStream: events are
    /// published there and applied by their partition's owner instead of committed here.
    pub ingest_log: std::sync::OnceLock<Arc<cluster::log::IngestLog>>,
    /// What this node's partition owners applied from the log.
    pub apply_stats: Arc<cluster::apply::ApplyStats>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, committer: Committer, config: Config) -> Arc<App> {
        let outbound = outbound::OutboundPolicy {
            allow: config.webhook_allow_networks.clone(),
        };
        Arc::new(App {
            store: StoreHandle(store.clone()),
            committer,
            keys: auth::KeyCache::new(config.key_cache_ttl),
            limiter: ingest::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            metrics: metrics::Metrics::default(),
            analyzer: cxm_analytics::Analyzer::new(),
            themes_wake: tokio::sync::Notify::new(),
            http_client: reqwest::Client::new(),
            webhook_client: outbound.client(),
            outbound,
            policies: policies::PolicyCache::default(),
            decision_log: cxm_store::decision_log::DecisionLog::spawn(store),
            equity: equity::EquityCache::default(),
            rollouts: policies::RolloutCache::default(),
            sign_ins: sign_in::Throttle::default(),
            sign_in_slots: sign_in::slots(),
            ingest_log: Default::default(),
            apply_stats: Default::default(),
            config,
        })
    }
}

/// Runs blocking use-case work (the store, clustering, scoring) off the async workers.
pub async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn Store) -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let store = app.store.0.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("blocking task failed: {e}")))?
}
