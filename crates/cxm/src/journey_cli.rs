//! `cxm journey ...`: journeys from files, and their metrics, straight against the store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cxm_app::journeys;
use cxm_domain::journey_check::Script;
use cxm_store::Store;

#[derive(Subcommand, Debug)]
pub enum JourneyCmd {
    /// Create or update a journey from a YAML or JSON file (a new version when it changed).
    Apply {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The journey definition, as YAML or JSON.
        file: PathBuf,
    },
    /// Journeys with their JPS and flags (overdue reviews, SLA breaches).
    List {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Synthetic journey checks: a made-up customer walks a scripted path across channels
    /// through a running server's real ingest, and the customer's real context is judged
    /// against the script's expectations. Without --script, the built-in check runs (chat
    /// about billing, then a call: both on one timeline, the switch shown). Each run is
    /// recorded (and, failing, can open a ticket). Exits non-zero when any check fails.
    Check {
        /// A script file (YAML or JSON), or a directory of them; repeatable.
        #[arg(long = "script")]
        scripts: Vec<std::path::PathBuf>,
        /// The running server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A write key of the tenant: the check sends its events with it.
        #[arg(long, env = "CXM_WRITE_KEY")]
        write_key: String,
        /// A secret key of the tenant: the check reads its results with it.
        #[arg(long, env = "CXM_SECRET_KEY")]
        secret_key: String,
        /// The name the built-in check is recorded under.
        #[arg(long, default_value = "chat-then-call")]
        name: String,
        /// Open a ticket for this owner when the check fails.
        #[arg(long)]
        ticket_owner: Option<String>,
    },
    /// A journey's stages (entries, conversion, drop-off, time in stage) and JPS with its terms;
    /// brings the measurements up to date with the event log first.
    Metrics {
        /// The tenant's id or name.
        #[arg(long)]
        tenant: String,
        /// The journey's id.
        journey_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn api(e: cxm_app::AppError) -> anyhow::Error {
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
        JourneyCmd::Check { .. } => {
            anyhow::bail!("journey check talks to a server; it is run before the store is opened")
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

/// The scripts to run: each file given, each `.yaml`/`.yml`/`.json` file of each directory
/// given (by name), or the built-in one named `name`. A script that does not parse or
/// validate stops everything before anything is sent.
pub fn scripts(paths: &[std::path::PathBuf], name: &str) -> anyhow::Result<Vec<Script>> {
    if paths.is_empty() {
        let mut s = Script::builtin();
        s.name = name.to_string();
        s.validate().map_err(anyhow::Error::msg)?;
        return Ok(vec![s]);
    }
    let mut files = vec![];
    for p in paths {
        if p.is_dir() {
            let mut inner: Vec<_> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
                })
                .collect();
            inner.sort();
            anyhow::ensure!(
                !inner.is_empty(),
                "{} holds no .yaml, .yml or .json script",
                p.display()
            );
            files.extend(inner);
        } else {
            files.push(p.clone());
        }
    }
    let mut out: Vec<Script> = vec![];
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let s = Script::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        anyhow::ensure!(
            !out.iter().any(|o| o.name == s.name),
            "{}: a second script named {:?}; runs are recorded by name",
            f.display(),
            s.name
        );
        out.push(s);
    }
    Ok(out)
}

/// Runs one scripted check against a server over HTTP; returns whether it passed.
pub fn check(
    url: &str,
    write_key: &str,
    secret_key: &str,
    script: &Script,
    ticket_owner: Option<&str>,
) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
        let base = url.trim_end_matches('/');
        let name = &script.name;
        let customer = format!("journey-check-{}", uuid::Uuid::new_v4().simple());
        let steps = script.messages(&customer, chrono::Utc::now().timestamp_millis());
        let sent = http.post(format!("{base}/v1/batch")).basic_auth(write_key, Some("")).json(&serde_json::json!({"batch": steps})).send().await?;
        anyhow::ensure!(sent.status().is_success(), "ingest answered {}: {}", sent.status(), sent.text().await.unwrap_or_default());
        let mut profile = None;
        for _ in 0..50 {
            let r = http.get(format!("{base}/api/v1/customers")).query(&[("identifier", script.lookup(&customer))]).bearer_auth(secret_key).send().await?;
            if r.status().is_success() {
                profile = r.json::<serde_json::Value>().await?["id"].as_str().map(String::from);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut failures = vec![];
        let mut found = serde_json::Value::Null;
        match &profile {
            None => failures.push("the customer was not found after ingest".to_string()),
            Some(id) => {
                let ctx: serde_json::Value = http.get(format!("{base}/api/v1/customers/{id}/context")).bearer_auth(secret_key).send().await?.json().await?;
                failures.extend(script.judge(&ctx));
                let names: Vec<&str> = ctx["timeline"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
                found = serde_json::json!({"summary": ctx["summary"], "channel_switch": ctx["channel_switch"], "timeline": names});
            }
        }
        let passed = failures.is_empty();
        let walked: Vec<String> = script
            .steps
            .iter()
            .map(|s| match &s.channel {
                Some(c) => format!("{} ({c})", s.event),
                None => s.event.clone(),
            })
            .collect();
        let detail = serde_json::json!({"customer": customer, "description": script.description, "steps": walked, "found": found, "failures": failures});
        let r = http.post(format!("{base}/api/v1/journey-checks")).bearer_auth(secret_key).json(&serde_json::json!({"name": name, "passed": passed, "detail": detail})).send().await?;
        anyhow::ensure!(r.status().is_success(), "recording the run answered {}: {}", r.status(), r.text().await.unwrap_or_default());
        let mut out = serde_json::json!({"name": name, "passed": passed, "detail": detail});
        if let (false, Some(owner)) = (passed, ticket_owner) {
            let t: serde_json::Value = http
                .post(format!("{base}/api/v1/tickets"))
                .bearer_auth(secret_key)
                .json(&serde_json::json!({"title": format!("Journey check {name} fails: context does not follow the customer"), "owner": owner, "severity": "high",
                    "description": failures.join("; "), "check": {"kind": "journey_check_passes", "name": name}}))
                .send()
                .await?
                .json()
                .await?;
            out["ticket"] = t["id"].clone();
        }
        println!("{out}");
        Ok(passed)
    })
}
