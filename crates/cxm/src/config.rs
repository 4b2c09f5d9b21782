//! Configuration: flags > environment (`CXM_*`) > TOML file > defaults. Clap handles the
//! first two (every flag names its variable in `--help`); the file fills what they left unset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cxm_domain::IdentityRules;
use serde::Deserialize;

/// Where the data lives; shared by every command that touches the store.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite store (default ./cxm-data).
    #[arg(long, env = "CXM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// postgres://user@host:5432/db selects PostgreSQL instead of the embedded store.
    #[arg(long, env = "CXM_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Optional TOML file with any of the settings below (flags and env win over it).
    #[arg(long, env = "CXM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "CXM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Run as one node of a cluster on the --database-url PostgreSQL: this node's unique id.
    /// Each tenant's workers then run on the node that holds its partition's lease.
    #[arg(long, env = "CXM_NODE_ID")]
    pub node_id: Option<String>,
    /// Virtual partitions of a cluster (every node must agree; default 64).
    #[arg(long, env = "CXM_PARTITIONS")]
    pub partitions: Option<u32>,
    /// Ingest through NATS JetStream: the servers of the cluster's ingest log, comma
    /// separated (nats://h1:4222,nats://h2:4222). Needs --database-url; the node id
    /// defaults to the host name.
    #[arg(long, env = "CXM_NATS_URL", value_delimiter = ',')]
    pub nats_url: Vec<String>,
    /// Copies of each ingest stream (default 3; a single NATS server keeps one).
    #[arg(long, env = "CXM_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,
    /// Extra mount point for the tracking API, e.g. /collect serves /collect/v1/batch.
    #[arg(long, env = "CXM_PATH_PREFIX")]
    pub path_prefix: Option<String>,
    /// Largest request body after decompression, in bytes (default 4194304).
    #[arg(long, env = "CXM_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Largest single event, in bytes (default 32768); bigger ones are quarantined.
    #[arg(long, env = "CXM_MAX_EVENT_BYTES")]
    pub max_event_bytes: Option<usize>,
    /// Events one ingest request may carry; more is refused whole with 413 (default 2500).
    #[arg(long, env = "CXM_MAX_BATCH_EVENTS")]
    pub max_batch_events: Option<usize>,
    /// Events per second per key, every event of a batch counted; 0 disables the limit
    /// (default 100000).
    #[arg(long, env = "CXM_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Burst of the per-key rate limit, in events (default 200000).
    #[arg(long, env = "CXM_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// Quarantine rows kept per tenant and UTC day; later rejected events are only counted
    /// (default 10000).
    #[arg(long, env = "CXM_QUARANTINE_ROWS_PER_DAY")]
    pub quarantine_rows_per_day: Option<i64>,
    /// Quarantine bytes kept per tenant and UTC day (default 67108864).
    #[arg(long, env = "CXM_QUARANTINE_BYTES_PER_DAY")]
    pub quarantine_bytes_per_day: Option<i64>,
    /// Take client timestamps as sent, without clock-skew correction (historical imports).
    #[arg(long, env = "CXM_TRUST_TIMESTAMPS", num_args = 0..=1, default_missing_value = "true")]
    pub trust_timestamps: Option<bool>,
    /// How long a messageId is remembered for deduplication, in hours (default 48, minimum 24).
    #[arg(long, env = "CXM_DEDUP_WINDOW_HOURS")]
    pub dedup_window_hours: Option<u64>,
    /// Seconds a client has to send a request's headers, and the longest a kept-alive
    /// connection waits idle for the next request (default 15).
    #[arg(long, env = "CXM_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body once its headers arrived (default 15).
    #[arg(long, env = "CXM_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Connections served at once; more wait to be accepted (default 1024).
    #[arg(long, env = "CXM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Mark the session cookie Secure (when serving behind TLS).
    #[arg(long, env = "CXM_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    pub secure_cookies: Option<bool>,
    /// Re-discover each tenant's themes this often, in hours; 0 only on demand (default 24).
    #[arg(long, env = "CXM_THEME_REDISCOVERY_HOURS")]
    pub theme_rediscovery_hours: Option<u64>,
    /// SMTP relay for survey invitations, smtp://host[:port]; unset: invitations wait in the outbox.
    #[arg(long, env = "CXM_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// From header of invitation emails (default "cxm <surveys@localhost>").
    #[arg(long, env = "CXM_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Public base URL of this server, for links in emails (default http://LISTEN).
    #[arg(long, env = "CXM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A private network webhooks may reach although cxm refuses private addresses by
    /// default (CIDR such as 10.0.0.0/8, or one address); repeat the flag, or separate with
    /// commas in the variable.
    #[arg(
        long = "webhook-allow-network",
        env = "CXM_WEBHOOK_ALLOW_NETWORK",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub webhook_allow_network: Vec<String>,
    /// OpenAI-compatible endpoint (up to /v1) that may word follow-up questions; the key, if
    /// needed, comes from CXM_LLM_API_KEY.
    #[arg(long, env = "CXM_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// Model name at that endpoint.
    #[arg(long, env = "CXM_LLM_MODEL")]
    pub llm_model: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub path_prefix: Option<String>,
    pub max_request_bytes: Option<usize>,
    pub max_event_bytes: Option<usize>,
    pub max_batch_events: Option<usize>,
    pub rate_limit: Option<f64>,
    pub rate_burst: Option<f64>,
    pub quarantine_rows_per_day: Option<i64>,
    pub quarantine_bytes_per_day: Option<i64>,
    pub trust_timestamps: Option<bool>,
    pub dedup_window_hours: Option<u64>,
    pub secure_cookies: Option<bool>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub identity: Option<IdentityRules>,
    /// How often one customer may be invited to surveys.
    pub contact_rules: Option<cxm_domain::survey::ContactRules>,
    pub theme_rediscovery_hours: Option<u64>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub public_url: Option<String>,
    pub webhook_allow_networks: Option<Vec<String>>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("cxm.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(FileConfig::default())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        }
    }
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// This node's id and the cluster's partitions, in cluster mode.
    pub cluster: Option<(String, u32)>,
    /// The ingest log's servers and stream replicas, when ingest goes through NATS.
    pub nats: Option<(Vec<String>, usize)>,
    pub listen: SocketAddr,
    pub http: cxm_http::HttpConfig,
    pub dedup_window: Duration,
    pub identity: IdentityRules,
    pub quarantine_rows_per_day: i64,
    pub quarantine_bytes_per_day: i64,
}

impl Settings {
    /// The use cases' settings.
    pub fn app_config(&self) -> cxm_app::Config {
        cxm_app::Config {
            dedup_window: self.dedup_window,
            ..self.http.app_config()
        }
    }
    pub fn resolve(store: &StoreArgs, serve: &ServeArgs) -> anyhow::Result<Settings> {
        let file = FileConfig::load(store.config.as_deref())?;
        let d = cxm_http::HttpConfig::default();
        let dedup_hours = serve
            .dedup_window_hours
            .or(file.dedup_window_hours)
            .unwrap_or(48);
        anyhow::ensure!(
            dedup_hours >= 24,
            "dedup window must be at least 24 hours (got {dedup_hours})"
        );
        let max_request_bytes = serve
            .max_request_bytes
            .or(file.max_request_bytes)
            .unwrap_or(d.max_request_bytes);
        anyhow::ensure!(
            max_request_bytes >= 1024,
            "max request bytes must be at least 1024"
        );
        let max_batch_events = serve
            .max_batch_events
            .or(file.max_batch_events)
            .unwrap_or(d.max_batch_events);
        anyhow::ensure!(
            (1..=100_000).contains(&max_batch_events),
            "max batch events must be from 1 to 100000 (got {max_batch_events})"
        );
        let store_defaults = cxm_store::StoreSettings::default();
        let quarantine_rows_per_day = serve
            .quarantine_rows_per_day
            .or(file.quarantine_rows_per_day)
            .unwrap_or(store_defaults.quarantine_rows_per_day);
        let quarantine_bytes_per_day = serve
            .quarantine_bytes_per_day
            .or(file.quarantine_bytes_per_day)
            .unwrap_or(store_defaults.quarantine_bytes_per_day);
        anyhow::ensure!(
            quarantine_rows_per_day >= 0 && quarantine_bytes_per_day >= 0,
            "quarantine caps cannot be negative"
        );
        let path_prefix = serve
            .path_prefix
            .clone()
            .or(file.path_prefix)
            .unwrap_or_default();
        anyhow::ensure!(
            path_prefix.is_empty() || path_prefix.starts_with('/'),
            "path prefix must start with / (got {path_prefix:?})"
        );
        let listen = serve
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().unwrap());
        let secs = |flag: Option<u64>, file: Option<u64>, default: Duration, what: &str| {
            let v = flag.or(file).map(Duration::from_secs).unwrap_or(default);
            anyhow::ensure!(
                (1..=3600).contains(&v.as_secs()),
                "{what} must be from 1 to 3600 seconds"
            );
            Ok(v)
        };
        let header_timeout = secs(
            serve.header_timeout_secs,
            file.header_timeout_secs,
            d.header_timeout,
            "header timeout",
        )?;
        let body_timeout = secs(
            serve.body_timeout_secs,
            file.body_timeout_secs,
            d.body_timeout,
            "body timeout",
        )?;
        let max_connections = serve
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections);
        anyhow::ensure!(
            (1..=1_000_000).contains(&max_connections),
            "max connections must be from 1 to 1000000"
        );
        let public_url = serve.public_url.clone().or(file.public_url.clone());
        if let Some(u) = &public_url {
            anyhow::ensure!(
                url_is_http(u),
                "public url must be an http:// or https:// url with a host (got {u:?})"
            );
        }
        let mail = match serve.smtp_url.clone().or(file.smtp_url) {
            None => None,
            Some(url) => {
                let from = serve
                    .mail_from
                    .clone()
                    .or(file.mail_from)
                    .unwrap_or_else(|| "cxm <surveys@localhost>".into());
                let public = public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{listen}"));
                Some(
                    cxm_app::mailer::MailConfig::parse(&url, &from, &public)
                        .map_err(|e| anyhow::anyhow!(e))?,
                )
            }
        };
        let allow = if serve.webhook_allow_network.is_empty() {
            file.webhook_allow_networks.clone().unwrap_or_default()
        } else {
            serve.webhook_allow_network.clone()
        };
        let webhook_allow_networks =
            cxm_app::outbound::parse_networks(&allow).map_err(|e| anyhow::anyhow!(e))?;
        let llm = match (
            serve.llm_base_url.clone().or(file.llm_base_url),
            serve.llm_model.clone().or(file.llm_model),
        ) {
            (None, None) => None,
            (Some(url), Some(model)) => Some(
                cxm_app::phrasing::LlmConfig::parse(
                    &url,
                    &model,
                    std::env::var("CXM_LLM_API_KEY").ok(),
                )
                .map_err(|e| anyhow::anyhow!(e))?,
            ),
            _ => anyhow::bail!("set both the llm base url and the llm model, or neither"),
        };
        let database_url = store
            .database_url
            .clone()
            .or(file.database_url)
            .filter(|s| !s.is_empty());
        let nats_urls: Vec<String> = serve
            .nats_url
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let node_id = match (&serve.node_id, nats_urls.is_empty()) {
            (Some(n), _) => Some(n.clone()),
            (None, true) => None,
            (None, false) => Some(host_name()?),
        };
        if !nats_urls.is_empty() {
            anyhow::ensure!(
                database_url.is_some(),
                "ingest through NATS applies into PostgreSQL: give --database-url with --nats-url"
            );
        }
        let nats = (!nats_urls.is_empty()).then(|| (nats_urls, serve.nats_replicas.unwrap_or(3)));
        if let Some((_, r)) = &nats {
            anyhow::ensure!(
                (1..=5).contains(r),
                "--nats-replicas is {r}: JetStream keeps 1 to 5 copies of a stream"
            );
        }
        let cluster = match (&node_id, serve.partitions) {
            (None, None) => None,
            (None, Some(_)) => {
                anyhow::bail!("--partitions is for cluster mode: give --node-id too")
            }
            (Some(node), partitions) => {
                anyhow::ensure!(
                    database_url.is_some(),
                    "cluster mode keeps its leases in PostgreSQL: give --database-url with --node-id"
                );
                let partitions = partitions.unwrap_or(64);
                // the same checks the keeper makes, at start rather than on the first round
                cxm_app::cluster::Membership::new(node, partitions, Duration::from_secs(15))
                    .map_err(|e| anyhow::anyhow!(e.detail))?;
                Some((node.clone(), partitions))
            }
        };
        Ok(Settings {
            cluster,
            nats,
            data_dir: store
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./cxm-data")),
            database_url,
            listen,
            http: cxm_http::HttpConfig {
                max_request_bytes,
                max_event_bytes: serve
                    .max_event_bytes
                    .or(file.max_event_bytes)
                    .unwrap_or(d.max_event_bytes),
                max_batch_events,
                rate_limit_per_sec: serve
                    .rate_limit
                    .or(file.rate_limit)
                    .unwrap_or(d.rate_limit_per_sec),
                rate_limit_burst: serve
                    .rate_burst
                    .or(file.rate_burst)
                    .unwrap_or(d.rate_limit_burst),
                path_prefix,
                trust_timestamps: serve
                    .trust_timestamps
                    .or(file.trust_timestamps)
                    .unwrap_or(false),
                secure_cookies: serve
                    .secure_cookies
                    .or(file.secure_cookies)
                    .unwrap_or(false),
                contact_rules: file.contact_rules.unwrap_or_default(),
                theme_rediscovery: serve
                    .theme_rediscovery_hours
                    .or(file.theme_rediscovery_hours)
                    .map(|h| Duration::from_secs(h * 3600))
                    .unwrap_or(d.theme_rediscovery),
                mail,
                llm,
                webhook_allow_networks,
                public_url,
                header_timeout,
                body_timeout,
                max_connections,
                ..d
            },
            dedup_window: Duration::from_secs(dedup_hours * 3600),
            identity: file.identity.unwrap_or_default(),
            quarantine_rows_per_day,
            quarantine_bytes_per_day,
        })
    }

    /// The master key that seals secrets at rest: `CXM_MASTER_KEY`, or `master.key` in the
    /// data directory (created on first start). Servers sharing one PostgreSQL need the
    /// same key: set the variable on each.
    pub fn master_key(&self) -> anyhow::Result<cxm_store::sealed::MasterKey> {
        let env = std::env::var("CXM_MASTER_KEY").ok();
        cxm_store::sealed::MasterKey::load_or_create(&self.data_dir, env.as_deref())
            .map_err(|e| anyhow::anyhow!("master key: {e}"))
    }

    pub fn open_store(&self) -> anyhow::Result<std::sync::Arc<dyn cxm_store::Store>> {
        let settings = cxm_store::StoreSettings {
            master_key: Some(self.master_key()?),
            dedup_window: self.dedup_window,
            identity: self.identity.clone(),
            quarantine_rows_per_day: self.quarantine_rows_per_day,
            quarantine_bytes_per_day: self.quarantine_bytes_per_day,
            ..Default::default()
        };
        cxm_store::open(self.database_url.as_deref(), &self.data_dir, settings)
            .map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))
    }

    /// Opens the store a command works on. Only `serve`, `demo` and `tenant create` make a
    /// new one: anything else pointed at an empty directory (a forgotten `--data-dir`, say)
    /// says so instead of creating a store and then finding no tenant in it.
    pub fn open_existing_store(&self) -> anyhow::Result<std::sync::Arc<dyn cxm_store::Store>> {
        if self.database_url.is_none() && !self.data_dir.join("cxm.db").exists() {
            anyhow::bail!(
                "no store in {}: pass --data-dir (or set CXM_DATA_DIR) to the directory `cxm serve` uses; `cxm tenant create` or `cxm demo` makes a new one",
                self.data_dir.display()
            );
        }
        self.open_store()
    }
}

fn url_is_http(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://"))
        && u.split("://").nth(1).is_some_and(|rest| {
            !rest.is_empty() && !rest.starts_with('/') && !rest.starts_with(':')
        })
}

/// The host's name, for a node id nobody gave.
fn host_name() -> anyhow::Result<String> {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    name.ok_or_else(|| anyhow::anyhow!("cannot tell this host's name: give --node-id"))
}
