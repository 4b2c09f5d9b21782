//! `cxm journey ...`: journeys from files, and their metrics, straight against the store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cxm_http::journeys;
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum JourneyCmd {
    /// Create or update a journey from a YAML or JSON file (a new version when it changed).
    Apply {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
    },
    /// Journeys with their JPS and flags (overdue reviews, SLA breaches).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// A journey's stages (entries, conversion, drop-off, time in stage) and JPS with its terms;
    /// brings the measurements up to date with the event log first.
    Metrics {
        #[arg(long)]
        tenant: String,
        journey_id: String,
        #[arg(long)]
        json: bool,
    },
}

fn api(e: cxm_http::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code.code(), e.detail)
}

fn num(x: Option<f64>, unit: &str) -> String {
    x.map_or("-".into(), |v| format!("{v}{unit}"))
}

pub fn run(store: &dyn Store, cmd: &JourneyCmd) -> anyhow::Result<()> {
    match cmd {
        JourneyCmd::Apply { tenant, file } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let def = journeys::parse_definition(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let saved = journeys::save(store, tenant, &def, "cli")
                .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), api(e)))?;
            println!("{}", serde_json::to_string(&saved)?);
            Ok(())
        }
        JourneyCmd::List { tenant, json } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            journeys::catch_up(store, tenant, usize::MAX).map_err(api)?;
            let list = journeys::summaries(store, tenant, chrono::Utc::now()).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for j in &list {
                    println!(
                        "{}\tv{}\t{}\towner={}\tJPS={}\t{}",
                        j.journey_id,
                        j.version,
                        j.name,
                        j.owner,
                        num(j.jps, ""),
                        j.flags
                            .iter()
                            .map(|f| f.kind.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
            Ok(())
        }
        JourneyCmd::Metrics {
            tenant,
            journey_id,
            json,
        } => {
            let j = store
                .journey(tenant, journey_id, None)?
                .with_context(|| format!("no journey {journey_id} in tenant {tenant}"))?;
            journeys::catch_up(store, tenant, usize::MAX).map_err(api)?;
            let m = journeys::metrics(store, tenant, &j, chrono::Utc::now()).map_err(api)?;
            if *json {
                println!("{}", serde_json::to_string(&m)?);
                return Ok(());
            }
            println!(
                "{} (v{}, owner {}): JPS {}",
                m.name,
                m.version,
                m.owner,
                num(m.score.jps, "")
            );
            for t in &m.score.terms {
                println!(
                    "  {:<10} {:>5.1} × {:.1}  {}",
                    t.name, t.value, t.weight, t.basis
                );
            }
            println!("stage\towner\tentries\tconverted\tdropped\tlooped\tp50 h\tp90 h\tFCR\tJPS");
            for s in &m.stages {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.owner,
                    s.entries,
                    num(s.conversion_pct, "%"),
                    num(s.drop_off_pct, "%"),
                    num(s.loop_pct, "%"),
                    num(s.time.p50_hours, ""),
                    num(s.time.p90_hours, ""),
                    num(s.fcr_pct, "%"),
                    num(s.score.jps, "")
                );
            }
            for f in &m.flags {
                println!("! {}: {}", f.kind, f.detail);
            }
            Ok(())
        }
    }
}
