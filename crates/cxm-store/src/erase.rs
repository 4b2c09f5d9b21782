//! The right to erasure, and the right of access, written once for both backends and from
//! one list: every row that names or describes a person goes, the texts that quoted them are
//! redacted, the audit entries of their decisions keep only their hashes, and what remains
//! is a tombstone with counts and no identifier. The access export runs the very same steps
//! in a transaction it rolls back, keeping each row before it would go, so it holds exactly
//! what an erasure would remove, kind by kind.

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
    /// `SELECT * FROM <table> WHERE <filter>` as one JSON object per row, keyed by column.
    fn rows(&mut self, table: &str, filter: &str, params: &[P]) -> Result<Vec<Value>>;
    /// The filter (after `tenant_id = ?1 AND`) for events whose `column`, `user_id` or
    /// `anonymous_id`, is `?2`, in the form this backend's indexes answer.
    fn events_of(&self, column: &'static str) -> String {
        format!("{column} = ?2")
    }
}

/// What was removed, by kind; the tombstone keeps only this.
pub type Counts = BTreeMap<String, u64>;
/// What an erasure would remove, by the same kinds: the rows as they are.
pub type Held = BTreeMap<String, Vec<Value>>;

fn t(s: &str) -> P {
    P::T(s.to_string())
}

fn col(rows: Vec<Vec<Option<String>>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// Runs the steps, counting, and (when collecting) keeping each row before it changes.
struct Run<'a> {
    db: &'a mut dyn Sql,
    tenant: String,
    counts: Counts,
    held: Option<Held>,
}

impl Run<'_> {
    fn add(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.counts.entry(kind.to_string()).or_default() += n;
        }
    }

    fn keep(&mut self, kind: &str, rows: Vec<Value>) {
        if let Some(h) = &mut self.held {
            if !rows.is_empty() {
                h.entry(kind.to_string()).or_default().extend(rows);
            }
        }
    }

    /// Deletes the tenant's rows of `table` matching `filter` (`?1` is the tenant; the
    /// others follow).
    fn delete(&mut self, kind: &str, table: &str, filter: &str, params: Vec<P>) -> Result<u64> {
        let mut p = vec![t(&self.tenant)];
        p.extend(params);
        let filter = format!("tenant_id = ?1 AND ({filter})");
        if self.held.is_some() {
            let rows = self.db.rows(table, &filter, &p)?;
            self.keep(kind, rows);
        }
        let n = self
            .db
            .exec(&format!("DELETE FROM {table} WHERE {filter}"), &p)?;
        self.add(kind, n);
        Ok(n)
    }

    /// Sets `set` on the tenant's rows of `table` matching `filter` (a redaction).
    fn redact(
        &mut self,
        kind: &str,
        table: &str,
        set: &str,
        filter: &str,
        params: Vec<P>,
    ) -> Result<u64> {
        let mut p = vec![t(&self.tenant)];
        p.extend(params);
        let filter = format!("tenant_id = ?1 AND ({filter})");
        if self.held.is_some() {
            // the new value may be a parameter of its own, which the select does not take
            let used = highest_placeholder(&filter).min(p.len());
            let rows = self.db.rows(table, &filter, &p[..used])?;
            self.keep(kind, rows);
        }
        let n = self
            .db
            .exec(&format!("UPDATE {table} SET {set} WHERE {filter}"), &p)?;
        self.add(kind, n);
        Ok(n)
    }
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
    let mut run = Run {
        db,
        tenant: tenant.to_string(),
        counts: Counts::new(),
        held: None,
    };
    if !steps(&mut run, root)? {
        return Ok(None);
    }
    let counts = run.counts;
    run.db.exec(
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

/// Everything an erasure of `root` would remove, kind by kind, and the counts it would
/// report. The caller runs this in a transaction it rolls back.
pub(crate) fn collect(
    db: &mut dyn Sql,
    tenant: &str,
    root: &str,
) -> Result<Option<(Held, Counts)>> {
    let mut run = Run {
        db,
        tenant: tenant.to_string(),
        counts: Counts::new(),
        held: Some(Held::new()),
    };
    if !steps(&mut run, root)? {
        return Ok(None);
    }
    Ok(Some((run.held.unwrap_or_default(), run.counts)))
}

/// The erasure, step by step; false when there is no such profile.
fn steps(run: &mut Run, root: &str) -> Result<bool> {
    let tenant = run.tenant.clone();
    let mut profiles = col(run.db.texts(
        "SELECT id FROM profiles WHERE tenant_id = ?1 AND (id = ?2 OR merged_into = ?2)",
        &[t(&tenant), t(root)],
    )?);
    if profiles.is_empty() {
        return Ok(false);
    }
    profiles.sort();

    // who they are: every identifier of every profile, and every identifier the ledger ever
    // linked to one of them that nobody holds now (one unmerged before the erasure is blocked
    // and held by no one: it goes with its events; a link the rules refused is not theirs)
    let mut ids: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &profiles {
        for r in run.db.texts(
            "SELECT kind, value FROM identifiers WHERE tenant_id = ?1 AND profile_id = ?2",
            &[t(&tenant), t(p)],
        )? {
            if let [Some(k), Some(v)] = r.as_slice() {
                ids.insert((k.clone(), v.clone()));
            }
        }
    }
    for p in &profiles {
        for r in run.db.texts(
            "SELECT l.identifier_kind, l.identifier_value FROM identity_ledger l
             LEFT JOIN identifiers i ON i.tenant_id = l.tenant_id AND i.kind = l.identifier_kind AND i.value = l.identifier_value
             WHERE l.tenant_id = ?1 AND (l.profile_id = ?2 OR l.other_profile_id = ?2) AND l.action <> 'drop'
               AND l.identifier_value IS NOT NULL AND i.profile_id IS NULL",
            &[t(&tenant), t(p)],
        )? {
            if let [Some(k), Some(v)] = r.as_slice() {
                ids.insert((k.clone(), v.clone()));
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
        let column = match k.as_str() {
            "user_id" => "user_id",
            "anonymous_id" => "anonymous_id",
            _ => continue,
        };
        let filter = run.db.events_of(column);
        run.delete("events", "events", &filter, vec![t(v)])?;
    }
    // the columnar copy names the customer too: the tenant's blocks go and are written again
    // (it is a copy of rows above, so neither counted nor exported)
    run.db.exec(
        "DELETE FROM event_blocks WHERE tenant_id = ?1",
        &[t(&tenant)],
    )?;

    // answers, and the theme assignments and quotes taken from them
    let mut answer_ids = BTreeSet::new();
    let mut texts = BTreeSet::new();
    for p in &profiles {
        for r in run.db.texts(
            "SELECT CAST(id AS TEXT), text_value FROM feedback WHERE tenant_id = ?1 AND profile_id = ?2",
            &[t(&tenant), t(p)],
        )? {
            collect_answer(r, &mut answer_ids, &mut texts);
        }
    }
    for n in &typed {
        for r in run.db.texts(
            "SELECT CAST(id AS TEXT), text_value FROM feedback WHERE tenant_id = ?1 AND identifier = ?2",
            &[t(&tenant), t(n)],
        )? {
            collect_answer(r, &mut answer_ids, &mut texts);
        }
    }
    for id in &answer_ids {
        run.delete(
            "theme_assignments",
            "feedback_themes",
            "feedback_id = ?2",
            vec![P::I(*id)],
        )?;
        run.delete("answers", "feedback", "id = ?2", vec![P::I(*id)])?;
    }
    if !texts.is_empty() {
        for r in run.db.texts(
            "SELECT theme_id, doc FROM themes WHERE tenant_id = ?1",
            &[t(&tenant)],
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
            let (gone, kept): (Vec<Value>, Vec<Value>) = quotes
                .drain(..)
                .partition(|q| q.as_str().is_some_and(|q| texts.contains(q)));
            *quotes = kept;
            if !gone.is_empty() {
                run.add("theme_quotes", gone.len() as u64);
                run.keep(
                    "theme_quotes",
                    gone.into_iter()
                        .map(|q| serde_json::json!({"theme_id": theme, "quote": q}))
                        .collect(),
                );
                run.db.exec(
                    "UPDATE themes SET doc = ?3 WHERE tenant_id = ?1 AND theme_id = ?2",
                    &[t(&tenant), t(theme), t(&v.to_string())],
                )?;
            }
        }
    }

    // surveys sent to them
    for n in &typed {
        run.delete(
            "survey_links",
            "survey_links",
            "identifier = ?2",
            vec![t(n)],
        )?;
        run.delete(
            "survey_invitations",
            "survey_invitations",
            "identifier = ?2",
            vec![t(n)],
        )?;
    }

    // decisions about them: rows go, their audit entries (and reviews) keep only the hash
    let mut decisions: BTreeMap<String, String> = BTreeMap::new();
    for n in &names {
        for r in run.db.texts(
            "SELECT id, CAST(audit_seq AS TEXT) FROM decisions WHERE tenant_id = ?1 AND customer = ?2",
            &[t(&tenant), t(n)],
        )? {
            if let [Some(id), Some(seq)] = r.as_slice() {
                decisions.insert(id.clone(), seq.clone());
            }
        }
    }
    let erased = t(cxm_domain::audit::ERASED);
    for (id, seq) in &decisions {
        run.delete("decisions", "decisions", "id = ?2", vec![t(id)])?;
        let seq: i64 = seq.parse().unwrap_or(0);
        run.redact(
            "audit_bodies",
            "audit_log",
            "body = ?3",
            "seq = ?2 AND body <> ?3",
            vec![P::I(seq), erased.clone()],
        )?;
        run.redact(
            "audit_bodies",
            "audit_log",
            "body = ?3",
            "subject = ?2 AND kind IN ('decision.reviewed', 'decision.outcome') AND body <> ?3",
            vec![t(id), erased.clone()],
        )?;
    }
    for n in &names {
        run.delete(
            "signed_messages",
            "signed_messages",
            "customer = ?2",
            vec![t(n)],
        )?;
        run.delete("step_ups", "step_ups", "customer = ?2", vec![t(n)])?;
        run.delete(
            "experiment_exposures",
            "experiment_exposures",
            "customer = ?2",
            vec![t(n)],
        )?;
    }

    // the identity graph and everything keyed by the profile
    for p in &profiles {
        for (kind, table) in [
            ("experiment_exposures", "experiment_exposures"),
            ("step_ups", "step_ups"),
            ("consents", "consents"),
            ("outbound_mail", "outbound_mail"),
            ("journey_positions", "journey_positions"),
            ("journey_visits", "journey_visits"),
            ("account_links", "profile_accounts"),
        ] {
            run.delete(kind, table, "profile_id = ?2", vec![t(p)])?;
        }
        run.delete(
            "ledger",
            "identity_ledger",
            "profile_id = ?2 OR other_profile_id = ?2",
            vec![t(p)],
        )?;
        run.delete("identifiers", "identifiers", "profile_id = ?2", vec![t(p)])?;
        run.delete("profiles", "profiles", "id = ?2", vec![t(p)])?;
    }
    for (k, v) in &ids {
        run.delete(
            "ledger",
            "identity_ledger",
            "identifier_kind = ?2 AND identifier_value = ?3",
            vec![t(k), t(v)],
        )?;
        run.delete(
            "blocked_identifiers",
            "blocked_identifiers",
            "kind = ?2 AND value = ?3",
            vec![t(k), t(v)],
        )?;
    }

    // audit bodies that name them (unmerges, ...): redacted; the chain keeps their hashes
    for v in &names {
        let like = format!("%{}%", like_escape(v));
        run.redact(
            "audit_bodies",
            "audit_log",
            "body = ?3",
            "body LIKE ?2 ESCAPE '\\' AND body <> ?3",
            vec![t(&like), erased.clone()],
        )?;
    }

    // free text that may quote them: rejected events, outbound webhooks and mail, ticket
    // notes and impacts
    for v in &names {
        let like = format!("%{}%", like_escape(v));
        run.delete(
            "quarantined",
            "quarantine",
            "payload LIKE ?2 ESCAPE '\\'",
            vec![t(&like)],
        )?;
        run.delete(
            "webhook_deliveries",
            "webhook_deliveries",
            "payload LIKE ?2 ESCAPE '\\'",
            vec![t(&like)],
        )?;
        run.redact(
            "ticket_notes",
            "ticket_events",
            "detail = ?3",
            "detail LIKE ?2 ESCAPE '\\' AND detail <> ?3",
            vec![t(&like), erased.clone()],
        )?;
    }
    for r in run.db.texts(
        "SELECT CAST(id AS TEXT), impact FROM tickets WHERE tenant_id = ?1",
        &[t(&tenant)],
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
        let id: i64 = id.parse().unwrap_or(0);
        run.redact(
            "ticket_impacts",
            "tickets",
            "impact = ?3",
            "id = ?2",
            vec![P::I(id), t(&v.to_string())],
        )?;
    }
    Ok(true)
}

/// The highest `?N` in a statement.
fn highest_placeholder(sql: &str) -> usize {
    sql.split('?')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
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
