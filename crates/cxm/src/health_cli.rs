//! `cxm signals ...` and `cxm accounts ...`: account health from the shell, straight against
//! the store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cxm_app::health;
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum SignalsCmd {
    /// The tenant's signal set (the defaults until one is applied), as JSON.
    Show {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
    },
    /// Replace the signal set from a YAML or JSON file (a new version); accounts are rescored.
    Apply {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The signal set, as JSON.
        file: PathBuf,
    },
    /// Replay history weekly and compare each signal and the at-risk band with actual churn
    /// (Churn Notice within the horizon): precision, recall, lift, lead time, suggested thresholds.
    Backtest {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// First checkpoint, YYYY-MM-DD.
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last checkpoint, YYYY-MM-DD.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Days after each scored day in which a churn counts.
        #[arg(long, default_value_t = 90)]
        horizon_days: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountsCmd {
    /// Accounts by health, lowest first, after bringing the facts up to date.
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// healthy, concerning or at_risk
        #[arg(long)]
        band: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn api(e: cxm_app::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code.code(), e.detail)
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

pub fn signals(store: &dyn Store, cmd: &SignalsCmd) -> anyhow::Result<()> {
    match cmd {
        SignalsCmd::Show { tenant } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let (version, set) = health::signal_set(store, tenant).map_err(api)?;
            let mut v = serde_json::to_value(&set)?;
            v["version"] = version.into();
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        SignalsCmd::Apply { tenant, file } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let set: cxm_domain::health::SignalSet = if text.trim_start().starts_with('{') {
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: not a signal set: {e}", file.display()))?
            } else {
                serde_norway::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: not a signal set: {e}", file.display()))?
            };
            let version = health::save_signals(store, tenant, &set, "cli")
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), api(e)))?;
            let r = health::recompute(store, tenant, chrono::Utc::now()).map_err(api)?;
            println!("{}", serde_json::json!({"version": version, "rescored": r}));
            Ok(())
        }
        SignalsCmd::Backtest {
            tenant,
            from,
            to,
            horizon_days,
            json,
        } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            health::upkeep(store, tenant, false).map_err(api)?;
            let bt = health::backtest(store, tenant, *from, *to, *horizon_days).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string(&bt)?);
                return Ok(());
            }
            println!(
                "{} checkpoints from {} to {}, {} accounts, {} churned within {} days (base rate {})",
                bt.checkpoints, bt.from, bt.to, bt.accounts, bt.churned_accounts, bt.horizon_days, pct(bt.base_rate)
            );
            println!("signal\tfired\tprecision\trecall\tlift\tlead days\tsuggested threshold");
            for r in &bt.rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.signal,
                    r.fired,
                    pct(r.precision),
                    pct(r.recall),
                    r.lift.map_or("-".into(), |l| format!("{l:.2}")),
                    r.median_lead_days.map_or("-".into(), |d| d.to_string()),
                    r.suggested_threshold.map_or("-".into(), |t| t.to_string())
                );
            }
            Ok(())
        }
    }
}

pub fn accounts(store: &dyn Store, cmd: &AccountsCmd) -> anyhow::Result<()> {
    let AccountsCmd::List {
        tenant,
        band,
        limit,
        json,
    } = cmd;
    anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
    health::upkeep(store, tenant, true).map_err(api)?;
    let q = health::AccountQuery {
        band: band.clone(),
        limit: Some(*limit),
        offset: None,
    };
    let list = health::account_list(store, tenant, &q).map_err(api)?;
    if *json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    for b in &list.bands {
        println!("{}: {} accounts, ARR {:.0}", b.band, b.accounts, b.arr);
    }
    println!(
        "revenue at risk (accounts with open alerts): {:.0}",
        list.revenue_at_risk
    );
    for a in &list.accounts {
        let fired: Vec<String> = a
            .readings
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["fired"] == true)
            .filter_map(|r| r["signal"].as_str().map(String::from))
            .collect();
        println!(
            "{}\t{}\t{}\t{}\tARR {:.0}\t{}",
            a.group_id,
            a.name,
            a.score,
            a.band,
            a.arr,
            fired.join(",")
        );
    }
    Ok(())
}
