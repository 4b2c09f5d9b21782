//! The right to erasure, written once for both backends: every row that names or describes
//! a person goes, the texts that quoted them are redacted, the audit entries of their
//! decisions keep only their hashes, and what remains is a tombstone with counts and no
//! identifier. Runs inside the caller's transaction, so an erasure is all or nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::Result;

/// A parameter for [`Sql`]: text or an integer.
#[derive(Debug, Clone)]
pub(crate) enum P {
    T(String),
    I(i64),
}

/// The few operations the erasure needs, over a backend's transaction. SQL is written with
/// `?1`-style placeholders; PostgreSQL's adapter rewrites them to `$1`.
pub(crate) trait Sql {
    fn exec(&mut self, sql: &str, params: &[P]) -> Result<u64>;
    /// Rows of text (select `CAST(x AS TEXT)` for numbers).
    fn texts(&mut self, sql: &str, params: &[P]) -> Result<Vec<Vec<Option<String>>>>;
}

/// What was removed, by kind; the tombstone keeps only this.
pub type Counts = BTreeMap<String, u64>;

fn t(s: &str) -> P {
    P::T(s.to_string())
}

fn col(rows: Vec<Vec<Option<String>>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// Erases the profile `root` and every profile merged into it. Returns the counts, or None
/// when the tenant has no such profile.
pub(crate) fn erase(
    db: &mut dyn Sql,
    tenant: &str,
    root: &str,
    erasure_id: &str,
    actor: &str,
    at_ms: i64,
) -> Result<Option<Counts>> {
    let mut profiles = col(db.texts(
        "SELECT id FROM profiles WHERE tenant_id = ?1 AND (id = ?2 OR merged_into = ?2)",
        &[t(tenant), t(root)],
    )?);
    if profiles.is_empty() {
        return Ok(None);
    }
    profiles.sort();
    let mut counts = Counts::new();
    let mut add = |k: &str, n: u64| *counts.entry(k.to_string()).or_default() += n;

    // who they are: every identifier of every profile, and the typed forms answers use
    let mut ids: Vec<(String, String)> = vec![];
    for p in &profiles {
        for r in db.texts(
            "SELECT kind, value FROM identifiers WHERE tenant_id = ?1 AND profile_id = ?2",
            &[t(tenant), t(p)],
        )? {
            if let [Some(k), Some(v)] = r.as_slice() {
                ids.push((k.clone(), v.clone()));
            }
        }
    }
    let typed: BTreeSet<String> = ids.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let values: BTreeSet<String> = ids.iter().map(|(_, v)| v.clone()).collect();
    // every form a customer can be named by elsewhere: typed, raw value, profile id
    let names: BTreeSet<String> = typed
        .iter()
        .cloned()
        .chain(values.iter().cloned())
        .chain(profiles.iter().cloned())
        .collect();

    // the event log
    for (k, v) in &ids {
        let col = match k.as_str() {
            "user_id" => "user_id",
            "anonymous_id" => "anonymous_id",
            _ => continue,
        };
        let sql = format!("DELETE FROM events WHERE tenant_id = ?1 AND {col} = ?2");
        add("events", db.exec(&sql, &[t(tenant), t(v)])?);
    }
    // the columnar copy names the customer too: the tenant's blocks go and are written again
    db.exec(
        "DELETE FROM event_blocks WHERE tenant_id = ?1",
        &[t(tenant)],
    )?;

    // answers, and the theme quotes taken from them
    let mut answer_ids = BTreeSet::new();
    let mut texts = BTreeSet::new();
    for p in &profiles {
        for r in db.texts(
            "SELECT CAST(id AS TEXT), text_value FROM feedback WHERE tenant_id = ?1 AND profile_id = ?2",
            &[t(tenant), t(p)],
        )? {
            collect_answer(r, &mut answer_ids, &mut texts);
        }
    }
    for n in &typed {
        for r in db.texts(
            "SELECT CAST(id AS TEXT), text_value FROM feedback WHERE tenant_id = ?1 AND identifier = ?2",
            &[t(tenant), t(n)],
        )? {
            collect_answer(r, &mut answer_ids, &mut texts);
        }
    }
    for id in &answer_ids {
        db.exec(
            "DELETE FROM feedback_themes WHERE tenant_id = ?1 AND feedback_id = ?2",
            &[t(tenant), P::I(*id)],
        )?;
        add(
            "answers",
            db.exec(
                "DELETE FROM feedback WHERE tenant_id = ?1 AND id = ?2",
                &[t(tenant), P::I(*id)],
            )?,
        );
    }
    if !texts.is_empty() {
        for r in db.texts(
            "SELECT theme_id, doc FROM themes WHERE tenant_id = ?1",
            &[t(tenant)],
        )? {
            let [Some(theme), Some(doc)] = r.as_slice() else {
                continue;
            };
            let Ok(mut v) = serde_json::from_str::<Value>(doc) else {
                continue;
            };
            let Some(quotes) = v.get_mut("quotes").and_then(Value::as_array_mut) else {
                continue;
            };
            let before = quotes.len();
            quotes.retain(|q| !q.as_str().is_some_and(|q| texts.contains(q)));
            if quotes.len() != before {
                add("theme_quotes", (before - quotes.len()) as u64);
                db.exec(
                    "UPDATE themes SET doc = ?3 WHERE tenant_id = ?1 AND theme_id = ?2",
                    &[t(tenant), t(theme), t(&v.to_string())],
                )?;
            }
        }
    }

    // surveys sent to them
    for n in &typed {
        add(
            "survey_links",
            db.exec(
                "DELETE FROM survey_links WHERE tenant_id = ?1 AND identifier = ?2",
                &[t(tenant), t(n)],
            )?,
        );
        add(
            "survey_invitations",
            db.exec(
                "DELETE FROM survey_invitations WHERE tenant_id = ?1 AND identifier = ?2",
                &[t(tenant), t(n)],
            )?,
        );
    }

    // decisions about them: rows go, their audit entries (and reviews) keep only the hash
    let mut decisions: BTreeMap<String, String> = BTreeMap::new();
    for n in &names {
        for r in db.texts(
            "SELECT id, CAST(audit_seq AS TEXT) FROM decisions WHERE tenant_id = ?1 AND customer = ?2",
            &[t(tenant), t(n)],
        )? {
            if let [Some(id), Some(seq)] = r.as_slice() {
                decisions.insert(id.clone(), seq.clone());
            }
        }
    }
    for (id, seq) in &decisions {
        db.exec(
            "DELETE FROM decisions WHERE tenant_id = ?1 AND id = ?2",
            &[t(tenant), t(id)],
        )?;
        let seq: i64 = seq.parse().unwrap_or(0);
        db.exec(
            "UPDATE audit_log SET body = ?3 WHERE tenant_id = ?1 AND seq = ?2",
            &[t(tenant), P::I(seq), t(cxm_domain::audit::ERASED)],
        )?;
        db.exec(
            "UPDATE audit_log SET body = ?3 WHERE tenant_id = ?1 AND subject = ?2 AND kind IN ('decision.reviewed', 'decision.outcome')",
            &[t(tenant), t(id), t(cxm_domain::audit::ERASED)],
        )?;
    }
    add("decisions", decisions.len() as u64);
    for n in &names {
        add(
            "signed_messages",
            db.exec(
                "DELETE FROM signed_messages WHERE tenant_id = ?1 AND customer = ?2",
                &[t(tenant), t(n)],
            )?,
        );
        add(
            "step_ups",
            db.exec(
                "DELETE FROM step_ups WHERE tenant_id = ?1 AND customer = ?2",
                &[t(tenant), t(n)],
            )?,
        );
    }

    for n in &names {
        add(
            "experiment_exposures",
            db.exec(
                "DELETE FROM experiment_exposures WHERE tenant_id = ?1 AND customer = ?2",
                &[t(tenant), t(n)],
            )?,
        );
    }

    // the identity graph and everything keyed by the profile
    for p in &profiles {
        add(
            "experiment_exposures",
            db.exec(
                "DELETE FROM experiment_exposures WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "step_ups",
            db.exec(
                "DELETE FROM step_ups WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "consents",
            db.exec(
                "DELETE FROM consents WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "outbound_mail",
            db.exec(
                "DELETE FROM outbound_mail WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "journey_positions",
            db.exec(
                "DELETE FROM journey_positions WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "journey_visits",
            db.exec(
                "DELETE FROM journey_visits WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        db.exec(
            "DELETE FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2",
            &[t(tenant), t(p)],
        )?;
        add(
            "ledger",
            db.exec(
                "DELETE FROM identity_ledger WHERE tenant_id = ?1 AND (profile_id = ?2 OR other_profile_id = ?2)",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "identifiers",
            db.exec(
                "DELETE FROM identifiers WHERE tenant_id = ?1 AND profile_id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
        add(
            "profiles",
            db.exec(
                "DELETE FROM profiles WHERE tenant_id = ?1 AND id = ?2",
                &[t(tenant), t(p)],
            )?,
        );
    }
    for (k, v) in &ids {
        add(
            "ledger",
            db.exec(
                "DELETE FROM identity_ledger WHERE tenant_id = ?1 AND identifier_kind = ?2 AND identifier_value = ?3",
                &[t(tenant), t(k), t(v)],
            )?,
        );
        db.exec(
            "DELETE FROM blocked_identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3",
            &[t(tenant), t(k), t(v)],
        )?;
    }

    // audit bodies that name them (unmerges, ...): redacted; the chain keeps their hashes
    for v in &names {
        let like = format!("%{}%", like_escape(v));
        add(
            "audit_bodies",
            db.exec(
                "UPDATE audit_log SET body = ?3 WHERE tenant_id = ?1 AND body LIKE ?2 ESCAPE '\\' AND body <> ?3",
                &[t(tenant), t(&like), t(cxm_domain::audit::ERASED)],
            )?,
        );
    }

    // free text that may quote them: rejected events, outbound webhooks, ticket impacts
    for v in &names {
        let like = format!("%{}%", like_escape(v));
        add(
            "quarantined",
            db.exec(
                "DELETE FROM quarantine WHERE tenant_id = ?1 AND payload LIKE ?2 ESCAPE '\\'",
                &[t(tenant), t(&like)],
            )?,
        );
        add(
            "webhook_deliveries",
            db.exec(
                "DELETE FROM webhook_deliveries WHERE tenant_id = ?1 AND payload LIKE ?2 ESCAPE '\\'",
                &[t(tenant), t(&like)],
            )?,
        );
        add(
            "ticket_notes",
            db.exec(
                "UPDATE ticket_events SET detail = ?3 WHERE tenant_id = ?1 AND detail LIKE ?2 ESCAPE '\\'",
                &[t(tenant), t(&like), t(cxm_domain::audit::ERASED)],
            )?,
        );
    }
    for r in db.texts(
        "SELECT CAST(id AS TEXT), impact FROM tickets WHERE tenant_id = ?1",
        &[t(tenant)],
    )? {
        let [Some(id), Some(impact)] = r.as_slice() else {
            continue;
        };
        if !names.iter().any(|n| impact.contains(n.as_str())) {
            continue;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(impact) else {
            continue;
        };
        if let Some(list) = v.get_mut("identifiers").and_then(Value::as_array_mut) {
            list.retain(|i| !i.as_str().is_some_and(|i| names.contains(i)));
        }
        add("ticket_impacts", 1);
        db.exec(
            "UPDATE tickets SET impact = ?3 WHERE tenant_id = ?1 AND id = ?2",
            &[t(tenant), P::I(id.parse().unwrap_or(0)), t(&v.to_string())],
        )?;
    }

    db.exec(
        "INSERT INTO erasures (tenant_id, id, counts, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            t(tenant),
            t(erasure_id),
            t(&serde_json::to_string(&counts)?),
            t(actor),
            P::I(at_ms),
        ],
    )?;
    Ok(Some(counts))
}

fn collect_answer(r: Vec<Option<String>>, ids: &mut BTreeSet<i64>, texts: &mut BTreeSet<String>) {
    if let Some(Some(id)) = r.first() {
        if let Ok(id) = id.parse() {
            ids.insert(id);
        }
    }
    if let Some(Some(text)) = r.get(1) {
        texts.insert(text.clone());
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
