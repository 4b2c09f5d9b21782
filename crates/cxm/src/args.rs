//! The command line: every command, its flags and their help text.

use super::*;

#[derive(Parser, Debug)]
#[command(
    name = "cxm",
    version,
    about = "Customer experience management: signals in, one customer, owned decisions out."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Log format on stderr.
    #[arg(long, env = "CXM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Serve ingest, the API and the dashboard.
    Serve(ServeArgs),
    /// Create a demo tenant with generated history, then serve it and print how to log in.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Events to generate.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Seed of the random generator: the same seed gives the same data.
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
        /// The tenant's id or name.
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
        /// Print JSON instead of text.
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
    /// Cluster mode on PostgreSQL: nodes and partition owners.
    #[command(subcommand)]
    Cluster(crate::cluster_cli::ClusterCmd),
    /// Events set aside at ingest, with the reason.
    Quarantine {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Import history.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Generate a reproducible synthetic dataset into a tenant (or as NDJSON with --out).
    Generate {
        /// How many events to generate.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Seed of the random generator: the same seed gives the same data.
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
        /// The tenant's id or name.
        #[arg(long)]
        tenant: Option<String>,
        /// Prove the live projections right: compare each tenant's identity graph and
        /// profiles before and after, and exit non-zero naming the first difference.
        #[arg(long)]
        check: bool,
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
pub(crate) enum TenantCmd {
    /// Create a tenant with a write key and a secret key (shown once).
    Create {
        /// The tenant's name, as people know the business.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCmd {
    /// Create a dashboard user. The password comes from --password-stdin or CXM_PASSWORD, or is generated and printed.
    Create {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The person's email address (their sign-in).
        #[arg(long)]
        email: String,
        /// owner, admin, analyst, agent-operator or viewer.
        #[arg(long, default_value = "analyst")]
        role: String,
        /// Read the password from standard input instead of CXM_PASSWORD.
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Offboard a user: they cannot sign in and every session they have ends (on the audit log).
    Disable {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The person's email address (their sign-in).
        #[arg(long)]
        email: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The person's email address (their sign-in).
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (from --password-stdin or CXM_PASSWORD, or generated and
    /// printed); their sessions end.
    Passwd {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The person's email address (their sign-in).
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of CXM_PASSWORD.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign a user out everywhere.
    RevokeSessions {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The person's email address (their sign-in).
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCmd {
    /// Create a key; the key is printed once and only its hash is kept.
    Create {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// write (ingest only) or secret (management API).
        #[arg(long)]
        kind: String,
        /// A name to tell the key by.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    Revoke {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The key's id (`cxm key list` shows it).
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AnalyzeCmd {
    /// VADER scores (identical to vaderSentiment 3.3.2) plus churn, legal, rage and effort cues.
    Sentiment {
        /// Score text that looks non-English too (normally marked unknown and left unscored).
        #[arg(long)]
        all_languages: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ThemesCmd {
    /// Cluster texts (one per line, or a TSV's first column) into themes.
    Discover {
        /// A file of texts, one per line.
        #[arg(long)]
        input: PathBuf,
        /// Number of themes (default: about sqrt(n/2)).
        #[arg(long)]
        k: Option<usize>,
        /// jsonl: {"line","theme","label"} per input line; json: themes with terms and quotes.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Seed of the random generator: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Re-discover a tenant's stored themes now (the server also does it daily); names,
    /// merges and splits are kept.
    Rediscover {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Days of text answers to cluster (default 90).
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Number of themes (default: about sqrt(n/2)).
        #[arg(long)]
        k: Option<usize>,
    },
    /// A tenant's themes with volume, sentiment, NPS impact and ARR.
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Days of answers the figures cover.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Include merged and retired themes.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give a theme a name that survives re-discovery.
    Rename {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The theme's id (`cxm themes list` shows it).
        theme: String,
        /// The name people will see.
        label: String,
    },
    /// Merge a theme into another.
    Merge {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The theme's id (`cxm themes list` shows it).
        theme: String,
        /// The id of the theme it joins.
        into: String,
    },
    /// Split the answers of a theme that use any of the words into a new theme.
    Split {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The theme's id (`cxm themes list` shows it).
        theme: String,
        /// Comma-separated words.
        #[arg(long)]
        terms: String,
        /// The new theme's name.
        #[arg(long)]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum SurveyCmd {
    /// Save a definition (a JSON file, as the API takes it) as the survey's next version.
    Save {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The survey's id (a new one, or the next version of one).
        survey_id: String,
        /// The survey definition, as JSON.
        file: PathBuf,
    },
    /// Surveys with links, displays, responses and response rate.
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Invitations made by targeting (pending ones carry their link).
    Invitations {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// pending, delivered, held or failed
        #[arg(long)]
        status: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum EvalCmd {
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
pub(crate) enum ClvCmd {
    /// Fit a model to a summary CSV (frequency, recency, T); prints the parameters and the
    /// log-likelihood as JSON.
    Fit {
        /// bgnbd or pareto (purchases, P(alive)), or gammagamma (spend; needs a
        /// monetary_value column).
        #[arg(long, default_value = "bgnbd")]
        model: String,
        /// The transactions file to fit on.
        #[arg(long)]
        input: PathBuf,
        /// Print JSON instead of a line per parameter.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CustomerCmd {
    /// The profile an identifier belongs to, with the escalation summary.
    Show {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// type:value, e.g. email:ada@example.com
        #[arg(long)]
        identifier: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The merge ledger of the customer an identifier belongs to.
    Merges {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The customer, as a typed identifier such as user_id:42 or email:ada@example.com.
        #[arg(long)]
        identifier: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Erase a customer everywhere (right to erasure); prints the tombstone and the counts.
    Erase {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// type:value, e.g. email:ada@example.com
        #[arg(long)]
        identifier: String,
    },
    /// Everything cxm holds about a customer, as JSON (a data subject access request).
    Export {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The customer, as a typed identifier such as user_id:42 or email:ada@example.com.
        #[arg(long)]
        identifier: String,
    },
    /// Block an identifier and rebuild identities without it (stored events are untouched).
    Unmerge {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The identifier to take out of the profile, such as anonymous_id:abc.
        #[arg(long)]
        identifier: String,
        /// Why (kept in the merge ledger).
        #[arg(long, default_value = "unmerged from the cli")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImportCmd {
    /// Import events from CSV with a column mapping, e.g. --map userId=user,event=name,timestamp=ts.
    Events {
        /// The file of events to import.
        file: PathBuf,
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// How the file's columns map to event fields.
        #[arg(long)]
        map: String,
        /// Apply clock-skew correction instead of trusting the file's timestamps.
        #[arg(long)]
        correct_skew: bool,
    },
    /// Import survey answers from CSV (Qualtrics exports included), e.g. --map nps:nps=Q1,why:text=Q2.
    Feedback {
        /// The file of answers to import.
        file: PathBuf,
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// question:type=column pairs.
        #[arg(long)]
        map: String,
        /// The survey the answers belong to.
        #[arg(long)]
        survey_id: Option<String>,
        /// Channel the answers came through.
        #[arg(long, default_value = "survey")]
        channel: String,
    },
}
