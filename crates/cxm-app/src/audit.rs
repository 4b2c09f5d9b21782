//! The audit chain over HTTP: verifying it end to end (links, decision rows, signed
//! checkpoints) and putting admin actions on it.

use std::time::Instant;

use cxm_store::Store;

use crate::error::AppError;
use serde::Serialize;
use serde_json::Value;

use crate::error::AppResult;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    pub ok: bool,
    pub entries: u64,
    pub decisions: u64,
    pub head: String,
    /// The first entry that does not hold, and why.
    pub broken: Option<cxm_domain::audit::Broken>,
    pub millis: u64,
}

pub const AUDIT_PAGE: u32 = 5_000;

/// A logged decision row as verification needs it: its entry, id and canonical body.
pub struct DecisionRow {
    pub audit_seq: i64,
    pub id: String,
    pub body: String,
}

pub fn check_streams(
    store: &dyn Store,
    tenant: &str,
    entries: std::sync::mpsc::Receiver<AppResult<Vec<cxm_domain::audit::AuditEntry>>>,
    rows_in: std::sync::mpsc::Receiver<AppResult<Vec<DecisionRow>>>,
    started: Instant,
) -> AppResult<AuditReport> {
    let mut check = cxm_domain::audit::ChainCheck::default();
    let mut after = 0;
    let mut decisions = 0u64;
    let mut rows: std::collections::VecDeque<DecisionRow> = Default::default();
    let mut rows_done = false;
    let mut broken = None;
    let next_rows = |rows: &mut std::collections::VecDeque<DecisionRow>,
                     rows_done: &mut bool|
     -> AppResult<()> {
        if rows.is_empty() && !*rows_done {
            let next = rows_in.recv().unwrap_or_else(|_| Ok(vec![]))?;
            *rows_done = next.is_empty();
            rows.extend(next);
        }
        Ok(())
    };
    'outer: while let Ok(page) = entries.recv() {
        let page = page?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if let Err(b) = check.check(e) {
                broken = Some(b);
                break 'outer;
            }
            after = e.seq;
            if e.kind != "decision" {
                continue;
            }
            if e.body == cxm_domain::audit::ERASED {
                // an erasure redacted the entry and removed its row; the link still holds
                if rows.front().is_some_and(|d| d.audit_seq == e.seq) {
                    rows.pop_front();
                }
                continue;
            }
            next_rows(&mut rows, &mut rows_done)?;
            let problem = match rows.front() {
                Some(d) if d.audit_seq == e.seq => {
                    let p = (d.body != e.body || d.id != e.subject).then(|| {
                        format!(
                            "decision {} was altered after it was logged at entry {}",
                            d.id, e.seq
                        )
                    });
                    rows.pop_front();
                    p
                }
                Some(d) if d.audit_seq < e.seq => Some(format!(
                    "decision {} claims entry {}, which logged something else",
                    d.id, d.audit_seq
                )),
                _ => Some(format!(
                    "decision {} logged at entry {} is missing from the decision table",
                    e.subject, e.seq
                )),
            };
            if let Some(problem) = problem {
                broken = Some(cxm_domain::audit::Broken {
                    seq: e.seq,
                    problem,
                });
                break 'outer;
            }
            decisions += 1;
        }
    }
    if broken.is_none() {
        // a decision row no entry logged (inserted behind the chain's back)
        next_rows(&mut rows, &mut rows_done)?;
        if let Some(d) = rows.front() {
            broken = Some(cxm_domain::audit::Broken {
                seq: d.audit_seq,
                problem: format!(
                    "decision {} names entry {}, which does not log it",
                    d.id, d.audit_seq
                ),
            });
        }
    }
    drop(entries);
    drop(rows_in);
    if broken.is_none() {
        broken = crate::provenance::check_checkpoints(store, tenant, after)?;
    }
    Ok(AuditReport {
        ok: broken.is_none(),
        entries: check.checked,
        decisions,
        head: check.head().to_string(),
        broken,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// Puts an admin action on the tenant's audit chain (policy changes and decisions chain
/// themselves; this is for the rest: overrides, unmerges, keys).
pub fn audit_action(
    store: &dyn Store,
    tenant: &str,
    actor: &str,
    kind: &str,
    subject: &str,
    body: Value,
) -> AppResult<()> {
    store.append_audit(
        tenant,
        &cxm_domain::audit::NewAuditEntry {
            actor: actor.to_string(),
            kind: kind.to_string(),
            subject: subject.to_string(),
            body: cxm_domain::decision::canonical(&body),
        },
    )?;
    Ok(())
}

/// Walks the tenant's chain from the start: every link, and every decision row against the
/// entry that logged it (an edited, deleted or inserted row is named).
///
/// Three threads share the work: one reads the chain, one reads the decision rows and
/// writes each back to its canonical body, and this one hashes and compares, so reading and
/// hashing overlap. Pages are bounded, so memory stays flat however long the chain.
pub fn verify_chain(store: &dyn Store, tenant: &str) -> AppResult<AuditReport> {
    use std::sync::mpsc::sync_channel;
    let started = Instant::now();
    let (entries_tx, entries_rx) = sync_channel::<AppResult<Vec<cxm_domain::audit::AuditEntry>>>(4);
    let (rows_tx, rows_rx) = sync_channel::<AppResult<Vec<DecisionRow>>>(4);
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut after = 0;
            loop {
                let page = store
                    .audit_entries(tenant, after, AUDIT_PAGE)
                    .map_err(AppError::from);
                let last = page.as_ref().ok().and_then(|p| p.last().map(|e| e.seq));
                let done = last.is_none();
                // the checker stopped listening (it found a break): stop reading
                if entries_tx.send(page).is_err() || done {
                    return;
                }
                after = last.unwrap_or(after);
            }
        });
        s.spawn(move || {
            let mut after = 0;
            loop {
                let page = store
                    .decisions_by_audit_seq(tenant, after, AUDIT_PAGE)
                    .map_err(AppError::from)
                    .map(|p| {
                        p.into_iter()
                            .map(|d| DecisionRow {
                                audit_seq: d.audit_seq,
                                body: d.record.body(),
                                id: d.record.id,
                            })
                            .collect::<Vec<_>>()
                    });
                let last = page
                    .as_ref()
                    .ok()
                    .and_then(|p| p.last().map(|d| d.audit_seq));
                let done = last.is_none();
                if rows_tx.send(page).is_err() || done {
                    return;
                }
                after = last.unwrap_or(after);
            }
        });
        // the receivers go with the checker: when it stops, the readers stop too
        check_streams(store, tenant, entries_rx, rows_rx, started)
    })
}
