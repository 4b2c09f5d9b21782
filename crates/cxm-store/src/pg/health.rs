//! Per-account daily facts, signal sets, scores and alerts.

use super::*;

impl HealthStore for PgStore {
    fn health_cursor(&self, tenant: &str) -> Result<HealthCursor> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| HealthCursor {
                event_seq: r.get(0),
                feedback_id: r.get(1),
            })
            .unwrap_or_default())
        })
    }

    fn health_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<HealthEventRow>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(e.group_id, (SELECT pa.group_id FROM identifiers i JOIN profile_accounts pa ON pa.tenant_id = i.tenant_id AND pa.profile_id = i.profile_id
                     WHERE i.tenant_id = e.tenant_id AND ((i.kind = 'user_id' AND i.value = e.user_id) OR (i.kind = 'anonymous_id' AND i.value = e.anonymous_id))
                     ORDER BY i.kind DESC, pa.group_id LIMIT 1)), e.name, e.category, e.ts
                 FROM events e WHERE e.seq > $1 AND e.seq <= $2 AND e.tenant_id = $3 ORDER BY e.seq LIMIT $4",
                &[&after, &upto, &tenant, &limit],
            )?
            .iter()
            .map(|r| HealthEventRow { seq: r.get(0), account: r.get(1), name: r.get(2), category: r.get(3), ts_ms: r.get(4) })
            .collect())
        })
    }

    fn account_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<AccountAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, account, field_type, score, collected_at FROM feedback
                 WHERE tenant_id = $1 AND id > $2 AND field_type IN ('nps', 'csat') ORDER BY id LIMIT $3",
                &[&tenant, &after, &limit],
            )?
            .iter()
            .map(|r| AccountAnswer { id: r.get(0), account: r.get(1), field_type: r.get(2), score: r.get::<_, Option<i64>>(3).map(|s| s as f64), collected_at_ms: r.get(4) })
            .collect())
        })
    }

    fn add_account_days(
        &self,
        tenant: &str,
        from: HealthCursor,
        to: HealthCursor,
        days: &[(String, cxm_domain::health::AccountDay)],
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/health'))", &[&tenant])?;
            let cur = g
                .opt("SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = $1", &[&tenant])?
                .map(|r| HealthCursor { event_seq: r.get(0), feedback_id: r.get(1) })
                .unwrap_or_default();
            if cur != from {
                return Ok(false);
            }
            // one statement for the whole fold: the worker's pass covers thousands of
            // account days, and a round trip each held the health lock for seconds
            let mut cols: [Vec<i64>; 6] = Default::default();
            let (mut groups, mut day_keys) = (Vec::with_capacity(days.len()), Vec::with_capacity(days.len()));
            for (grp, d) in days {
                let n: [i64; 6] = [d.active, d.tickets, d.payment_failed, d.usage, d.churned, d.low_scores].map(i64::from);
                for (c, v) in cols.iter_mut().zip(n) {
                    c.push(v);
                }
                groups.push(grp.as_str());
                day_keys.push(d.day.to_string());
            }
            if !days.is_empty() {
                g.exec(
                    "INSERT INTO account_daily (tenant_id, group_id, day, active, tickets, payment_failed, usage, churned, low_scores)
                     SELECT $1, g, d, a, t, p, u, c, l FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) AS x(g, d, a, t, p, u, c, l)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET active = account_daily.active + EXCLUDED.active, tickets = account_daily.tickets + EXCLUDED.tickets,
                       payment_failed = account_daily.payment_failed + EXCLUDED.payment_failed, usage = account_daily.usage + EXCLUDED.usage,
                       churned = account_daily.churned + EXCLUDED.churned, low_scores = account_daily.low_scores + EXCLUDED.low_scores",
                    &[&tenant, &groups, &day_keys, &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]],
                )?;
            }
            g.exec(
                "INSERT INTO health_cursors (tenant_id, event_seq, feedback_id, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE SET event_seq = EXCLUDED.event_seq, feedback_id = EXCLUDED.feedback_id, updated_at = EXCLUDED.updated_at",
                &[&tenant, &to.event_seq, &to.feedback_id, &now],
            )?;
            Ok(true)
        })
    }

    fn accounts_for_health(
        &self,
        tenant: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<AccountRecord>> {
        let since = since.to_string();
        self.tx(|g| {
            let mut out: std::collections::BTreeMap<String, AccountRecord> = std::collections::BTreeMap::new();
            for r in g.all("SELECT group_id, traits FROM accounts WHERE tenant_id = $1", &[&tenant])? {
                let grp: String = r.get(0);
                out.insert(grp.clone(), account_record(grp, r.get::<_, &str>(1)));
            }
            let rows = g.all(
                "SELECT group_id, day, active, tickets, payment_failed, usage, churned, low_scores FROM account_daily
                 WHERE tenant_id = $1 AND day >= $2 ORDER BY group_id, day",
                &[&tenant, &since],
            )?;
            for r in rows {
                let grp: String = r.get(0);
                let Ok(day) = r.get::<_, &str>(1).parse() else { continue };
                let n: [u32; 6] = [2, 3, 4, 5, 6, 7].map(|i| r.get::<_, i64>(i).clamp(0, i64::from(u32::MAX)) as u32);
                out.entry(grp.clone()).or_insert_with(|| account_record(grp, "{}")).days.push(account_day(day, n));
            }
            Ok(out.into_values().collect())
        })
    }

    fn save_signal_set(&self, tenant: &str, definition: &str, actor: &str) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/signals'))", &[&tenant])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM signal_sets WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec("INSERT INTO signal_sets (tenant_id, version, definition, created_by, created_at) VALUES ($1, $2, $3, $4, $5)", &[&tenant, &v, &definition, &actor, &now])?;
            Ok(v)
        })
    }

    fn signal_set(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        self.tx(|g| Ok(g.opt("SELECT version, definition FROM signal_sets WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1", &[&tenant])?.map(|r| (r.get(0), r.get(1)))))
    }

    fn save_account_health(
        &self,
        tenant: &str,
        rows: &[AccountHealthRow],
        day: chrono::NaiveDate,
    ) -> Result<()> {
        let day = day.to_string();
        self.tx(|g| {
            for r in rows {
                let readings = r.readings.to_string();
                g.exec(
                    "INSERT INTO account_health (tenant_id, group_id, name, score, band, readings, arr, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, group_id) DO UPDATE SET name = EXCLUDED.name, score = EXCLUDED.score, band = EXCLUDED.band, readings = EXCLUDED.readings, arr = EXCLUDED.arr, computed_at = EXCLUDED.computed_at",
                    &[&tenant, &r.group_id, &r.name, &r.score, &r.band, &readings, &r.arr, &r.computed_at_ms],
                )?;
                g.exec(
                    "INSERT INTO health_history (tenant_id, group_id, day, score, band) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET score = EXCLUDED.score, band = EXCLUDED.band",
                    &[&tenant, &r.group_id, &day, &r.score, &r.band],
                )?;
            }
            Ok(())
        })
    }

    fn account_health(
        &self,
        tenant: &str,
        band: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AccountHealthRow>> {
        let (limit, offset) = (i64::from(limit), i64::from(offset));
        self.tx(|g| {
            Ok(g.all(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR band = $2) ORDER BY score, arr DESC, group_id LIMIT $3 OFFSET $4",
                &[&tenant, &band, &limit, &offset],
            )?
            .iter()
            .map(pg_health_row)
            .collect())
        })
    }

    fn account_health_one(&self, tenant: &str, group_id: &str) -> Result<Option<AccountHealthRow>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group_id],
            )?
            .map(|r| pg_health_row(&r)))
        })
    }

    fn band_counts(&self, tenant: &str) -> Result<Vec<BandCount>> {
        self.tx(|g| {
            Ok(g.all("SELECT band, COUNT(*), COALESCE(SUM(arr), 0)::double precision FROM account_health WHERE tenant_id = $1 GROUP BY band ORDER BY band", &[&tenant])?
                .iter()
                .map(|r| BandCount { band: r.get(0), accounts: r.get(1), arr: r.get(2) })
                .collect())
        })
    }

    fn health_trend(
        &self,
        tenant: &str,
        group_id: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>> {
        let since = since.to_string();
        self.tx(|g| {
            Ok(g.all("SELECT day, score FROM health_history WHERE tenant_id = $1 AND group_id = $2 AND day >= $3 ORDER BY day", &[&tenant, &group_id, &since])?
                .iter()
                .filter_map(|r| Some((r.get::<_, &str>(0).parse().ok()?, r.get(1))))
                .collect())
        })
    }

    fn sync_alerts(
        &self,
        tenant: &str,
        open: &[NewAlert],
        clear: &[(String, String, String)],
        actor: &str,
    ) -> Result<(Vec<i64>, u64)> {
        let now = now_ms();
        self.tx(|g| {
            let mut ids = vec![];
            for a in open {
                let detail = a.detail.to_string();
                let id = with_public_id(g, "alerts", |g, id| {
                    g.exec(
                        "INSERT INTO alerts (id, tenant_id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner)
                         VALUES ($10, $1, $2, $3, $4, 'open', $5, $6, $7, $8, $8, 'cxm', $9) ON CONFLICT DO NOTHING",
                        &[&tenant, &a.group_id, &a.kind, &a.signal, &a.title, &detail, &a.arr, &now, &a.owner, &id],
                    )
                })?;
                ids.extend(id);
            }
            let mut resolved = 0;
            for (grp, k, s) in clear {
                resolved += g.exec(
                    "UPDATE alerts SET status = 'resolved', updated_at = $5, updated_by = $6 WHERE tenant_id = $1 AND group_id = $2 AND kind = $3 AND signal = $4 AND status <> 'resolved'",
                    &[&tenant, grp, k, s, &now, &actor],
                )?;
            }
            Ok((ids, resolved))
        })
    }

    fn list_alerts(&self, tenant: &str, status: Option<&str>, limit: u32) -> Result<Vec<Alert>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3",
                &[&tenant, &status, &limit],
            )?
            .iter()
            .map(pg_alert_row)
            .collect())
        })
    }

    fn alert(&self, tenant: &str, id: i64) -> Result<Option<Alert>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .map(|r| pg_alert_row(&r)))
        })
    }

    fn set_alert_status(&self, tenant: &str, id: i64, status: &str, actor: &str) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| Ok(g.exec("UPDATE alerts SET status = $3, updated_at = $4, updated_by = $5 WHERE tenant_id = $1 AND id = $2", &[&tenant, &id, &status, &now, &actor])? > 0))
    }

    fn account_traits(&self, tenant: &str, group_id: &str) -> Result<Option<Value>> {
        self.tx(|g| {
            g.opt(
                "SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = $2",
                &[&tenant, &group_id],
            )?
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(StoreError::from))
            .transpose()
        })
    }
}
