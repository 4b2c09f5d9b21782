//! Journey definitions, synthetic checks, and the walked projections with their cursor.

use super::*;

impl JourneyStore for PgStore {
    fn save_journey(&self, tenant: &str, j: &StoredJourney, carry: bool) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/journey/' || $2))", &[&tenant, &j.journey_id])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM journeys WHERE tenant_id = $1 AND journey_id = $2", &[&tenant, &j.journey_id])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec(
                "INSERT INTO journeys (tenant_id, journey_id, version, name, owner, definition, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&tenant, &j.journey_id, &v, &j.name, &j.owner, &j.definition, &j.created_by, &now],
            )?;
            let args: [&(dyn postgres::types::ToSql + Sync); 3] = [&tenant, &j.journey_id, &v];
            if carry {
                g.exec("UPDATE journey_positions SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_visits SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_stats SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
                g.exec("UPDATE journey_cursors SET version = $3 WHERE tenant_id = $1 AND journey_id = $2 AND version = $3::bigint - 1", &args)?;
            }
            g.exec("DELETE FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_visits WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_stats WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            g.exec("DELETE FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version < $3", &args)?;
            Ok(v)
        })
    }

    fn journey(
        &self,
        tenant: &str,
        journey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredJourney>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = $1 AND journey_id = $2 AND ($3::bigint IS NULL OR version = $3) ORDER BY version DESC LIMIT 1",
                &[&tenant, &journey_id, &version],
            )?
            .map(|r| journey_row(&r)))
        })
    }

    fn list_journeys(&self, tenant: &str) -> Result<Vec<StoredJourney>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys j
                 WHERE tenant_id = $1 AND version = (SELECT MAX(version) FROM journeys x WHERE x.tenant_id = j.tenant_id AND x.journey_id = j.journey_id)
                 ORDER BY name, journey_id",
                &[&tenant],
            )?
            .iter()
            .map(journey_row)
            .collect())
        })
    }

    fn journey_history(&self, tenant: &str, journey_id: &str) -> Result<Vec<StoredJourney>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT journey_id, version, name, owner, definition, created_by, created_at FROM journeys
                 WHERE tenant_id = $1 AND journey_id = $2 ORDER BY version DESC",
                &[&tenant, &journey_id],
            )?
            .iter()
            .map(journey_row)
            .collect())
        })
    }

    fn journey_cursor(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
    ) -> Result<JourneyCursor> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
                &[&tenant, &journey_id, &version],
            )?
            .map(|r| JourneyCursor { event_seq: r.get(0), feedback_id: r.get(1) })
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
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.name, e.channel, e.ts FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = $3 AND e.name = ANY($4) AND e.seq > $1 AND e.seq <= $2
                 ORDER BY e.seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| JourneyEventRow { seq: r.get(0), profile_id: r.get(1), name: r.get(2), channel: r.get(3), ts_ms: r.get(4) })
            .collect())
        })
    }

    fn journey_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<JourneyAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, profile_id, field_type, score, sentiment, collected_at, journey, stage FROM feedback
                 WHERE tenant_id = $1 AND id > $2 AND field_type IN ('nps', 'csat', 'ces', 'text') ORDER BY id LIMIT $3",
                &[&tenant, &after, &limit],
            )?
            .iter()
            .map(|r| JourneyAnswer {
                id: r.get(0),
                profile_id: r.get(1),
                field_type: r.get(2),
                score: r.get::<_, Option<i64>>(3).map(|s| s as f64),
                sentiment: r.get(4),
                collected_at_ms: r.get(5),
                journey: r.get(6),
                stage: r.get(7),
            })
            .collect())
        })
    }

    fn event_name_seen(&self, tenant: &str, name: &str) -> Result<bool> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND name = $2)",
                &[&tenant, &name],
            )?
            .is_some_and(|r| r.get(0)))
        })
    }

    fn journey_positions(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        profiles: &[String],
    ) -> Result<HashMap<String, cxm_domain::journey_progress::Position>> {
        self.tx(|g| {
            let rows = g.all(
                "SELECT profile_id, state FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = ANY($4)",
                &[&tenant, &journey_id, &version, &profiles],
            )?;
            rows.iter().map(|r| Ok((r.get::<_, String>(0), serde_json::from_str(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn journey_stage_at(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        at: &[(String, i64)],
    ) -> Result<Vec<Option<usize>>> {
        self.tx(|g| {
            let mut out = Vec::with_capacity(at.len());
            for (p, ts) in at {
                let mut stage: Option<i64> = g
                    .opt(
                        "SELECT stage FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = $4 AND entered_at <= $5",
                        &[&tenant, &journey_id, &version, p, ts],
                    )?
                    .map(|r| r.get(0));
                if stage.is_none() {
                    stage = g
                        .opt(
                            "SELECT stage FROM journey_visits WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND profile_id = $4 AND entered_at <= $5 AND left_at >= $5
                             ORDER BY entered_at DESC LIMIT 1",
                            &[&tenant, &journey_id, &version, p, ts],
                        )?
                        .map(|r| r.get(0));
                }
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
        self.tx(|g| {
            let rows = g.all(
                "SELECT stage, stats FROM journey_stats WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 ORDER BY stage",
                &[&tenant, &journey_id, &version],
            )?;
            rows.iter().map(|r| Ok((r.get::<_, i64>(0) as usize, serde_json::from_str(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn journey_stalled(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        cutoffs: &[(usize, i64)],
    ) -> Result<Vec<u64>> {
        self.tx(|g| {
            let mut out = vec![];
            for (stage, cut) in cutoffs {
                let stage = *stage as i64;
                let n: i64 = g
                    .opt(
                        "SELECT COUNT(*) FROM journey_positions WHERE tenant_id = $1 AND journey_id = $2 AND version = $3 AND stage = $4 AND entered_at < $5 AND open = 1",
                        &[&tenant, &journey_id, &version, &stage, cut],
                    )?
                    .map_or(0, |r| r.get(0));
                out.push(n as u64);
            }
            Ok(out)
        })
    }

    fn save_journey_progress(
        &self,
        tenant: &str,
        journey_id: &str,
        version: i64,
        p: &JourneyProgress,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            // one pass at a time per journey, whichever server runs it
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/journey/' || $2))", &[&tenant, &journey_id])?;
            let latest: Option<i64> = g.opt("SELECT MAX(version) FROM journeys WHERE tenant_id = $1 AND journey_id = $2", &[&tenant, &journey_id])?.and_then(|r| r.get(0));
            let cur = g
                .opt(
                    "SELECT event_seq, feedback_id FROM journey_cursors WHERE tenant_id = $1 AND journey_id = $2 AND version = $3",
                    &[&tenant, &journey_id, &version],
                )?
                .map(|r| JourneyCursor { event_seq: r.get(0), feedback_id: r.get(1) })
                .unwrap_or_default();
            if latest != Some(version) || cur != p.from {
                return Ok(false);
            }
            for (profile, pos) in &p.positions {
                let stage = pos.stage as i64;
                let open = i64::from(!pos.done);
                let state = serde_json::to_string(pos)?;
                g.exec(
                    "INSERT INTO journey_positions (tenant_id, journey_id, version, profile_id, stage, open, entered_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, journey_id, version, profile_id) DO UPDATE SET stage = EXCLUDED.stage, open = EXCLUDED.open, entered_at = EXCLUDED.entered_at, state = EXCLUDED.state",
                    &[&tenant, &journey_id, &version, profile, &stage, &open, &pos.entered_ms, &state],
                )?;
            }
            for (profile, v) in &p.visits {
                let stage = v.stage as i64;
                g.exec(
                    "INSERT INTO journey_visits (tenant_id, journey_id, version, profile_id, stage, entered_at, left_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&tenant, &journey_id, &version, profile, &stage, &v.entered_ms, &v.left_ms, &outcome_str(v.outcome)],
                )?;
            }
            for (stage, st) in &p.stats {
                let stage = *stage as i64;
                let json = serde_json::to_string(st)?;
                g.exec(
                    "INSERT INTO journey_stats (tenant_id, journey_id, version, stage, stats) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, journey_id, version, stage) DO UPDATE SET stats = EXCLUDED.stats",
                    &[&tenant, &journey_id, &version, &stage, &json],
                )?;
            }
            g.exec(
                "INSERT INTO journey_cursors (tenant_id, journey_id, version, event_seq, feedback_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, journey_id, version) DO UPDATE SET event_seq = EXCLUDED.event_seq, feedback_id = EXCLUDED.feedback_id, updated_at = EXCLUDED.updated_at",
                &[&tenant, &journey_id, &version, &p.to.event_seq, &p.to.feedback_id, &now],
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
        let (now, passed, detail) = (now_ms(), i64::from(passed), detail.to_string());
        self.tx(|g| {
            g.opt(
                "INSERT INTO journey_checks (tenant_id, name, passed, detail, ran_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&tenant, &name, &passed, &detail, &now],
            )?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Backend("journey check insert returned no id".into()))
        })
    }

    fn journey_check_runs(
        &self,
        tenant: &str,
        name: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JourneyCheckRun>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, name, passed, detail, ran_at FROM journey_checks WHERE tenant_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY id DESC LIMIT $3",
                &[&tenant, &name, &limit],
            )?
            .iter()
            .map(|r| JourneyCheckRun { id: r.get(0), name: r.get(1), passed: r.get::<_, i64>(2) != 0, detail: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or(Value::Null), ran_at_ms: r.get(4) })
            .collect())
        })
    }
}
