//! The theme registry, assignments and their rollup.

use super::*;

impl ThemeStore for PgStore {
    fn load_themes(&self, tenant: &str) -> Result<ThemeState> {
        self.tx(|g| {
            let mut state = g
                .opt("SELECT version, vocabulary, noise_below, discovered_at FROM theme_models WHERE tenant_id = $1", &[&tenant])?
                .map(|r| ThemeState { version: r.get(0), vocabulary: r.get(1), noise_below: r.get(2), discovered_at_ms: r.get(3), themes: vec![] })
                .unwrap_or_default();
            state.themes = g.all("SELECT doc FROM themes WHERE tenant_id = $1 ORDER BY theme_id", &[&tenant])?.iter().map(|r| r.get(0)).collect();
            Ok(state)
        })
    }

    fn save_themes(&self, tenant: &str, save: &ThemeSave) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            if let Some((vocabulary, noise)) = &save.discovery {
                g.exec(
                    "INSERT INTO theme_models (tenant_id, version, vocabulary, noise_below, discovered_at) VALUES ($1, 1, $2, $3, $4)
                     ON CONFLICT (tenant_id) DO UPDATE SET version = theme_models.version + 1, vocabulary = excluded.vocabulary, noise_below = excluded.noise_below, discovered_at = excluded.discovered_at",
                    &[&tenant, vocabulary, noise, &now],
                )?;
            }
            for (id, doc) in &save.themes {
                g.exec(
                    "INSERT INTO themes (tenant_id, theme_id, doc, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, theme_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                    &[&tenant, id, doc, &now],
                )?;
            }
            if let Some(e) = &save.edit {
                g.exec("INSERT INTO theme_edits (tenant_id, theme_id, kind, detail, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)", &[&tenant, &e.theme_id, &e.kind, &e.detail, &e.actor, &now])?;
            }
            Ok(g.opt("SELECT version FROM theme_models WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0))
        })
    }

    fn assign_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|a| a.feedback_id).collect();
        let themes: Vec<&str> = rows.iter().map(|a| a.theme_id.as_str()).collect();
        let days: Vec<&str> = rows.iter().map(|a| a.day.as_str()).collect();
        let responses: Vec<&str> = rows.iter().map(|a| a.response_id.as_str()).collect();
        let sentiments: Vec<Option<f64>> = rows.iter().map(|a| a.sentiment).collect();
        let accounts: Vec<Option<&str>> = rows.iter().map(|a| a.account.as_deref()).collect();
        self.tx(|g| {
            // one statement for the whole batch: a re-discovery reassigns thousands at once
            g.exec(
                "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account)
                 SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[])
                 ON CONFLICT (tenant_id, feedback_id) DO UPDATE SET theme_id = excluded.theme_id",
                &[&tenant, &ids, &themes, &days, &responses, &sentiments, &accounts],
            )?;
            Ok(())
        })
    }

    fn refresh_theme_rollup(&self, tenant: &str) -> Result<()> {
        self.tx(|g| {
            g.exec("DELETE FROM theme_rollup WHERE tenant_id = $1", &[&tenant])?;
            g.exec(
                "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n)
                 SELECT $1, m.day, m.theme_id, COUNT(*),
                        COUNT(DISTINCT CASE WHEN n.score >= 9 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score BETWEEN 7 AND 8 THEN m.response_id END),
                        COUNT(DISTINCT CASE WHEN n.score <= 6 THEN m.response_id END),
                        COALESCE(SUM(m.sentiment), 0), COUNT(m.sentiment)
                 FROM feedback_themes m LEFT JOIN (SELECT response_id, MIN(score) AS score FROM feedback WHERE tenant_id = $1 AND field_type = 'nps' GROUP BY response_id) n ON n.response_id = m.response_id
                 WHERE m.tenant_id = $1 GROUP BY m.day, m.theme_id",
                &[&tenant],
            )?;
            Ok(())
        })
    }

    fn place_themes(&self, tenant: &str, rows: &[ThemeAssignment]) -> Result<()> {
        self.tx(|g| {
            for a in rows {
                let inserted = g.exec(
                    "INSERT INTO feedback_themes (tenant_id, feedback_id, theme_id, day, response_id, sentiment, account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[&tenant, &a.feedback_id, &a.theme_id, &a.day, &a.response_id, &a.sentiment, &a.account],
                )?;
                if inserted == 0 {
                    continue;
                }
                let first = g
                    .opt("SELECT 1 FROM feedback_themes WHERE tenant_id = $1 AND response_id = $2 AND theme_id = $3 AND feedback_id <> $4 LIMIT 1", &[&tenant, &a.response_id, &a.theme_id, &a.feedback_id])?
                    .is_none();
                let score: Option<i64> = g
                    .opt("SELECT score FROM feedback WHERE tenant_id = $1 AND response_id = $2 AND field_type = 'nps' LIMIT 1", &[&tenant, &a.response_id])?
                    .and_then(|r| r.get::<_, Option<i64>>(0));
                let [p, n, d] = nps_category(score.filter(|_| first));
                g.exec(
                    "INSERT INTO theme_rollup (tenant_id, day, theme_id, answers, promoters, passives, detractors, sentiment_sum, sentiment_n) VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant_id, day, theme_id) DO UPDATE SET answers = theme_rollup.answers + 1, promoters = theme_rollup.promoters + excluded.promoters,
                       passives = theme_rollup.passives + excluded.passives, detractors = theme_rollup.detractors + excluded.detractors,
                       sentiment_sum = theme_rollup.sentiment_sum + excluded.sentiment_sum, sentiment_n = theme_rollup.sentiment_n + excluded.sentiment_n",
                    &[&tenant, &a.day, &a.theme_id, &p, &n, &d, &a.sentiment.unwrap_or(0.0), &i64::from(a.sentiment.is_some())],
                )?;
            }
            Ok(())
        })
    }

    fn theme_watermark(&self, tenant: &str) -> Result<i64> {
        self.tx(|g| Ok(g.opt("SELECT COALESCE(MAX(feedback_id), 0)::bigint FROM feedback_themes WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0)))
    }

    fn text_answers_after(
        &self,
        tenant: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT t.response_id, t.text_value, t.sentiment, NULL::bigint, t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = $1 AND t.id > $2 AND t.field_type = 'text' ORDER BY t.id LIMIT $3",
                &[&tenant, &after_id, &limit],
            )?
            .iter()
            .map(text_answer)
            .collect())
        })
    }

    fn theme_members(
        &self,
        tenant: &str,
        theme_ids: &[String],
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            let mut out = vec![];
            for id in theme_ids {
                let rows = g.all(
                    "SELECT t.response_id, t.text_value, t.sentiment, NULL::bigint, t.collected_at, t.id, t.account
                     FROM feedback_themes m JOIN feedback t ON t.id = m.feedback_id WHERE m.tenant_id = $1 AND m.theme_id = $2 ORDER BY t.id LIMIT $3",
                    &[&tenant, id, &limit],
                )?;
                out.extend(rows.iter().map(text_answer));
            }
            Ok(out)
        })
    }

    fn theme_days(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeDay>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT theme_id, day, answers, sentiment_sum, sentiment_n FROM theme_rollup
                 WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY theme_id, day",
                &[&tenant, &from_day, &to_day],
            )?
            .iter()
            .map(|r| ThemeDay {
                theme_id: r.get(0),
                day: r.get(1),
                answers: r.get::<_, i64>(2) as u64,
                sentiment_sum: r.get(3),
                sentiment_n: r.get::<_, i64>(4) as u64,
            })
            .collect())
        })
    }

    fn theme_nps(&self, tenant: &str, from_day: &str, to_day: &str) -> Result<Vec<ThemeNps>> {
        self.tx(|g| {
            let rows = g
                .all(
                    "SELECT theme_id, SUM(promoters)::bigint, SUM(passives)::bigint, SUM(detractors)::bigint FROM theme_rollup WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY theme_id ORDER BY theme_id",
                    &[&tenant, &from_day, &to_day],
                )?
                .iter()
                .map(|r| (r.get::<_, String>(0), [r.get::<_, i64>(1), r.get(2), r.get(3)]))
                .collect();
            Ok(nps_rows(rows))
        })
    }

    fn theme_accounts(
        &self,
        tenant: &str,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<ThemeAccount>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT m.theme_id, m.account, COALESCE(a.traits, '{}') FROM (SELECT DISTINCT theme_id, account FROM feedback_themes WHERE tenant_id = $1 AND day >= $2 AND day <= $3 AND account IS NOT NULL) m
                 LEFT JOIN accounts a ON a.tenant_id = $1 AND a.group_id = m.account",
                &[&tenant, &from_day, &to_day],
            )?
            .iter()
            .map(|r| ThemeAccount { theme_id: r.get(0), account: r.get(1), traits: r.get(2) })
            .collect())
        })
    }

    fn theme_edits(&self, tenant: &str, limit: u32) -> Result<Vec<ThemeEdit>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT theme_id, kind, detail, actor, created_at FROM theme_edits WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", &[&tenant, &limit])?
                .iter()
                .map(|r| ThemeEdit { theme_id: r.get(0), kind: r.get(1), detail: r.get(2), actor: r.get(3), created_at_ms: r.get(4) })
                .collect())
        })
    }

    fn themed_tenants(&self) -> Result<Vec<String>> {
        self.tx(|g| {
            Ok(
                g.all("SELECT tenant_id FROM theme_models ORDER BY tenant_id", &[])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }
}
