//! The audit chain over HTTP: verifying it end to end (links, decision rows, signed
//! checkpoints) and putting admin actions on it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use cxm_store::{Store, StoredDecision};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::voc::blocking;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/audit/verify", get(verify_audit))
}

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

const AUDIT_PAGE: u32 = 5_000;

/// Walks the tenant's chain from the start: every link, and every decision row against the
/// entry that logged it (an edited, deleted or inserted row is named).
pub fn verify_chain(store: &dyn Store, tenant: &str) -> ApiResult<AuditReport> {
    let started = Instant::now();
    let mut check = cxm_domain::audit::ChainCheck::default();
    let mut after = 0;
    let mut decisions = 0u64;
    let mut rows: std::collections::VecDeque<StoredDecision> = Default::default();
    let mut rows_after = 0;
    let mut rows_done = false;
    let mut broken = None;
    'outer: loop {
        let page = store.audit_entries(tenant, after, AUDIT_PAGE)?;
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
            if rows.is_empty() && !rows_done {
                let next = store.decisions_by_audit_seq(tenant, rows_after, AUDIT_PAGE)?;
                rows_done = next.is_empty();
                if let Some(last) = next.last() {
                    rows_after = last.audit_seq;
                }
                rows.extend(next);
            }
            let problem = match rows.front() {
                Some(d) if d.audit_seq == e.seq => {
                    let body = d.record.body();
                    let p = (body != e.body || d.record.id != e.subject).then(|| {
                        format!(
                            "decision {} was altered after it was logged at entry {}",
                            d.record.id, e.seq
                        )
                    });
                    rows.pop_front();
                    p
                }
                Some(d) if d.audit_seq < e.seq => Some(format!(
                    "decision {} claims entry {}, which logged something else",
                    d.record.id, d.audit_seq
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
        if let Some(d) = rows.front().cloned().or_else(|| {
            store
                .decisions_by_audit_seq(tenant, rows_after, 1)
                .ok()
                .and_then(|mut v| v.pop())
        }) {
            broken = Some(cxm_domain::audit::Broken {
                seq: d.audit_seq,
                problem: format!(
                    "decision {} names entry {}, which does not log it",
                    d.record.id, d.audit_seq
                ),
            });
        }
    }
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

/// Verifies the tenant's audit chain (decisions, reviews, policy and admin actions).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "agents",
    responses((status = 200, body = AuditReport)), security(("bearer" = [])))]
pub async fn verify_audit(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<AuditReport>> {
    p.require_admin()?;
    let t = p.tenant_id.clone();
    Ok(Json(blocking(&st, move |s| verify_chain(s, &t)).await?))
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
) -> ApiResult<()> {
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
