//! Per-account daily facts, signal sets, scores and alerts.

use super::*;

impl HealthStore for SqliteStore {
    fn health_cursor(&self, tenant: &str) -> Result<HealthCursor> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = ?1",
                [tenant],
                |r| {
                    Ok(HealthCursor {
                        event_seq: r.get(0)?,
                        feedback_id: r.get(1)?,
                    })
                },
            )
            .optional()?
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, group_id, user_id, anonymous_id, name, category, ts FROM events
                 WHERE seq > ?1 AND seq <= ?2 AND tenant_id = ?3 ORDER BY seq LIMIT ?4",
            )?;
            type Raw = (i64, Option<String>, Option<String>, Option<String>, Option<String>, String, i64);
            let rows: Vec<Raw> = st
                .query_map(params![after, upto, tenant, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            // events without a groupId belong to the account of the customer who sent them
            let mut profile = c.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut account = c.prepare_cached("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id LIMIT 1")?;
            let mut seen: std::collections::HashMap<(bool, String), Option<String>> = std::collections::HashMap::new();
            let mut out = Vec::with_capacity(rows.len());
            for (seq, group, user, anon, name, category, ts) in rows {
                let mut acct = group;
                for (is_user, id) in [(true, user), (false, anon)] {
                    let Some(id) = id else { continue };
                    if acct.is_some() {
                        break;
                    }
                    let key = (is_user, id);
                    if let Some(a) = seen.get(&key) {
                        acct = a.clone();
                        continue;
                    }
                    let kind = if is_user { "user_id" } else { "anonymous_id" };
                    let p: Option<String> = profile.query_row(params![tenant, kind, key.1], |r| r.get(0)).optional()?;
                    let a = match p {
                        Some(p) => account.query_row(params![tenant, p], |r| r.get(0)).optional()?,
                        None => None,
                    };
                    seen.insert(key, a.clone());
                    acct = a;
                }
                out.push(HealthEventRow { seq, account: acct, name, category, ts_ms: ts });
            }
            Ok(out)
        })
    }

    fn account_answers(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<AccountAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, account, field_type, score, collected_at FROM feedback
                 WHERE tenant_id = ?1 AND id > ?2 AND field_type IN ('nps', 'csat') ORDER BY id LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![tenant, after, limit], |r| {
                    Ok(AccountAnswer { id: r.get(0)?, account: r.get(1)?, field_type: r.get(2)?, score: r.get::<_, Option<i64>>(3)?.map(|s| s as f64), collected_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn add_account_days(
        &self,
        tenant: &str,
        from: HealthCursor,
        to: HealthCursor,
        days: &[(String, cxm_domain::health::AccountDay)],
    ) -> Result<bool> {
        self.write_derived(|tx| {
            let cur = tx
                .query_row("SELECT event_seq, feedback_id FROM health_cursors WHERE tenant_id = ?1", [tenant], |r| Ok(HealthCursor { event_seq: r.get(0)?, feedback_id: r.get(1)? }))
                .optional()?
                .unwrap_or_default();
            if cur != from {
                return Ok(false);
            }
            {
                let mut add = tx.prepare_cached(
                    "INSERT INTO account_daily (tenant_id, group_id, day, active, tickets, payment_failed, usage, churned, low_scores) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant_id, group_id, day) DO UPDATE SET active = active + excluded.active, tickets = tickets + excluded.tickets,
                       payment_failed = payment_failed + excluded.payment_failed, usage = usage + excluded.usage, churned = churned + excluded.churned, low_scores = low_scores + excluded.low_scores",
                )?;
                for (g, d) in days {
                    add.execute(params![tenant, g, d.day.to_string(), d.active, d.tickets, d.payment_failed, d.usage, d.churned, d.low_scores])?;
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO health_cursors (tenant_id, event_seq, feedback_id, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, to.event_seq, to.feedback_id, now_ms()],
            )?;
            Ok(true)
        })
    }

    fn accounts_for_health(
        &self,
        tenant: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<AccountRecord>> {
        self.read(|c| {
            let mut out: std::collections::BTreeMap<String, AccountRecord> = std::collections::BTreeMap::new();
            let mut st = c.prepare_cached("SELECT group_id, traits FROM accounts WHERE tenant_id = ?1")?;
            let rows = st.query_map([tenant], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            for (g, traits) in rows {
                out.insert(g.clone(), account_record(g, &traits));
            }
            let mut st = c.prepare_cached(
                "SELECT group_id, day, active, tickets, payment_failed, usage, churned, low_scores FROM account_daily
                 WHERE tenant_id = ?1 AND day >= ?2 ORDER BY group_id, day",
            )?;
            let rows = st
                .query_map(params![tenant, since.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, [r.get::<_, u32>(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?]))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (g, day, n) in rows {
                let Ok(day) = day.parse() else { continue };
                out.entry(g.clone()).or_insert_with(|| account_record(g, "{}")).days.push(account_day(day, n));
            }
            Ok(out.into_values().collect())
        })
    }

    fn save_signal_set(&self, tenant: &str, definition: &str, actor: &str) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM signal_sets WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            tx.execute("INSERT INTO signal_sets (tenant_id, version, definition, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", params![tenant, v, definition, actor, now_ms()])?;
            Ok(v)
        })
    }

    fn signal_set(&self, tenant: &str) -> Result<Option<(i64, String)>> {
        self.read(|c| Ok(c.query_row("SELECT version, definition FROM signal_sets WHERE tenant_id = ?1 ORDER BY version DESC LIMIT 1", [tenant], |r| Ok((r.get(0)?, r.get(1)?))).optional()?))
    }

    fn save_account_health(
        &self,
        tenant: &str,
        rows: &[AccountHealthRow],
        day: chrono::NaiveDate,
    ) -> Result<()> {
        let day = day.to_string();
        self.write_derived(|tx| {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO account_health (tenant_id, group_id, name, score, band, readings, arr, computed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut hist = tx.prepare_cached("INSERT OR REPLACE INTO health_history (tenant_id, group_id, day, score, band) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for r in rows {
                put.execute(params![tenant, r.group_id, r.name, r.score, r.band, r.readings.to_string(), r.arr, r.computed_at_ms])?;
                hist.execute(params![tenant, r.group_id, day, r.score, r.band])?;
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR band = ?2) ORDER BY score, arr DESC, group_id LIMIT ?3 OFFSET ?4",
            )?;
            let rows = st.query_map(params![tenant, band, limit, offset], health_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn account_health_one(&self, tenant: &str, group_id: &str) -> Result<Option<AccountHealthRow>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT group_id, name, score, band, readings, arr, computed_at FROM account_health WHERE tenant_id = ?1 AND group_id = ?2",
                params![tenant, group_id],
                health_row,
            )
            .optional()?)
        })
    }

    fn band_counts(&self, tenant: &str) -> Result<Vec<BandCount>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT band, COUNT(*), COALESCE(SUM(arr), 0) FROM account_health WHERE tenant_id = ?1 GROUP BY band ORDER BY band")?;
            let rows = st.query_map([tenant], |r| Ok(BandCount { band: r.get(0)?, accounts: r.get(1)?, arr: r.get(2)? }))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn health_trend(
        &self,
        tenant: &str,
        group_id: &str,
        since: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT day, score FROM health_history WHERE tenant_id = ?1 AND group_id = ?2 AND day >= ?3 ORDER BY day")?;
            let rows = st
                .query_map(params![tenant, group_id, since.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows.into_iter().filter_map(|(d, s)| Some((d.parse().ok()?, s))).collect())
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
        self.write(|tx| {
            let mut ids = vec![];
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (id, tenant_id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner)
                 VALUES (?10, ?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?8, 'cxm', ?9)",
            )?;
            for a in open {
                let id = with_public_id(tx, "alerts", |id| {
                    Ok(ins.execute(params![tenant, a.group_id, a.kind, a.signal, a.title, a.detail.to_string(), a.arr, now, a.owner, id])?)
                })?;
                ids.extend(id);
            }
            let mut res = tx.prepare_cached(
                "UPDATE alerts SET status = 'resolved', updated_at = ?5, updated_by = ?6 WHERE tenant_id = ?1 AND group_id = ?2 AND kind = ?3 AND signal = ?4 AND status <> 'resolved'",
            )?;
            let mut resolved = 0;
            for (g, k, s) in clear {
                resolved += res.execute(params![tenant, g, k, s, now, actor])? as u64;
            }
            Ok((ids, resolved))
        })
    }

    fn list_alerts(&self, tenant: &str, status: Option<&str>, limit: u32) -> Result<Vec<Alert>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, status, limit], alert_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn alert(&self, tenant: &str, id: i64) -> Result<Option<Alert>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, group_id, kind, signal, status, title, detail, arr, created_at, updated_at, updated_by, owner FROM alerts WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id],
                alert_row,
            )
            .optional()?)
        })
    }

    fn set_alert_status(&self, tenant: &str, id: i64, status: &str, actor: &str) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE alerts SET status = ?3, updated_at = ?4, updated_by = ?5 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant, id, status, now_ms(), actor],
            )? > 0)
        })
    }

    fn account_traits(&self, tenant: &str, group_id: &str) -> Result<Option<Value>> {
        self.read(|c| {
            let t: Option<String> = c
                .query_row(
                    "SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2",
                    params![tenant, group_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(t.map(|t| serde_json::from_str(&t)).transpose()?)
        })
    }
}
