//! The `cxm` binary: server, demo, setup, import, generator, rebuild and benchmarks.

// the ingest path allocates many small short-lived values (json trees, rows); glibc's
// allocator showed up at ~15% of ingest profiles, mimalloc cuts that
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agent_cli;
mod analyze;
mod args;
mod bench;
mod cluster_cli;
mod clv_cli;
mod config;
mod customer_cli;
mod demo;
mod generate;
mod health_cli;
mod import;
mod journey_cli;
mod load;
mod server;
mod setup;
mod stats_cli;
mod themes_cli;
mod value_cli;

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use config::{ServeArgs, Settings, StoreArgs};
use cxm_store::{KeyKind, Role};
use serde_json::json;

use args::*;

use customer_cli::{customer, survey};
use demo::{demo_agents, demo_experiments, demo_tickets};
use themes_cli::stored_themes;

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
    let cli = match tenant_by_name(cli) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// `--tenant` takes a tenant's name as well as its id: a value that is not an id is looked
/// up by name (case-insensitive) and the command line read again with the id in its place.
fn tenant_by_name(cli: Cli) -> anyhow::Result<Cli> {
    let args: Vec<String> = std::env::args().collect();
    let at = args
        .iter()
        .position(|a| a == "--tenant")
        .map(|i| (i + 1, None))
        .or_else(|| {
            args.iter()
                .position(|a| a.starts_with("--tenant="))
                .map(|i| (i, Some("--tenant=")))
        });
    let Some((i, prefix)) = at else {
        return Ok(cli);
    };
    let Some(value) = args
        .get(i)
        .map(|a| prefix.map_or(a.as_str(), |p| &a[p.len()..]))
    else {
        return Ok(cli);
    };
    if value.starts_with("ten_") {
        return Ok(cli);
    }
    let store = Settings::resolve(&cli.store, &ServeArgs::default())?.open_existing_store()?;
    if store.tenant(value)?.is_some() {
        return Ok(cli);
    }
    let named: Vec<cxm_store::Tenant> = store
        .list_tenants()?
        .into_iter()
        .filter(|t| t.name.eq_ignore_ascii_case(value))
        .collect();
    let id = match named.as_slice() {
        [one] => one.id.clone(),
        [] => {
            anyhow::bail!("no tenant named or with the id {value:?}; `cxm tenant list` shows them")
        }
        many => anyhow::bail!(
            "{} tenants are named {value:?}; pass one's id: {}",
            many.len(),
            many.iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    drop(store);
    let mut args = args;
    args[i] = prefix.map_or(id.clone(), |p| format!("{p}{id}"));
    Ok(Cli::parse_from(args))
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
            // the teammates the demo's journeys, tickets and alerts name as owners, so there
            // are people to pick; they sign in only once an owner resets their password
            for (who, role) in [
                ("vp-cx@demo.cxm", Role::Admin),
                ("head-of-support@demo.cxm", Role::Analyst),
                ("success@demo.cxm", Role::Analyst),
            ] {
                setup::create_user(
                    store.as_ref(),
                    &t.tenant_id,
                    who,
                    &setup::random_password(),
                    role,
                )?;
            }
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
            let survey = demo::demo_survey(store.as_ref(), &t.tenant_id)?;
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
                println!("  tenant:     Demo Co ({})", t.tenant_id);
                println!("  survey:     http://{addr}{survey}  (answer it, then open Home)");
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
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
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
        ) => setup::manage_user(settings()?.open_existing_store()?.as_ref(), c_to_action(c)?),
        Cmd::Key(KeyCmd::Create {
            ref tenant,
            ref kind,
            ref name,
            json,
        }) => {
            let kind = KeyKind::parse(kind)
                .filter(|k| *k != KeyKind::Agent)
                .context("--kind must be write or secret (agent keys: cxm agent key NAME)")?;
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
            anyhow::ensure!(
                store.revoke_key(tenant, key_id)?,
                "no active key {key_id} in tenant {tenant}"
            );
            println!("revoked {key_id} (servers stop accepting it within 5 seconds)");
            Ok(())
        }
        Cmd::Customer(ref c) => customer(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Metrics {
            ref metric,
            ref tenant,
            ref from,
            ref to,
            ref interval,
            ref by,
            json,
        } => {
            let store = settings()?.open_existing_store()?;
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
        Cmd::Survey(ref c) => survey(settings()?.open_existing_store()?.as_ref(), c),
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
        Cmd::Journey(ref c) => journey_cli::run(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Signals(ref c) => health_cli::signals(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Accounts(ref c) => {
            health_cli::accounts(settings()?.open_existing_store()?.as_ref(), c)
        }
        Cmd::Policy(ref c) => agent_cli::policy(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Retention(ref c) => {
            agent_cli::retention(settings()?.open_existing_store()?.as_ref(), c)
        }
        Cmd::Agent(ref c) => agent_cli::agent(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Cluster(ref c) => cluster_cli::cluster(settings()?.open_existing_store()?.as_ref(), c),
        Cmd::Audit(ref c) => {
            if agent_cli::audit(settings()?.open_existing_store()?.as_ref(), c)? {
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
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
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
            let store = settings()?.open_existing_store()?;
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
                    let store = settings()?.open_existing_store()?;
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
        Cmd::Rebuild { ref tenant, check } => {
            let store = settings()?.open_existing_store()?;
            let started = std::time::Instant::now();
            if !check {
                let stats = store.rebuild(tenant.as_deref())?;
                println!(
                    "{}",
                    json!({"tenants": stats.tenants, "events": stats.events, "seconds": started.elapsed().as_secs_f64()})
                );
                return Ok(());
            }
            let tenants: Vec<String> = match tenant {
                Some(t) => {
                    anyhow::ensure!(store.tenant(t)?.is_some(), "no tenant {t}");
                    vec![t.clone()]
                }
                None => store.list_tenants()?.into_iter().map(|t| t.id).collect(),
            };
            let mut events = 0;
            for t in &tenants {
                let live = store.identity_snapshot(t)?;
                events += store.rebuild(Some(t))?.events;
                let rebuilt = store.identity_snapshot(t)?;
                if live != rebuilt {
                    let first = live
                        .iter()
                        .zip(&rebuilt)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("live {a:?}, rebuilt {b:?}"))
                        .unwrap_or_else(|| {
                            format!("live has {} rows, rebuilt {}", live.len(), rebuilt.len())
                        });
                    anyhow::bail!(
                        "tenant {t}: the live projections differ from the log's: {first}"
                    );
                }
            }
            println!(
                "{}",
                json!({"tenants": tenants.len(), "events": events, "equal": true, "seconds": started.elapsed().as_secs_f64()})
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
        ) => stored_themes(settings()?.open_existing_store()?.as_ref(), t),
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
        Cmd::Experiment(ref c) => {
            value_cli::experiment(settings()?.open_existing_store()?.as_ref(), c)
        }
        Cmd::Equity(ref c) => value_cli::equity(settings()?.open_existing_store()?.as_ref(), c),
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

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    fn missing(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" || a.is_hide_set() {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                out.push(format!("{path} --{id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            missing(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    /// `cxm <command> --help` explains every flag it lists.
    #[test]
    fn every_flag_has_help() {
        let mut out = vec![];
        missing(&super::Cli::command(), "cxm", &mut out);
        assert!(out.is_empty(), "flags without help:\n{}", out.join("\n"));
    }
}
