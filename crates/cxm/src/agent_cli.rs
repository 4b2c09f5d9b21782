//! `cxm policy ...`, `cxm agent ...` and `cxm audit verify`: agent authority from the shell,
//! straight against the store (the same `--data-dir`/`--database-url` as `serve`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cxm_app::{agents, audit, policies};
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// The active policies as an authority matrix (or their Cedar text with --text).
    Show {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print the policies' Cedar text instead of the authority matrix.
        #[arg(long)]
        text: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Save a Cedar file as the next version and activate it (--draft saves without).
    Apply {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The Cedar file of policies to apply.
        file: PathBuf,
        /// A note kept with the new version (why it changed).
        #[arg(long, default_value = "")]
        note: String,
        /// Save the version without making it active.
        #[arg(long)]
        draft: bool,
    },
    /// Replay recorded decisions through a Cedar file: which would change, and how.
    Test {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The Cedar file of policies to try.
        file: PathBuf,
        /// At most this many rows.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a saved version the active one.
    Activate {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        version: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Register an agent (or change it).
    Add {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The agent's name, as its decisions are logged.
        name: String,
        /// bot, voice, automation, ...
        #[arg(long, default_value = "bot")]
        kind: String,
        /// What its messages must say about it.
        #[arg(long)]
        disclosure: Option<String>,
        /// What the agent does, as people reading the decision log should see it.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Agents with their KPIs.
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A key bound to the agent (printed once).
    Key {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The agent's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionCmd {
    /// Days kept per data class (events, feedback_text, transcripts, quarantine), as a table.
    Show {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a class's period in days, or --keep to keep it until erased (on the audit chain).
    Set {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// events, feedback_text or transcripts
        #[arg(long)]
        class: String,
        /// Keep the class this many days.
        #[arg(long, conflicts_with = "keep")]
        days: Option<i64>,
        /// Keep the class until a customer is erased.
        #[arg(long)]
        keep: bool,
    },
    /// Purge what is past its period now and print how much went.
    Purge {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
    },
}

pub fn retention(store: &dyn Store, cmd: &RetentionCmd) -> anyhow::Result<()> {
    let api = |e: cxm_app::AppError| anyhow::anyhow!("{}: {}", e.code.code(), e.detail);
    match cmd {
        RetentionCmd::Show { tenant, json } => {
            tenant_exists(store, tenant)?;
            let set = cxm_store::effective_retention(store.retention(tenant)?);
            if *json {
                println!("{}", serde_json::to_string_pretty(&set)?);
            } else {
                println!("{:<15} kept for", "data class");
                for class in ["events", "feedback_text", "transcripts", "quarantine"] {
                    let kept = set
                        .get(class)
                        .map_or("until erased".to_string(), |d| format!("{d} days"));
                    println!("{class:<15} {kept}");
                }
            }
        }
        RetentionCmd::Set {
            tenant,
            class,
            days,
            keep,
        } => {
            tenant_exists(store, tenant)?;
            anyhow::ensure!(days.is_some() || *keep, "give --days N or --keep");
            let mut m = serde_json::Map::new();
            m.insert(
                class.clone(),
                days.map_or(serde_json::Value::Null, serde_json::Value::from),
            );
            let periods = cxm_app::privacy::set_retention(store, tenant, "cli", &m).map_err(api)?;
            println!("{}", serde_json::to_string_pretty(&periods)?);
        }
        RetentionCmd::Purge { tenant } => {
            tenant_exists(store, tenant)?;
            let purged = store.purge(tenant, chrono::Utc::now().timestamp_millis())?;
            println!("{}", serde_json::to_string_pretty(&purged)?);
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Walk every tenant's audit chain (or one with --tenant); exits non-zero and names the
    /// first bad entry after any edit, insertion or deletion.
    Verify {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn api(e: cxm_app::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code.code(), e.detail)
}

fn tenant_exists(store: &dyn Store, tenant: &str) -> anyhow::Result<()> {
    anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
    Ok(())
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

pub fn policy(store: &dyn Store, cmd: &PolicyCmd) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::Show { tenant, text, json } => {
            tenant_exists(store, tenant)?;
            let v = policies::policy_view(store, tenant).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if *text {
                print!("{}", v.text);
            } else {
                println!("active version {}", v.active_version);
                println!(
                    "{:<36} {:<7} {:<6} {:<36} reason",
                    "policy", "effect", "level", "actions"
                );
                for r in &v.rules {
                    let actions = if r.actions.is_empty() {
                        "any".to_string()
                    } else {
                        r.actions.join(",")
                    };
                    println!(
                        "{:<36} {:<7} {:<6} {:<36} {}",
                        r.id,
                        r.effect,
                        r.level.map_or("-", |l| l.as_str()),
                        actions,
                        r.reason
                    );
                }
                for w in &v.warnings {
                    println!("warning: {w}");
                }
            }
            Ok(())
        }
        PolicyCmd::Apply {
            tenant,
            file,
            note,
            draft,
        } => {
            tenant_exists(store, tenant)?;
            let req = policies::SavePolicies {
                text: read(file)?,
                note: note.clone(),
                activate: !draft,
            };
            let saved = policies::save_policies(store, tenant, "cli", &req).map_err(api)?;
            println!(
                "saved version {}{}",
                saved.version,
                if saved.active {
                    " (active)"
                } else {
                    " (draft; cxm policy activate to use it)"
                }
            );
            for w in &saved.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        PolicyCmd::Test {
            tenant,
            file,
            limit,
            json,
        } => {
            tenant_exists(store, tenant)?;
            let candidate = cxm_policy::Policies::compile(&read(file)?)?;
            let t = policies::replay(store, tenant, &candidate, *limit).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&t)?);
                return Ok(());
            }
            println!(
                "replayed {} decisions: {} unchanged, {} would change",
                t.replayed,
                t.unchanged,
                t.changed.len()
            );
            for (k, n) in &t.transitions {
                println!("  {k}: {n}");
            }
            for c in t.changed.iter().take(50) {
                println!(
                    "  {} {} {} for {}: {} {} -> {} {} ({})",
                    c.decision_id,
                    c.agent,
                    c.action,
                    c.customer,
                    c.before,
                    c.before_level,
                    c.after,
                    c.after_level,
                    c.after_policy_ids.join(", ")
                );
            }
            for w in &t.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        PolicyCmd::Activate { tenant, version } => {
            tenant_exists(store, tenant)?;
            let row = store
                .policy_sets(tenant)?
                .into_iter()
                .find(|r| r.version == *version)
                .with_context(|| format!("no policy version {version}"))?;
            cxm_policy::Policies::compile(&row.text)?;
            store.activate_policy_set(tenant, *version, "cli")?;
            println!("version {version} is active");
            Ok(())
        }
    }
}

pub fn agent(store: &dyn Store, cmd: &AgentCmd) -> anyhow::Result<()> {
    match cmd {
        AgentCmd::Add {
            tenant,
            name,
            kind,
            disclosure,
            description,
        } => {
            tenant_exists(store, tenant)?;
            let a = agents::register(
                store,
                tenant,
                "cli",
                &agents::NewAgent {
                    name: name.clone(),
                    kind: Some(kind.clone()),
                    description: description.clone(),
                    disclosure: disclosure.clone(),
                    disabled: false,
                },
            )
            .map_err(api)?;
            println!("agent {} ({}) says: {}", a.name, a.kind, a.disclosure);
            Ok(())
        }
        AgentCmd::List { tenant, json } => {
            tenant_exists(store, tenant)?;
            let stats = agents::agent_stats(store, tenant).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
                return Ok(());
            }
            for s in stats {
                let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
                println!(
                    "{:<24} {:<10} decisions {:>6}  escalated {:>6}  reversed {:>6}",
                    s.agent.name,
                    s.agent.kind,
                    s.kpis.decisions,
                    pct(s.kpis.escalation_rate),
                    pct(s.kpis.reversal_rate)
                );
            }
            Ok(())
        }
        AgentCmd::Key { tenant, name } => {
            tenant_exists(store, tenant)?;
            anyhow::ensure!(store.agent(tenant, name)?.is_some(), "no agent {name}");
            let (plain, record) =
                cxm_app::auth::generate_key(tenant, cxm_store::KeyKind::Agent, name);
            store.insert_key(&record)?;
            store.append_audit(
                tenant,
                &cxm_domain::audit::NewAuditEntry {
                    actor: "cli".into(),
                    kind: "agent.key_created".into(),
                    subject: format!("agent:{name}"),
                    body: serde_json::json!({"key_id": record.id, "prefix": record.prefix})
                        .to_string(),
                },
            )?;
            println!("{plain}");
            Ok(())
        }
    }
}

/// Returns false when a chain is broken (the caller exits non-zero).
pub fn audit(store: &dyn Store, cmd: &AuditCmd) -> anyhow::Result<bool> {
    let AuditCmd::Verify { tenant, json } = cmd;
    let tenants: Vec<String> = match tenant {
        Some(t) => {
            tenant_exists(store, t)?;
            vec![t.clone()]
        }
        None => store.list_tenants()?.into_iter().map(|t| t.id).collect(),
    };
    let mut ok = true;
    let mut reports = vec![];
    for t in tenants {
        let r = audit::verify_chain(store, &t).map_err(api)?;
        ok &= r.ok;
        if !*json {
            match &r.broken {
                None => println!(
                    "{t}: ok, {} entries ({} decisions) in {} ms, head {}",
                    r.entries, r.decisions, r.millis, r.head
                ),
                Some(b) => println!("{t}: BROKEN at entry {}: {}", b.seq, b.problem),
            }
        }
        reports.push(serde_json::json!({"tenant": t, "report": r}));
    }
    if *json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(ok)
}
