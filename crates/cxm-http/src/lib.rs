//! The HTTP surface of cxm: ingest, the management API, problem+json errors, OpenAPI and
//! the dashboard. The only crate that knows HTTP and JSON shapes.

pub mod api;
pub mod auth;
pub mod browser;
pub mod error;
pub mod listener;
pub mod openapi;
pub mod pages;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use cxm_app::App;
use cxm_store::committer::Committer;
use cxm_store::Store;

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
    pub mail: Option<cxm_app::mailer::MailConfig>,
    /// OpenAI-compatible chat endpoint that may word follow-up questions.
    pub llm: Option<cxm_app::phrasing::LlmConfig>,
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

/// What the handlers share: the application (every use case's state) and what only HTTP
/// needs. Handlers read the application's fields through it (`st.store`, `st.policies`).
pub struct AppState {
    pub app: Arc<App>,
    pub config: HttpConfig,
    pub shutting_down: AtomicBool,
    pub started: Instant,
    pub pages: pages::Pages,
    /// The workers' figures for `/readyz` and `/metrics`, once they run.
    pub workers: std::sync::OnceLock<Arc<cxm_app::supervisor::Roster>>,
    /// This node's partitions, in cluster mode.
    pub cluster: std::sync::OnceLock<Arc<cxm_app::cluster::LeasePlacement>>,
    /// The names the dashboard answers to, known once the listener is bound.
    hosts: std::sync::OnceLock<browser::Hosts>,
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl HttpConfig {
    /// The settings the use cases need.
    pub fn app_config(&self) -> cxm_app::Config {
        cxm_app::Config {
            max_event_bytes: self.max_event_bytes,
            max_batch_events: self.max_batch_events,
            rate_limit_per_sec: self.rate_limit_per_sec,
            rate_limit_burst: self.rate_limit_burst,
            trust_timestamps: self.trust_timestamps,
            key_cache_ttl: self.key_cache_ttl,
            contact_rules: self.contact_rules,
            theme_rediscovery: self.theme_rediscovery,
            mail: self.mail.clone(),
            llm: self.llm.clone(),
            webhook_retry_base: self.webhook_retry_base,
            public_url: self.public_url.clone(),
            webhook_allow_networks: self.webhook_allow_networks.clone(),
            ..cxm_app::Config::default()
        }
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, committer: Committer, config: HttpConfig) -> Arc<AppState> {
        AppState::with_app(App::new(store, committer, config.app_config()), config)
    }

    pub fn with_app(app: Arc<App>, config: HttpConfig) -> Arc<AppState> {
        Arc::new(AppState {
            app,
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            pages: pages::Pages::new(),
            workers: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
            hosts: std::sync::OnceLock::new(),
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

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    let prefix = state.config.path_prefix.trim_end_matches('/').to_string();
    let app = Router::new()
        .merge(api::routes(&prefix))
        .merge(pages::routes())
        // the document describes the API, so it is served beside it, not from inside it
        .route("/api/openapi.json", axum::routing::get(openapi::serve));
    // bodies are capped inside the handlers, with a problem+json answer; this only stops
    // axum's own 2 MB default from answering first
    app.layer(DefaultBodyLimit::disable())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::errors::html_errors,
        ))
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
