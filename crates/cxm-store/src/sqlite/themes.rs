//! The theme registry, assignments and their rollup.

use super::*;

impl ThemeStore for SqliteStore {
    fn load_themes(&self, tenant: &str) -> Result<ThemeState> {
        self.read(|c| {
            let mut state = c
                .query_row("SELECT version, vocabulary, noise_below, discovered_at FROM theme_models WHERE tenant_id = ?1", params![tenant], |r| {
                    Ok(ThemeState { version: r.get(0)?, vocabulary: r.get(1)?, noise_below: r.get(2)?, discovered_at_ms: r.get(3)?, themes: vec![] })
                })
                .optional()?
                .unwrap_or_default();
            let mut st = c.prepare_cached("SELECT doc FROM themes WHERE tenant_id = ?1 ORDER BY theme_id")?;
            state.themes = st.query_map(params![tenant], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(state)
        })
    }

    fn save_themes(&self, tenant: &str, save: &ThemeSave) -> Result<i64> {
        let now = now_ms();
        self.write(|tx| {
            if let Some((vocabulary, noise)) = &save.discovery {
                tx.execute(
                    "INSERT INTO theme_models (tenant_id, version, vocabulary, noise_below, discovered_at) VALUES (?1, 1, ?2, ?3, ?4)
                     ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1, vocabulary = excluded.vocabulary, noise_below = excluded.noise_below, discovered_at = excluded.discovered_at",
                    params![tenant, vocabulary, noise, now],
                )?;
            }
            let mut up = tx.prepare_cached("INSERT INTO themes (tenant_id, theme_id, doc, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, theme_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at")?;
            for (id, doc) in &save.themes {
                up.execute(params![tenant, id, doc, now])?;
            }
            if let Some(e) = &save.edit {
                tx.execute("INSERT INTO theme_edits (tenant_id, theme_id, kind, detail, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![tenant, e.theme_id, e.kind, e.detail, e.actor, now])?;
            }
            Ok(tx.query_row("SELECT version FROM theme_models WHERE tenant_id = ?1", params![tenant], |r| r.get(0)).optional()?.unwrap_or(0))
        })
    }

    fn assign_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant_id, feedback_id) DO UPDATE SET theme_id = excluded.theme_id",
            )?;
            for a in rows {
                st.execute(params![tenant, a.feedback_id, a.theme_id, a.day, a.response_id, a.sentiment, a.account])?;
            }
            Ok(())
        })
    }

    fn refresh_theme_rollup(&self, tenant: &str) -> Result<()> {
        self.write_derived(|tx| {
            tx.execute("DELETE FROM theme_rollup WHERE tenant_id = ?1", params![tenant])?;
            tx.execute(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n)
                 SELECT ?1, m.day, m.theme_id, COUNT(*),
                        COUNT(DISTINCT CASE WHEN n.score >= 9 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score BETWEEN 7 AND 8 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score <= 6 THEN m.response_id END),
                        COALESCE(SUM(m.sentiment), 0), COUNT(m.sentiment)
                 FROM feedback_themes m LEFT JOIN (SELECT response_id, MIN(score) AS score FROM feedback WHERE tenant_id = ?1 AND field_type = 'nps' GROUP BY response_id) n ON n.response_id = m.response_id
                 WHERE m.tenant_id = ?1 GROUP BY m.day, m.theme_id",
                params![tenant],
            )?;
            Ok(())
        })
    }

    fn place_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.write(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut seen = tx.prepare_cached("SELECT 1 FROM feedback_themes WHERE tenant_id = ?1 AND response_id = ?2 AND theme_id = ?3 AND feedback_id <> ?4 LIMIT 1")?;
            let mut nps = tx.prepare_cached("SELECT score FROM feedback WHERE tenant_id = ?1 AND response_id = ?2 AND +field_type = 'nps' LIMIT 1")?;
            let mut roll = tx.prepare_cached(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO UPDATE SET answers = answers + 1, promoters = promoters + excluded.promoters, passives = passives + excluded.passives,
                   detractors = detractors + excluded.detractors, sentiment_sum = sentiment_sum + excluded.sentiment_sum, sentiment_n = sentiment_n + excluded.sentiment_n",
            )?;
            for a in rows {
                if ins.execute(params![tenant, a.feedback_id, a.theme_id, a.day, a.response_id, a.sentiment, a.account])? == 0 {
                    continue;
                }
                let first = !seen.exists(params![tenant, a.response_id, a.theme_id, a.feedback_id])?;
                let score: Option<i64> = nps.query_row(params![tenant, a.response_id], |r| r.get(0)).optional()?;
                let [p, n, d] = nps_category(score.filter(|_| first));
                roll.execute(params![tenant, a.day, a.theme_id, p, n, d, a.sentiment.unwrap_or(0.0), i64::from(a.sentiment.is_some())])?;
            }
            Ok(())
        })
    }

    fn theme_watermark(&self, tenant: &str) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(feedback_id), 0) FROM feedback_themes WHERE tenant_id = ?1",
                params![tenant],
                |r| r.get(0),
            )?)
        })
    }

    fn text_answers_after(
        &self,
        tenant: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL, t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.id > ?2 AND t.field_type = 'text' ORDER BY t.id LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, after_id, limit], text_answer)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_members(
        &self,
        tenant: &str,
        theme_ids: &[String],
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL, t.collected_at, t.id, t.account
                 FROM feedback_themes m JOIN feedback t ON t.id = m.feedback_id WHERE m.tenant_id = ?1 AND m.theme_id = ?2 ORDER BY t.id LIMIT ?3",
            )?;
            let mut out = vec![];
            for id in theme_ids {
                for r in st.query_map(params![tenant, id, limit], text_answer)? {
                    out.push(r?);
                }
            }
            Ok(out)
        })
    }

    fn theme_days(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeDay>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT theme_id, day, answers, sentiment_sum, sentiment_n FROM theme_rollup
                 WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY theme_id, day",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| {
                    Ok(ThemeDay {
                        theme_id: r.get(0)?,
                        day: r.get(1)?,
                        answers: r.get::<_, i64>(2)? as u64,
                        sentiment_sum: r.get(3)?,
                        sentiment_n: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_nps(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeNps>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT theme_id, SUM(promoters), SUM(passives), SUM(detractors) FROM theme_rollup WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 GROUP BY theme_id ORDER BY theme_id",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| Ok((r.get::<_, String>(0)?, [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?])))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(nps_rows(rows))
        })
    }

    fn theme_accounts(
        &self,
        tenant: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ThemeAccount>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT m.theme_id, m.account, COALESCE(a.traits, '{}') FROM (SELECT DISTINCT theme_id, account FROM feedback_themes WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3 AND account IS NOT NULL) m
                 LEFT JOIN accounts a ON a.tenant_id = ?1 AND a.group_id = m.account",
            )?;
            let rows = st
                .query_map(params![tenant, from_day, to_day], |r| Ok(ThemeAccount { theme_id: r.get(0)?, account: r.get(1)?, traits: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn theme_edits(&self, tenant: &str, limit: u32) -> Result<Vec<ThemeEdit>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT theme_id, kind, detail, actor, created_at FROM theme_edits WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")?;
            let rows = st
                .query_map(params![tenant, limit], |r| Ok(ThemeEdit { theme_id: r.get(0)?, kind: r.get(1)?, detail: r.get(2)?, actor: r.get(3)?, created_at_ms: r.get(4)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn themed_tenants(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT tenant_id FROM theme_models ORDER BY tenant_id")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
    }
}
