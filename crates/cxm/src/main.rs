//! The `cxm` binary: server, demo, setup, import, generator, rebuild and benchmarks.

// the ingest path allocates many small short-lived values (json trees, rows); glibc's
// allocator showed up at ~15% of ingest profiles, mimalloc cuts that
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agent_cli;
mod analyze;
mod bench;
mod clv_cli;
mod config;
mod generate;
mod health_cli;
mod import;
mod journey_cli;
mod load;
mod server;
mod setup;
mod stats_cli;
mod value_cli;

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use config::{ServeArgs, Settings, StoreArgs};
use cxm_store::{KeyKind, Role};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "cxm",
    version,
    about = "Customer experience management: signals in, one customer, owned decisions out."
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// Log format on stderr.
    #[arg(long, env = "CXM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve ingest, the API and the dashboard.
    Serve(ServeArgs),
    /// Create a demo tenant with generated history, then serve it and print how to log in.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Events to generate.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Dashboard users.
    #[command(subcommand)]
    User(UserCmd),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Customers: look one up, read the merge ledger, unmerge.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// NPS, CSAT or CES over a period: overall with a 95% interval, the trend, the change.
    Metrics {
        /// nps, csat or ces
        metric: String,
        #[arg(long)]
        tenant: String,
        /// First day, YYYY-MM-DD (default: 90 days ago).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long)]
        to: Option<String>,
        /// day, week or month (default week).
        #[arg(long)]
        interval: Option<String>,
        /// channel, survey, journey, stage, agent or tier.
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Survey definitions and the invitations their targeting made.
    #[command(subcommand)]
    Survey(SurveyCmd),
    /// Journeys as data: apply definitions from files, list them, read their metrics.
    #[command(subcommand)]
    Journey(journey_cli::JourneyCmd),
    /// Account health signals: show, apply from a file, backtest against churn.
    #[command(subcommand)]
    Signals(health_cli::SignalsCmd),
    /// Accounts by health band, with the signals that fired.
    #[command(subcommand)]
    Accounts(health_cli::AccountsCmd),
    /// Customer lifetime value models on purchase summaries.
    #[command(subcommand)]
    Clv(ClvCmd),
    /// Experiment statistics: compare two arms, size a test.
    #[command(subcommand)]
    Stats(stats_cli::StatsCmd),
    /// Experiments and staged rollouts: create, start, move the rollout, read results.
    #[command(subcommand)]
    Experiment(value_cli::ExperimentCmd),
    /// Customer equity: CLV, tiers, accounts.
    #[command(subcommand)]
    Equity(value_cli::EquityCmd),
    /// Agent authority policies (Cedar): show the matrix, apply, test against history, activate.
    #[command(subcommand)]
    Policy(agent_cli::PolicyCmd),
    /// Agents that ask before acting: register, list with KPIs, make keys.
    #[command(subcommand)]
    Agent(agent_cli::AgentCmd),
    /// How long each class of data is kept: show, set, purge now.
    #[command(subcommand)]
    Retention(agent_cli::RetentionCmd),
    /// The tamper-evident audit log of decisions, reviews and admin actions.
    #[command(subcommand)]
    Audit(agent_cli::AuditCmd),
    /// Events set aside at ingest, with the reason.
    Quarantine {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Import history.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Generate a reproducible synthetic dataset into a tenant (or as NDJSON with --out).
    Generate {
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Tenant to load into (omit with --out).
        #[arg(long)]
        tenant: Option<String>,
        /// Write NDJSON here instead of loading ("-" for stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute every projection (profiles, identity, daily counts) from the event log.
    Rebuild {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Text analysers as Unix tools: one text per line on stdin, one JSON object per line out.
    #[command(subcommand)]
    Analyze(AnalyzeCmd),
    /// Themes in open text.
    #[command(subcommand)]
    Themes(ThemesCmd),
    /// Evaluations against published datasets; prints JSON.
    #[command(subcommand)]
    Eval(EvalCmd),
    /// Reproducible performance measurements; prints JSON.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

#[derive(Subcommand, Debug)]
enum TenantCmd {
    /// Create a tenant with a write key and a secret key (shown once).
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a dashboard user. The password comes from --password-stdin or CXM_PASSWORD, or is generated and printed.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, analyst, agent-operator or viewer.
        #[arg(long, default_value = "analyst")]
        role: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Offboard a user: they cannot sign in and every session they have ends (on the audit log).
    Disable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (from --password-stdin or CXM_PASSWORD, or generated and
    /// printed); their sessions end.
    Passwd {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign a user out everywhere.
    RevokeSessions {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Create a key; the key is printed once and only its hash is kept.
    Create {
        #[arg(long)]
        tenant: String,
        /// write (ingest only) or secret (management API).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum AnalyzeCmd {
    /// VADER scores (identical to vaderSentiment 3.3.2) plus churn, legal, rage and effort cues.
    Sentiment {
        /// Score text that looks non-English too (normally marked unknown and left unscored).
        #[arg(long)]
        all_languages: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ThemesCmd {
    /// Cluster texts (one per line, or a TSV's first column) into themes.
    Discover {
        #[arg(long)]
        input: PathBuf,
        /// Number of themes (default: about sqrt(n/2)).
        #[arg(long)]
        k: Option<usize>,
        /// jsonl: {"line","theme","label"} per input line; json: themes with terms and quotes.
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Re-discover a tenant's stored themes now (the server also does it daily); names,
    /// merges and splits are kept.
    Rediscover {
        #[arg(long)]
        tenant: String,
        /// Days of text answers to cluster (default 90).
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long)]
        k: Option<usize>,
    },
    /// A tenant's themes with volume, sentiment, NPS impact and ARR.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Include merged and retired themes.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Give a theme a name that survives re-discovery.
    Rename {
        #[arg(long)]
        tenant: String,
        theme: String,
        label: String,
    },
    /// Merge a theme into another.
    Merge {
        #[arg(long)]
        tenant: String,
        theme: String,
        into: String,
    },
    /// Split the answers of a theme that use any of the words into a new theme.
    Split {
        #[arg(long)]
        tenant: String,
        theme: String,
        /// Comma-separated words.
        #[arg(long)]
        terms: String,
        #[arg(long)]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
enum SurveyCmd {
    /// Save a definition (a JSON file, as the API takes it) as the survey's next version.
    Save {
        #[arg(long)]
        tenant: String,
        survey_id: String,
        file: PathBuf,
    },
    /// Surveys with links, displays, responses and response rate.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Invitations made by targeting (pending ones carry their link).
    Invitations {
        #[arg(long)]
        tenant: String,
        /// pending, delivered, held or failed
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum EvalCmd {
    /// Hutto & Gilbert's VADER corpora: r, weighted P/R/F1 per corpus, throughput.
    Sentiment {
        /// Folder holding vader/ (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Exit non-zero below the floors (tweets r >= 0.87, F1 >= 0.94).
        #[arg(long)]
        assert: bool,
    },
    /// BG/NBD, Pareto/NBD and Gamma-Gamma on CDNOW against the published parameters,
    /// log-likelihood, conditional expectations and fit time.
    Clv {
        /// Folder holding cdnow/ (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Exit non-zero unless r, α, a, b are within 0.005 and the log-likelihood within 0.1.
        #[arg(long)]
        assert: bool,
    },
    /// A/B statistics against statsmodels and GrowthBook's engine (reference outputs).
    Ab {
        /// Folder holding ab_testing/ (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Exit non-zero unless every value agrees to 1e-9 relative (p-values 1e-8).
        #[arg(long)]
        assert: bool,
    },
    /// Intent discovery on the TEXTOIR banking test split: NMI, ARI, ACC, time.
    Themes {
        /// Folder holding textoir_banking/ (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Exit non-zero below the floors (NMI >= 55, ACC >= 33 with K given).
        #[arg(long)]
        assert: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ClvCmd {
    /// Fit a model to a summary CSV (frequency, recency, T); prints the parameters and the
    /// log-likelihood as JSON.
    Fit {
        /// bgnbd or pareto (purchases, P(alive)), or gammagamma (spend; needs a
        /// monetary_value column).
        #[arg(long, default_value = "bgnbd")]
        model: String,
        #[arg(long)]
        input: PathBuf,
        /// Print JSON instead of a line per parameter.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CustomerCmd {
    /// The profile an identifier belongs to, with the escalation summary.
    Show {
        #[arg(long)]
        tenant: String,
        /// type:value, e.g. email:ada@example.com
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        json: bool,
    },
    /// The merge ledger of the customer an identifier belongs to.
    Merges {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        json: bool,
    },
    /// Erase a customer everywhere (right to erasure); prints the tombstone and the counts.
    Erase {
        #[arg(long)]
        tenant: String,
        /// type:value, e.g. email:ada@example.com
        #[arg(long)]
        identifier: String,
    },
    /// Everything cxm holds about a customer, as JSON (a data subject access request).
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        identifier: String,
    },
    /// Block an identifier and rebuild identities without it (stored events are untouched).
    Unmerge {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        identifier: String,
        #[arg(long, default_value = "unmerged from the cli")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCmd {
    /// Import events from CSV with a column mapping, e.g. --map userId=user,event=name,timestamp=ts.
    Events {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        map: String,
        /// Apply clock-skew correction instead of trusting the file's timestamps.
        #[arg(long)]
        correct_skew: bool,
    },
    /// Import survey answers from CSV (Qualtrics exports included), e.g. --map nps:nps=Q1,why:text=Q2.
    Feedback {
        file: PathBuf,
        #[arg(long)]
        tenant: String,
        /// question:type=column pairs.
        #[arg(long)]
        map: String,
        #[arg(long)]
        survey_id: Option<String>,
        /// Channel the answers came through.
        #[arg(long, default_value = "survey")]
        channel: String,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CXM_LOG")
        // c2pa reports every step of reading a manifest at info
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,c2pa=warn"));
    // colours only for a person at a terminal: escape codes in a log file or a collector are
    // noise at best
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn print(json_out: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

fn main() {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = || Settings::resolve(&cli.store, &ServeArgs::default());
    match cli.cmd {
        Cmd::Serve(ref serve) => {
            let s = Settings::resolve(&cli.store, serve)?;
            let store = s.open_store()?;
            runtime()?.block_on(async {
                let listener = tokio::net::TcpListener::bind(s.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", s.listen))?;
                server::run(&s, store, listener, server::shutdown_signal()).await
            })
        }
        Cmd::Demo {
            ref serve,
            events,
            seed,
        } => {
            let s = Settings::resolve(&cli.store, serve)?;
            let store = s.open_store()?;
            let t = setup::create_tenant(store.as_ref(), "Demo Co")?;
            let password = std::env::var("CXM_PASSWORD")
                .ok()
                .filter(|p| p.len() >= 10)
                .unwrap_or_else(setup::random_password);
            let email = format!("owner-{}@demo.cxm", &t.tenant_id[t.tenant_id.len() - 6..]);
            setup::create_user(store.as_ref(), &t.tenant_id, &email, &password, Role::Owner)?;
            eprintln!("generating {events} events (seed {seed})...");
            // sign-ups are when the demo experiment first showed each customer its arm, and
            // when their purchases begin
            let mut signups = vec![];
            let mut accounts = std::collections::HashMap::new();
            let demo_now = chrono::Utc::now();
            let mut stats = load::load(
                store.as_ref(),
                &t.tenant_id,
                "demo",
                generate::Generator::new(seed, demo_now)
                    .events(events)
                    .inspect(|e| {
                        if let (Some(u), Some(g)) = (e["userId"].as_str(), e["groupId"].as_str()) {
                            accounts.insert(u.to_string(), g.to_string());
                        }
                        if e["event"] == "Signed Up" {
                            if let (Some(u), Some(ts)) =
                                (e["userId"].as_str(), e["timestamp"].as_str())
                            {
                                if let Ok(ts) = chrono::DateTime::parse_from_rfc3339(ts) {
                                    signups.push((u.to_string(), ts.timestamp_millis()));
                                }
                            }
                        }
                    }),
                true,
            )?;
            let buyers: Vec<(String, Option<String>, i64)> = signups
                .iter()
                .map(|(u, at)| (u.clone(), accounts.get(u).cloned(), *at))
                .collect();
            let orders = load::load(
                store.as_ref(),
                &t.tenant_id,
                "demo",
                generate::purchases(seed, &buyers, demo_now).into_iter(),
                true,
            )?;
            stats.accepted += orders.accepted;
            // survey answers from a share of the generated customers, so the voice-of-the-
            // customer pages and themes have something to show
            let analyzer = cxm_analytics::Analyzer::new();
            let now = chrono::Utc::now();
            let rows: Vec<cxm_store::FeedbackRow> =
                generate::feedback(seed, (events / 40).clamp(50, 5000), now)
                    .iter()
                    .filter_map(|a| cxm_domain::feedback::parse_answer(a, now).ok())
                    .map(|a| cxm_app::feedback::enrich(&analyzer, a).0)
                    .collect();
            let answers = store.insert_feedback(&t.tenant_id, &rows)?;
            for yaml in generate::journeys(now.date_naive()) {
                let def = cxm_app::journeys::parse_definition(&yaml).map_err(anyhow::Error::msg)?;
                cxm_app::journeys::save(store.as_ref(), &t.tenant_id, &def, "demo")
                    .map_err(|e| anyhow::anyhow!("demo journey: {}", e.detail))?;
            }
            cxm_app::journeys::catch_up(store.as_ref(), &t.tenant_id, usize::MAX)
                .map_err(|e| anyhow::anyhow!("demo journeys: {}", e.detail))?;
            cxm_app::health::upkeep(store.as_ref(), &t.tenant_id, true)
                .map_err(|e| anyhow::anyhow!("demo health: {}", e.detail))?;
            demo_tickets(store.as_ref(), &t.tenant_id)?;
            demo_agents(store.as_ref(), &t.tenant_id)?;
            demo_experiments(store.as_ref(), &t.tenant_id, &signups)?;
            runtime()?.block_on(async {
                let listener = tokio::net::TcpListener::bind(s.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", s.listen))?;
                let addr = listener.local_addr()?;
                println!(
                    "cxm demo is ready: {} events loaded ({} quarantined on purpose: junk ids), {} survey answers",
                    stats.accepted, stats.quarantined, answers.accepted
                );
                println!("  dashboard:  http://{addr}/");
                println!("  login:      {email}");
                println!("  password:   {password}");
                println!("  write key:  {}", t.write_key);
                println!("  secret key: {}", t.secret_key);
                println!("press Ctrl-C to stop");
                server::run(&s, store, listener, server::shutdown_signal()).await
            })
        }
        Cmd::Tenant(TenantCmd::Create { ref name, json }) => {
            let store = settings()?.open_store()?;
            let t = setup::create_tenant(store.as_ref(), name)?;
            print(
                json,
                json!({"tenant_id": t.tenant_id, "write_key": t.write_key, "secret_key": t.secret_key}),
                || {
                    format!("tenant:     {}\nwrite key:  {}\nsecret key: {}\n(keys are shown once; store them now)", t.tenant_id, t.write_key, t.secret_key)
                },
            );
            Ok(())
        }
        Cmd::Tenant(TenantCmd::List { json }) => {
            let store = settings()?.open_store()?;
            let ts = store.list_tenants()?;
            print(json, json!(ts), || {
                ts.iter()
                    .map(|t| format!("{}\t{}", t.id, t.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Cmd::User(UserCmd::Create {
            ref tenant,
            ref email,
            ref role,
            password_stdin,
            json,
        }) => {
            let role = Role::parse(role).with_context(|| {
                format!(
                    "role {role:?} must be one of owner, admin, analyst, agent-operator, viewer"
                )
            })?;
            let (password, generated) = if password_stdin {
                let mut p = String::new();
                std::io::stdin().read_to_string(&mut p)?;
                (p.trim_end_matches(['\r', '\n']).to_string(), false)
            } else if let Ok(p) = std::env::var("CXM_PASSWORD") {
                (p, false)
            } else {
                (setup::random_password(), true)
            };
            let store = settings()?.open_store()?;
            let u = setup::create_user(store.as_ref(), tenant, email, &password, role)?;
            let shown = generated.then_some(password.clone());
            print(
                json,
                json!({"user_id": u.id, "email": u.email, "role": u.role, "password": shown}),
                || {
                    let mut s =
                        format!("user {} ({}) created as {}", u.email, u.id, u.role.as_str());
                    if let Some(p) = &shown {
                        s.push_str(&format!("\npassword: {p}"));
                    }
                    s
                },
            );
            Ok(())
        }
        Cmd::User(UserCmd::List { ref tenant, json }) => {
            let store = settings()?.open_store()?;
            let us = store.list_users(tenant)?;
            print(json, json!(us), || {
                us.iter()
                    .map(|u| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            u.id,
                            u.email,
                            u.role.as_str(),
                            if u.disabled_at_ms.is_some() {
                                "disabled"
                            } else {
                                "active"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Cmd::User(
            ref c @ (UserCmd::Disable { .. }
            | UserCmd::Enable { .. }
            | UserCmd::Passwd { .. }
            | UserCmd::RevokeSessions { .. }),
        ) => setup::manage_user(settings()?.open_store()?.as_ref(), c_to_action(c)?),
        Cmd::Key(KeyCmd::Create {
            ref tenant,
            ref kind,
            ref name,
            json,
        }) => {
            let kind = KeyKind::parse(kind)
                .filter(|k| *k != KeyKind::Agent)
                .context("--kind must be write or secret (agent keys: cxm agent key NAME)")?;
            let store = settings()?.open_store()?;
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let (plain, rec) =
                cxm_app::auth::generate_key(tenant, kind, name.as_deref().unwrap_or(kind.as_str()));
            store.insert_key(&rec)?;
            print(
                json,
                json!({"key_id": rec.id, "key": plain, "kind": kind}),
                || {
                    format!(
                        "{} key {} created:\n{plain}\n(shown once)",
                        kind.as_str(),
                        rec.id
                    )
                },
            );
            Ok(())
        }
        Cmd::Key(KeyCmd::List { ref tenant, json }) => {
            let store = settings()?.open_store()?;
            let ks = store.list_keys(tenant)?;
            print(json, json!(ks), || {
                ks.iter()
                    .map(|k| {
                        format!(
                            "{}\t{}\t{}\t{}…\t{}",
                            k.id,
                            k.kind.as_str(),
                            k.name,
                            k.prefix,
                            if k.revoked_at_ms.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Cmd::Key(KeyCmd::Revoke {
            ref tenant,
            ref key_id,
        }) => {
            let store = settings()?.open_store()?;
            anyhow::ensure!(
                store.revoke_key(tenant, key_id)?,
                "no active key {key_id} in tenant {tenant}"
            );
            println!("revoked {key_id} (servers stop accepting it within 5 seconds)");
            Ok(())
        }
        Cmd::Customer(ref c) => customer(settings()?.open_store()?.as_ref(), c),
        Cmd::Metrics {
            ref metric,
            ref tenant,
            ref from,
            ref to,
            ref interval,
            ref by,
            json,
        } => {
            let store = settings()?.open_store()?;
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let q = cxm_app::feedback::MetricQuery {
                from: from.clone(),
                to: to.clone(),
                interval: interval.clone(),
                by: by.clone(),
            };
            let r = runtime()?
                .block_on(cxm_app::feedback::report(
                    &cxm_store::StoreHandle(store),
                    tenant,
                    metric,
                    &q,
                ))
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.code(), e.detail))?;
            print(json, serde_json::to_value(&r)?, || {
                let mut lines = vec![match &r.overall {
                    Some(o) => format!(
                        "{} {}..{}: {} (95% CI {}..{}), n {}",
                        r.metric, r.from, r.to, o.value, o.ci_low, o.ci_high, o.n
                    ),
                    None => format!("{} {}..{}: no answers", r.metric, r.from, r.to),
                }];
                for p in &r.series {
                    lines.push(format!(
                        "{}\t{}\t{}\tn={}",
                        p.period,
                        p.group.as_deref().unwrap_or("-"),
                        p.value,
                        p.n
                    ));
                }
                lines.join("\n")
            });
            Ok(())
        }
        Cmd::Survey(ref c) => survey(settings()?.open_store()?.as_ref(), c),
        Cmd::Journey(journey_cli::JourneyCmd::Check {
            ref scripts,
            ref url,
            ref write_key,
            ref secret_key,
            ref name,
            ref ticket_owner,
        }) => {
            let mut failed = vec![];
            for script in journey_cli::scripts(scripts, name)? {
                if !journey_cli::check(
                    url,
                    write_key,
                    secret_key,
                    &script,
                    ticket_owner.as_deref(),
                )? {
                    failed.push(script.name);
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("journey checks failed: {}", failed.join(", "))
            }
        }
        Cmd::Journey(ref c) => journey_cli::run(settings()?.open_store()?.as_ref(), c),
        Cmd::Signals(ref c) => health_cli::signals(settings()?.open_store()?.as_ref(), c),
        Cmd::Accounts(ref c) => health_cli::accounts(settings()?.open_store()?.as_ref(), c),
        Cmd::Policy(ref c) => agent_cli::policy(settings()?.open_store()?.as_ref(), c),
        Cmd::Retention(ref c) => agent_cli::retention(settings()?.open_store()?.as_ref(), c),
        Cmd::Agent(ref c) => agent_cli::agent(settings()?.open_store()?.as_ref(), c),
        Cmd::Audit(ref c) => {
            if agent_cli::audit(settings()?.open_store()?.as_ref(), c)? {
                Ok(())
            } else {
                anyhow::bail!("the audit log was tampered with (see above)")
            }
        }
        Cmd::Quarantine {
            ref tenant,
            limit,
            json,
        } => {
            let store = settings()?.open_store()?;
            let q = store.quarantine(tenant, limit)?;
            print(json, json!(q), || {
                q.iter()
                    .map(|e| format!("{}\t{}\t{}", e.id, e.code, e.detail))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Cmd::Import(ImportCmd::Events {
            ref file,
            ref tenant,
            ref map,
            correct_skew,
        }) => {
            let map = import::parse_map(map)?;
            let msgs = import::read(file, &map)?;
            let store = settings()?.open_store()?;
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let stats = load::load(
                store.as_ref(),
                tenant,
                "import",
                msgs.into_iter(),
                !correct_skew,
            )?;
            println!("{}", json!(stats));
            Ok(())
        }
        Cmd::Import(ImportCmd::Feedback {
            ref file,
            ref tenant,
            ref map,
            ref survey_id,
            ref channel,
        }) => {
            let map = import::parse_feedback_map(map)?;
            let raw = import::read_feedback(file, &map, survey_id.as_deref(), channel)?;
            let store = settings()?.open_store()?;
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let now = chrono::Utc::now();
            let analyzer = cxm_analytics::Analyzer::new();
            let mut rows = vec![];
            for (i, a) in raw.iter().enumerate() {
                let answer = cxm_domain::feedback::parse_answer(a, now)
                    .map_err(|e| anyhow::anyhow!("answer {} ({}): {e}", i + 1, a["response_id"]))?;
                rows.push(cxm_app::feedback::enrich(&analyzer, answer).0);
            }
            let out = store.insert_feedback(tenant, &rows)?;
            println!("{}", json!(out));
            Ok(())
        }
        Cmd::Generate {
            events,
            seed,
            ref tenant,
            ref out,
        } => {
            let gen = generate::Generator::new(seed, chrono::Utc::now());
            match (tenant, out) {
                (_, Some(path)) => {
                    use std::io::Write;
                    let mut w: Box<dyn Write> = if path.as_os_str() == "-" {
                        Box::new(std::io::stdout().lock())
                    } else {
                        Box::new(std::fs::File::create(path)?)
                    };
                    let mut w = std::io::BufWriter::new(&mut w);
                    for e in gen.events(events) {
                        writeln!(w, "{e}")?;
                    }
                    Ok(())
                }
                (Some(t), None) => {
                    let store = settings()?.open_store()?;
                    anyhow::ensure!(store.tenant(t)?.is_some(), "no tenant {t}");
                    let started = std::time::Instant::now();
                    let stats =
                        load::load(store.as_ref(), t, "generate", gen.events(events), true)?;
                    println!(
                        "{}",
                        json!({"loaded": stats, "seconds": started.elapsed().as_secs_f64()})
                    );
                    Ok(())
                }
                (None, None) => {
                    anyhow::bail!("give --tenant to load into, or --out FILE for NDJSON")
                }
            }
        }
        Cmd::Rebuild { ref tenant } => {
            let store = settings()?.open_store()?;
            let started = std::time::Instant::now();
            let stats = store.rebuild(tenant.as_deref())?;
            println!(
                "{}",
                json!({"tenants": stats.tenants, "events": stats.events, "seconds": started.elapsed().as_secs_f64()})
            );
            Ok(())
        }
        Cmd::Analyze(AnalyzeCmd::Sentiment { all_languages }) => {
            analyze::sentiment_stream(
                std::io::stdin().lock(),
                std::io::BufWriter::new(std::io::stdout().lock()),
                all_languages,
            )?;
            Ok(())
        }
        Cmd::Eval(EvalCmd::Sentiment { ref data, assert }) => {
            let dir = data.clone().unwrap_or_else(analyze::default_data_dir);
            let out = analyze::eval_sentiment(&dir, assert)?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Cmd::Themes(
            ref t @ (ThemesCmd::Rediscover { .. }
            | ThemesCmd::List { .. }
            | ThemesCmd::Rename { .. }
            | ThemesCmd::Merge { .. }
            | ThemesCmd::Split { .. }),
        ) => stored_themes(settings()?.open_store()?.as_ref(), t),
        Cmd::Themes(ThemesCmd::Discover {
            ref input,
            k,
            ref format,
            seed,
        }) => {
            anyhow::ensure!(
                k.is_none_or(|k| (1..=1000).contains(&k)),
                "--k must be between 1 and 1000"
            );
            let texts = analyze::read_texts(input)?;
            match format.as_str() {
                "jsonl" => analyze::themes_jsonl(
                    &texts,
                    k,
                    seed,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                ),
                "json" => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&analyze::themes_summary(&texts, k, seed))?
                    );
                    Ok(())
                }
                other => anyhow::bail!("--format must be jsonl or json (got {other:?})"),
            }
        }
        Cmd::Eval(EvalCmd::Clv { ref data, assert }) => {
            let dir = data.clone().unwrap_or_else(analyze::default_data_dir);
            println!(
                "{}",
                serde_json::to_string_pretty(&clv_cli::eval(&dir, assert)?)?
            );
            Ok(())
        }
        Cmd::Clv(ClvCmd::Fit {
            ref model,
            ref input,
            json,
        }) => {
            let fitted = clv_cli::fit(model, input)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&fitted)?);
            } else if let Some(fields) = fitted.as_object() {
                for (k, v) in fields {
                    println!("{k:<16} {v}");
                }
            }
            Ok(())
        }
        Cmd::Stats(ref cmd) => stats_cli::run(cmd),
        Cmd::Experiment(ref c) => value_cli::experiment(settings()?.open_store()?.as_ref(), c),
        Cmd::Equity(ref c) => value_cli::equity(settings()?.open_store()?.as_ref(), c),
        Cmd::Eval(EvalCmd::Ab { ref data, assert }) => {
            let dir = data.clone().unwrap_or_else(analyze::default_data_dir);
            println!(
                "{}",
                serde_json::to_string_pretty(&stats_cli::eval(&dir, assert)?)?
            );
            Ok(())
        }
        Cmd::Eval(EvalCmd::Themes { ref data, assert }) => {
            let dir = data.clone().unwrap_or_else(analyze::default_data_dir);
            println!(
                "{}",
                serde_json::to_string_pretty(&analyze::eval_themes(&dir, assert)?)?
            );
            Ok(())
        }
        Cmd::Bench(b) => {
            let out = runtime()?.block_on(bench::run(b, &cli.store))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

fn parse_identifier(s: &str) -> anyhow::Result<cxm_domain::Identifier> {
    cxm_domain::Identifier::parse_typed(s)
        .with_context(|| format!("identifier {s:?} must be type:value, e.g. email:ada@example.com"))
}

fn find_profile(
    store: &dyn cxm_store::Store,
    tenant: &str,
    identifier: &str,
) -> anyhow::Result<cxm_store::Profile> {
    let id = parse_identifier(identifier)?;
    let pid = store
        .profile_for(tenant, &id)?
        .with_context(|| format!("no customer has {identifier} in tenant {tenant}"))?;
    store
        .profile(tenant, &pid)?
        .with_context(|| format!("profile {pid} vanished"))
}

fn customer(store: &dyn cxm_store::Store, cmd: &CustomerCmd) -> anyhow::Result<()> {
    match cmd {
        CustomerCmd::Show {
            tenant,
            identifier,
            json,
        } => {
            let p = find_profile(store, tenant, identifier)?;
            let recent = store.timeline(
                tenant,
                &p,
                &cxm_store::TimelinePage {
                    before: None,
                    limit: 100,
                },
            )?;
            let events: Vec<cxm_domain::context::RecentEvent> = recent
                .iter()
                .map(|e| cxm_domain::context::RecentEvent {
                    name: e.name.clone(),
                    event_type: e.event_type.clone(),
                    category: serde_json::from_value(json!(e.category))
                        .unwrap_or(cxm_domain::EventCategory::Uncategorized),
                    channel: cxm_domain::Channel::parse(&e.channel)
                        .unwrap_or(cxm_domain::Channel::Other),
                    timestamp: chrono::DateTime::from_timestamp_millis(e.timestamp_ms)
                        .unwrap_or_default(),
                })
                .collect();
            let summary = cxm_domain::context::summary(&events, chrono::Utc::now());
            print(*json, json!({"profile": p, "summary": summary}), || {
                let ids = p
                    .identifiers
                    .iter()
                    .map(|i| format!("{}:{}", i.kind, i.value))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "{} ({} events)\n{summary}\nidentifiers: {ids}",
                    p.id, p.event_count
                )
            });
            Ok(())
        }
        CustomerCmd::Merges {
            tenant,
            identifier,
            json,
        } => {
            let p = find_profile(store, tenant, identifier)?;
            let l = store.ledger(tenant, &p.id)?;
            print(*json, json!(l), || {
                l.iter()
                    .map(|e| {
                        let id = e
                            .identifier
                            .as_ref()
                            .map(|i| format!("{}:{}", i.kind, i.value))
                            .unwrap_or_default();
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            e.action,
                            e.other_profile_id.as_deref().unwrap_or("-"),
                            id,
                            e.message_id.as_deref().unwrap_or("-"),
                            e.reason.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        CustomerCmd::Erase { tenant, identifier } => {
            parse_identifier(identifier)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let erased = cxm_app::privacy::erase_customer(store, tenant, identifier, &actor)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.code(), e.detail))?;
            println!("{}", serde_json::to_string_pretty(&erased)?);
            Ok(())
        }
        CustomerCmd::Export { tenant, identifier } => {
            parse_identifier(identifier)?;
            let export = cxm_app::privacy::export_customer(store, tenant, identifier)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.code(), e.detail))?;
            println!("{}", serde_json::to_string_pretty(&export)?);
            Ok(())
        }
        CustomerCmd::Unmerge {
            tenant,
            identifier,
            reason,
        } => {
            let id = parse_identifier(identifier)?;
            find_profile(store, tenant, identifier)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let stats = store.block_identifier(tenant, &id, reason, &actor)?;
            println!(
                "{}",
                json!({"blocked": identifier, "events_replayed": stats.events})
            );
            Ok(())
        }
    }
}

/// The tenant's stored themes, through the same code the API uses.
fn stored_themes(store: &dyn cxm_store::Store, cmd: &ThemesCmd) -> anyhow::Result<()> {
    use cxm_app::themes::{self, EditRequest};
    let api = |e: cxm_app::AppError| anyhow::anyhow!("{}: {}", e.code.code(), e.detail);
    let (tenant, edit) = match cmd {
        ThemesCmd::Rediscover { tenant, days, k } => {
            anyhow::ensure!((1..=730).contains(days), "--days must be between 1 and 730");
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let out = themes::discover(store, tenant, *days, *k).map_err(api)?;
            println!("{}", serde_json::to_string(&out)?);
            return Ok(());
        }
        ThemesCmd::List {
            tenant,
            days,
            all,
            json,
        } => {
            anyhow::ensure!((1..=730).contains(days), "--days must be between 1 and 730");
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let l = themes::list(store, tenant, *days, *all).map_err(api)?;
            print(*json, serde_json::to_value(&l)?, || {
                l.themes
                    .iter()
                    .map(|t| {
                        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| v.to_string());
                        format!(
                            "{}\t{}\t{}\tanswers={}\tsentiment={}\tnps_impact={}\tarr={}",
                            t.id,
                            t.status,
                            t.name,
                            t.answers,
                            f(t.sentiment),
                            f(t.nps_impact),
                            t.arr
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
        ThemesCmd::Rename {
            tenant,
            theme,
            label,
        } => (
            tenant,
            (
                theme,
                EditRequest::Rename {
                    label: label.clone(),
                },
            ),
        ),
        ThemesCmd::Merge {
            tenant,
            theme,
            into,
        } => (tenant, (theme, EditRequest::Merge { into: into.clone() })),
        ThemesCmd::Split {
            tenant,
            theme,
            terms,
            label,
        } => (
            tenant,
            (
                theme,
                EditRequest::Split {
                    terms: terms
                        .split(',')
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect(),
                    label: label.clone(),
                },
            ),
        ),
        ThemesCmd::Discover { .. } => unreachable!("discover reads a file, not the store"),
    };
    anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
    let out = themes::edit(store, tenant, edit.0, &edit.1, "cli").map_err(api)?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// The demo's remediation: tickets opened from the first at-risk alerts, one of them with
/// its fix shipped and a close refused because the account has not recovered yet.
fn demo_tickets(store: &dyn cxm_store::Store, tenant: &str) -> anyhow::Result<()> {
    use cxm_app::tickets;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo tickets: {}", e.detail);
    let alerts = store.list_alerts(tenant, Some("open"), 1000)?;
    let at_risk = alerts.iter().filter(|a| a.kind == "at_risk").take(3);
    let owner = cxm_app::tickets::FromAlert {
        owner: "success-lead@demo.cxm".into(),
        severity: None,
        target_score: None,
    };
    for (i, a) in at_risk.enumerate() {
        let t =
            tickets::ticket_from_alert(store, tenant, a.id, &owner, "demo", None).map_err(api)?;
        if i == 0 {
            for s in ["in_progress", "fix_shipped"] {
                tickets::change_state(store, tenant, t.id, s, Some("demo"), "demo").map_err(api)?;
            }
            let owner = cxm_app::auth::Principal {
                tenant_id: tenant.into(),
                role: Role::Analyst,
                actor: "demo".into(),
                user: None,
            };
            // refused: the account's health has not recovered; the refusal is on the timeline
            let _ = tickets::close_ticket(store, tenant, t.id, &owner, &Default::default());
        }
    }
    Ok(())
}

/// Two agents and a day of their asks, decided by the default matrix, with two reviews done:
/// the agents, review queue and decision log pages have something to show.
/// A running onboarding experiment whose customers were exposed at sign-up (the generator
/// knows nothing of arms, so the honest result is "inconclusive"), and a draft.
fn demo_experiments(
    store: &dyn cxm_store::Store,
    tenant: &str,
    signups: &[(String, i64)],
) -> anyhow::Result<()> {
    use cxm_app::experiments::{self, StatusChange};
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo experiments: {}", e.detail);
    let running = experiments::create_experiment(
        store,
        tenant,
        "demo",
        json!({"id": "onboarding-checklist", "name": "Onboarding checklist in the first session", "owner": "journey-owner@demo.cxm",
            "kind": "journey", "target": "onboarding", "hypothesis": "A checklist gets new customers to activation sooner",
            "arms": [{"key": "control"}, {"key": "checklist"}], "metric": {"event": "Activated", "window_days": 3},
            "guardrails": [{"event": "Ticket Opened", "direction": "decrease", "max_relative_change": 0.25}], "mde": 0.05}),
    )
    .map_err(api)?;
    experiments::change_status(
        store,
        tenant,
        "demo",
        &running.definition.id,
        &StatusChange {
            status: "running".into(),
            arm: None,
            reason: String::new(),
        },
    )
    .map_err(api)?;
    for (user, at) in signups {
        let unit = format!("user_id:{user}");
        let identifier = cxm_domain::Identifier::parse_typed(&unit);
        let profile_id = match identifier {
            Some(i) => store.profile_for(tenant, &i)?,
            None => None,
        };
        store.expose(
            tenant,
            &cxm_store::Exposure {
                experiment_id: running.definition.id.clone(),
                arm: running.definition.arm_for(&unit).key.clone(),
                customer: unit.clone(),
                unit,
                profile_id,
                first_at_ms: *at,
            },
        )?;
    }
    experiments::create_experiment(
        store,
        tenant,
        "demo",
        json!({"id": "billing-bot-short-replies", "name": "Shorter billing replies from the bot", "owner": "support-lead@demo.cxm",
            "kind": "automation", "target": "billing-bot", "hypothesis": "Shorter answers resolve billing questions without a second contact",
            "arms": [{"key": "control"}, {"key": "short"}], "metric": {"event": "Ticket Resolved", "window_days": 7},
            "guardrails": [{"event": "Ticket Escalated", "direction": "decrease", "max_relative_change": 0.1}]}),
    )
    .map_err(api)?;
    Ok(())
}

fn demo_agents(store: &dyn cxm_store::Store, tenant: &str) -> anyhow::Result<()> {
    use cxm_app::agents::{self, NewAgent};
    use cxm_app::decisions::{self, AskRequest};
    use cxm_app::policies;
    let api = |e: cxm_app::AppError| anyhow::anyhow!("demo agents: {}", e.detail);
    for (name, kind) in [("billing-bot", "bot"), ("voice-line", "voice")] {
        let a = NewAgent {
            name: name.into(),
            kind: Some(kind.into()),
            description: String::new(),
            disclosure: None,
            disabled: false,
        };
        agents::register(store, tenant, "demo", &a).map_err(api)?;
    }
    let (version, policies) = policies::active_policies(store, tenant).map_err(api)?;
    let analyzer = cxm_analytics::Analyzer::new();
    let now = chrono::Utc::now().timestamp_millis();
    let asks = [
        ("billing-bot", "refund", 12.0, "the parcel was late"),
        ("billing-bot", "refund", 35.0, "charged twice for March"),
        (
            "billing-bot",
            "refund",
            120.0,
            "the annual plan renewed without notice",
        ),
        (
            "billing-bot",
            "refund",
            180.0,
            "double charge on the upgrade",
        ),
        ("billing-bot", "refund", 320.0, "cancelled within the trial"),
        (
            "billing-bot",
            "refund",
            40.0,
            "this is the third time, my lawyer will hear about it",
        ),
        ("billing-bot", "credit", 25.0, "outage last week"),
        ("voice-line", "password_reset", 0.0, "locked out"),
        ("voice-line", "address_update", 0.0, "moved house"),
        ("voice-line", "contact_change", 0.0, "new phone number"),
        ("voice-line", "refund", 20.0, "I want to speak to a human"),
        (
            "voice-line",
            "cancel_subscription",
            0.0,
            "switching to a competitor",
        ),
    ];
    let mut batch = vec![];
    let mut to_review = vec![];
    for (i, (agent, action, amount, message)) in asks.iter().enumerate() {
        let mut context = serde_json::Map::new();
        if *amount > 0.0 {
            context.insert("amount".into(), json!(amount));
            context.insert("currency".into(), json!("USD"));
        }
        context.insert("message".into(), json!(message));
        let req = AskRequest {
            agent: Some(agent.to_string()),
            action: action.to_string(),
            customer: format!("user_id:user-{:06}", 17 + i * 31),
            resource: None,
            context,
        };
        let at = now - (asks.len() - i) as i64 * 3_600_000;
        let (record, due) = decisions::decide(
            store, &analyzer, tenant, agent, &req, &policies, version, at,
        )
        .map_err(api)?;
        if record.outcome == "review" {
            to_review.push(record.id.clone());
        }
        batch.push(cxm_store::NewDecision {
            tenant_id: tenant.into(),
            actor: format!("agent:{agent}"),
            record,
            review_due_at_ms: due,
        });
    }
    store.record_decisions(&batch)?;
    // one review approved, one reversed; the rest wait in the queue
    for (id, verdict, reason) in to_review
        .iter()
        .take(2)
        .zip([
            (cxm_domain::decision::ReviewVerdict::Approved, ""),
            (
                cxm_domain::decision::ReviewVerdict::Reversed,
                "the renewal notice was sent; offer a credit instead",
            ),
        ])
        .map(|(id, (v, r))| (id, v, r))
    {
        let req = decisions::ReviewRequest {
            verdict,
            reason: reason.into(),
        };
        decisions::settle(store, tenant, id, "success-lead@demo.cxm", &req).map_err(api)?;
    }
    Ok(())
}

fn survey(store: &dyn cxm_store::Store, cmd: &SurveyCmd) -> anyhow::Result<()> {
    match cmd {
        SurveyCmd::Save {
            tenant,
            survey_id,
            file,
        } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            anyhow::ensure!(
                !survey_id.is_empty()
                    && survey_id.len() <= 64
                    && survey_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "survey id must be 1 to 64 letters, digits, - or _"
            );
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let def: cxm_domain::survey::SurveyDefinition = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a survey definition", file.display()))?;
            def.validate()
                .map_err(|e| anyhow::anyhow!("invalid definition: {e}"))?;
            let v =
                store.save_survey(tenant, survey_id, &def.name, &serde_json::to_string(&def)?)?;
            println!("{}", json!({"survey_id": survey_id, "version": v}));
            Ok(())
        }
        SurveyCmd::List { tenant, json } => {
            let list = store.list_surveys(tenant)?;
            print(*json, json!(list), || {
                list.iter()
                    .map(|s| {
                        format!(
                            "{}\tv{}\t{}\tlinks={}\tdisplays={}\tresponses={}",
                            s.survey_id, s.version, s.name, s.links, s.displays, s.responses
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        SurveyCmd::Invitations {
            tenant,
            status,
            limit,
            json,
        } => {
            anyhow::ensure!(
                status
                    .as_deref()
                    .is_none_or(|s| ["pending", "delivered", "held", "failed"].contains(&s)),
                "--status must be pending, delivered, held or failed"
            );
            let list = store.list_invitations(
                tenant,
                status.as_deref(),
                None,
                (*limit).clamp(1, 10_000),
            )?;
            print(*json, json!(list), || {
                list.iter()
                    .map(|i| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            i.id,
                            i.survey_id,
                            i.status,
                            i.identifier,
                            i.trigger_event,
                            i.url.as_deref().unwrap_or(&i.detail)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

fn c_to_action(c: &UserCmd) -> anyhow::Result<setup::UserAction> {
    Ok(match c {
        UserCmd::Disable { tenant, email } => {
            setup::UserAction::Disable(tenant.clone(), email.clone())
        }
        UserCmd::Enable { tenant, email } => {
            setup::UserAction::Enable(tenant.clone(), email.clone())
        }
        UserCmd::RevokeSessions { tenant, email } => {
            setup::UserAction::RevokeSessions(tenant.clone(), email.clone())
        }
        UserCmd::Passwd {
            tenant,
            email,
            password_stdin,
        } => {
            let (password, generated) = if *password_stdin {
                let mut p = String::new();
                std::io::stdin().read_to_string(&mut p)?;
                (p.trim_end_matches(['\r', '\n']).to_string(), false)
            } else if let Ok(p) = std::env::var("CXM_PASSWORD") {
                (p, false)
            } else {
                (setup::random_password(), true)
            };
            setup::UserAction::Passwd(tenant.clone(), email.clone(), password, generated)
        }
        _ => anyhow::bail!("not a user change"),
    })
}
