//! Journey definitions, synthetic checks, and the walked projections with their cursor.

use super::*;

impl JourneyStore for SqliteStore {
    fn save_journey(&self, tenant: &str, j: &StoredJourney, carry: bool) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM journeys WHERE tenant_id = ?1 AND journey_id = ?2", params![tenant, j.journey_id], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO journeys (tenant_id, journey_id, version, name, owner, definition, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![tenant, j.journey_id, v, j.name, j.owner, j.definition, j.created_by, now_ms()],
            )?;
            for table in ["journey_positions", "journey_visits", "journey_stats", "journey_cursors"] {
                if carry {
                    tx.execute(&format!("UPDATE {table} SET version = ?3 WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 - 1"), params![tenant, j.journey_id, v])?;
                }
                tx.execute(&format!("DELETE FROM {table} WHERE tenant_id = ?1 AND journey_id = ?2 AND version < ?3"), params![tenant, j.journey_id, v])?;
            }
            Ok(v)
        })
    }

    fn journey(
        &self,
        tenant: &str,
        journey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredJourney>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = ?1 AND journey_id = ?2 AND (?3 IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
                params![tenant, journey_id, version],
                journey_row,
            )
            .optional()?)
        })
    }

    fn list_journeys(&self, tenant: &str) -> Result<Vec<StoredJourney>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys j
                 WHERE tenant_id = ?1 AND version = (SELECT MAX(version) FROM journeys x WHERE x.tenant_id = j.tenant_id AND x.journey_id = j.journey_id)
                 ORDER BY name, journey_id",
            )?;
            let rows = st.query_map([tenant], journey_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn journey_history(&self, tenant: &str, journey_id: &str) -> Result<Vec<StoredJourney>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = ?1 AND journey_id = ?2 ORDER BY version DESC",
            )?;
            let rows = st.query_map(params![tenant, journey_id], journey_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn journey_cursor(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<JourneyCursor> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3",
                params![tenant, journey_id, version],
                |r| Ok(JourneyCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }),
            )
            .optional()?
            .unwrap_or_default())
        })
    }

    fn journey_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<JourneyEventRow>> {
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                // by the seq range, not the name index: the index cannot seek on seq, so a
                // short range (the worker's next events, the log after the columnar blocks)
                // would read every index entry of the journey's names
                "SELECT e.seq, e.user_id, e.anonymous_id, e.name, e.channel, e.ts FROM events e NOT INDEXED
                 WHERE e.tenant_id = ?3 AND e.name IN (SELECT value FROM json_each(?4)) AND e.seq > ?1 AND e.seq <= ?2
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok((r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?, JourneyEventRow { seq: r.get(0)?, profile_id: None, name: r.get(3)?, channel: r.get(4)?, ts_ms: r.get(5)? }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            // a customer has many events: resolve each id once rather than joining per event
            let mut lookup = c.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut seen: [std::collections::HashMap<String, Option<String>>; 2] = Default::default();
            let mut resolve = |kind: bool, value: &str| -> Result<Option<String>> {
                let known = &mut seen[usize::from(kind)];
                if let Some(p) = known.get(value) {
                    return Ok(p.clone());
                }
                let k = if kind { "user_id" } else { "anonymous_id" };
                let p: Option<String> = lookup.query_row(params![tenant, k, value], |r| r.get(0)).optional()?;
                known.insert(value.to_string(), p.clone());
                Ok(p)
            };
            let mut out = Vec::with_capacity(rows.len());
            for (user, anon, mut row) in rows {
                row.profile_id = match &user {
                    Some(u) => resolve(true, u)?,
                    None => None,
                };
                if row.profile_id.is_none() {
                    if let Some(a) = &anon {
                        row.profile_id = resolve(false, a)?;
                    }
                }
                out.push(row);
            }
            Ok(out)
        })
    }

    fn journey_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<JourneyAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, profile_id, field_type, score, sentiment, collected_at, journey, stage FROM feedback
                 WHERE tenant_id = ?1 AND id > ?2 AND field_type IN ('nps', 'csat', 'ces', 'text') ORDER BY id LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, after, limit], |r| {
                    Ok(JourneyAnswer {
                        id: r.get(0)?,
                        profile_id: r.get(1)?,
                        field_type: r.get(2)?,
                        score: r.get::<_, Option<i64>>(3)?.map(|s| s as f64),
                        sentiment: r.get(4)?,
                        collected_at_ms: r.get(5)?,
                        journey: r.get(6)?,
                        stage: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn event_name_seen(&self, tenant: &str, name: &str) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = ?1 AND name = ?2)",
                params![tenant, name],
                |r| r.get(0),
            )?)
        })
    }

    fn journey_positions(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        profiles: &[String],
    ) -> Result<std::collections::HashMap<String, cxm_domain::journey_progress::Position>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT state FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4")?;
            let mut out = std::collections::HashMap::new();
            for p in profiles {
                if let Some(state) = st.query_row(params![tenant, journey_id, version, p], |r| r.get::<_, String>(0)).optional()? {
                    out.insert(p.clone(), serde_json::from_str(&state)?);
                }
            }
            Ok(out)
        })
    }

    fn journey_stage_at(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        at: &[(String, i64)],
    ) -> Result<Vec<Option<usize>>> {
        self.read(|c| {
            let mut pos = c.prepare_cached("SELECT stage FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4 AND entered_at <= ?5")?;
            let mut visit = c.prepare_cached(
                "SELECT stage FROM journey_visits WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND profile_id = ?4 AND entered_at <= ?5 AND left_at >= ?5
                 ORDER BY entered_at DESC LIMIT 1",
            )?;
            let mut out = Vec::with_capacity(at.len());
            for (p, ts) in at {
                let stage: Option<i64> = match pos.query_row(params![tenant, journey_id, version, p, ts], |r| r.get(0)).optional()? {
                    Some(s) => Some(s),
                    None => visit.query_row(params![tenant, journey_id, version, p, ts], |r| r.get(0)).optional()?,
                };
                out.push(stage.map(|s| s as usize));
            }
            Ok(out)
        })
    }

    fn journey_stats(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<Vec<(usize, cxm_domain::journey_progress::StageStats)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT stage, stats FROM journey_stats WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 ORDER BY stage")?;
            let rows = st
                .query_map(params![tenant, journey_id, version], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(s, j)| Ok((s as usize, serde_json::from_str(&j)?))).collect()
        })
    }

    fn journey_stalled(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        cutoffs: &[(usize, i64)],
    ) -> Result<Vec<u64>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT COUNT(*) FROM journey_positions WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3 AND stage = ?4 AND entered_at < ?5 AND open = 1",
            )?;
            cutoffs
                .iter()
                .map(|(stage, cut)| Ok(st.query_row(params![tenant, journey_id, version, *stage as i64, cut], |r| r.get::<_, i64>(0))? as u64))
                .collect()
        })
    }

    fn save_journey_progress(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        p: &JourneyProgress,
    ) -> Result<bool> {
        self.write_derived(|tx| {
            let latest: Option<i64> = tx.query_row("SELECT MAX(version) FROM journeys WHERE tenant_id = ?1 AND journey_id = ?2", params![tenant, journey_id], |r| r.get(0))?;
            let cur = tx
                .query_row(
                    "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = ?1 AND journey_id = ?2 AND version = ?3",
                    params![tenant, journey_id, version],
                    |r| Ok(JourneyCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }),
                )
                .optional()?
                .unwrap_or_default();
            if latest != Some(version) || cur != p.from {
                return Ok(false);
            }
            {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO journey_positions (tenant_id, journey_id, version, profile_id, stage, open, entered_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (profile, pos) in &p.positions {
                    put.execute(params![tenant, journey_id, version, profile, pos.stage as i64, !pos.done, pos.entered_ms, serde_json::to_string(pos)?])?;
                }
                let mut visit = tx.prepare_cached(
                    "INSERT INTO journey_visits (tenant_id, journey_id, version, profile_id, stage, entered_at, left_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (profile, v) in &p.visits {
                    visit.execute(params![tenant, journey_id, version, profile, v.stage as i64, v.entered_ms, v.left_ms, outcome_str(v.outcome)])?;
                }
                let mut stats = tx.prepare_cached("INSERT OR REPLACE INTO journey_stats (tenant_id, journey_id, version, stage, stats) VALUES (?1, ?2, ?3, ?4, ?5)")?;
                for (stage, st) in &p.stats {
                    stats.execute(params![tenant, journey_id, version, *stage as i64, serde_json::to_string(st)?])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO journey_cursors (tenant_id, journey_id, version, event_seq, feedback_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, journey_id, version, p.to.event_seq, p.to.feedback_id, now_ms()],
            )?;
            Ok(true)
        })
    }

    fn record_journey_check(
        &self,
        tenant: &str,
        name: &str,
        passed: bool,
        detail: &Value,
    ) -> Result<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO journey_checks (tenant_id, name, passed, detail, ran_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, name, passed, detail.to_string(), now_ms()],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn journey_check_runs(
        &self,
        tenant: &str,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JourneyCheckRun>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, passed, detail, ran_at FROM journey_checks WHERE tenant_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, name, limit], |r| {
                    let d: String = r.get(3)?;
                    Ok(JourneyCheckRun { id: r.get(0)?, name: r.get(1)?, passed: r.get(2)?, detail: serde_json::from_str(&d).unwrap_or(Value::Null), ran_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
