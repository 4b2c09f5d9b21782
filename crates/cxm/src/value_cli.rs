//! `cxm experiment ...` and `cxm equity show`: experiments and customer value from the shell,
//! straight against the store, through the same functions the API uses.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cxm_app::experiments::{self, RolloutChange, StatusChange};
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum ExperimentCmd {
    /// Experiments, newest first, with status, rollout and exposures.
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a draft from a JSON definition file.
    Create {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The experiment definition, as JSON.
        file: PathBuf,
    },
    /// Start, pause, ship (with --arm) or roll back.
    Status {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The experiment's id.
        id: String,
        /// running, paused, shipped or rolled_back
        status: String,
        /// The arm that ships, when the status is shipped.
        #[arg(long)]
        arm: Option<String>,
        /// Why (kept on the experiment's history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Move the rollout to a percentage (0 to 100).
    Rollout {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The experiment's id.
        id: String,
        /// The share of traffic that gets the change, 0 to 100.
        percent: f64,
        /// Why (kept on the experiment's history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Results from the event log (a breached guardrail rolls it back, as in the API).
    Results {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The experiment's id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EquityCmd {
    /// Fit the value model on the tenant's purchases: CLV, tiers, top customers and accounts.
    Show {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn api(e: cxm_app::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code.code(), e.detail)
}

const ACTOR: &str = "cli";

pub fn experiment(store: &dyn Store, cmd: &ExperimentCmd) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match cmd {
        ExperimentCmd::List { tenant, json } => {
            let rows = experiments::list_rows(store, tenant).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let e = &r.experiment;
                    println!(
                        "{:<28} {:<12} {:>6} % {:>8} exposed  {}",
                        e.definition.id,
                        e.status.as_str(),
                        e.rollout_percent,
                        r.exposures,
                        e.definition.name
                    );
                }
            }
        }
        ExperimentCmd::Create { tenant, file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let v = experiments::create_experiment(store, tenant, ACTOR, body).map_err(api)?;
            println!("created {} (draft)", v.definition.id);
        }
        ExperimentCmd::Status {
            tenant,
            id,
            status,
            arm,
            reason,
        } => {
            let v = experiments::change_status(
                store,
                tenant,
                ACTOR,
                id,
                &StatusChange {
                    status: status.clone(),
                    arm: arm.clone(),
                    reason: reason.clone(),
                },
            )
            .map_err(api)?;
            println!("{id}: {} at {} %", v.status.as_str(), v.rollout_percent);
        }
        ExperimentCmd::Rollout {
            tenant,
            id,
            percent,
            reason,
        } => {
            let v = experiments::change_rollout(
                store,
                tenant,
                ACTOR,
                id,
                &RolloutChange {
                    percent: *percent,
                    reason: reason.clone(),
                },
            )
            .map_err(api)?;
            println!("{id}: rollout {} %", v.rollout_percent);
        }
        ExperimentCmd::Results { tenant, id, json } => {
            let r = experiments::compute_results(store, tenant, id, now).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!(
                "{} ({}), {} units; sample ratio p = {}",
                r.experiment.definition.name,
                r.experiment.status.as_str(),
                r.units,
                r.srm_p_value
                    .map(|p| format!("{p:.4}"))
                    .unwrap_or_else(|| "-".into())
            );
            println!("{}:", r.primary.event);
            for c in &r.primary.comparisons {
                match &c.stats {
                    Some(s) => println!(
                        "  {:<12} {:.4} vs {:.4}  lift {:+.1} % ({:+.1} to {:+.1})  p {:.4}  chance to win {:.1} %  {}",
                        c.arm,
                        c.rate,
                        c.control_rate,
                        s.relative.expected * 100.0,
                        s.relative.ci[0] * 100.0,
                        s.relative.ci[1] * 100.0,
                        s.relative.p_value,
                        s.bayesian.chance_to_win * 100.0,
                        c.verdict
                    ),
                    None => println!("  {:<12} {}", c.arm, c.verdict),
                }
            }
            for g in &r.guardrails {
                println!("guardrail {}: {}", g.event, g.note);
            }
            for w in &r.warnings {
                println!("warning: {w}");
            }
        }
    }
    Ok(())
}

pub fn equity(store: &dyn Store, cmd: &EquityCmd) -> anyhow::Result<()> {
    let EquityCmd::Show { tenant, json } = cmd;
    let now = chrono::Utc::now().timestamp_millis();
    let c = cxm_app::equity::compute(store, tenant, now).map_err(api)?;
    let r = &c.report;
    if *json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    if let Some(m) = &r.message {
        println!("{m}");
        return Ok(());
    }
    println!(
        "{} customers, {} purchases; predicted {}-month value {:.0}",
        r.customers, r.transactions, r.settings.config.horizon_months, r.total_clv
    );
    for t in &r.tiers {
        println!(
            "  {:<10} {:>6} customers  {:>12.0}  {:>5.1} % of value  from {:.0}",
            t.name,
            t.customers,
            t.clv,
            t.clv_share * 100.0,
            t.threshold
        );
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    Ok(())
}
