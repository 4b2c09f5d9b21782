//! Answers and their rollups.

use super::*;

impl FeedbackStore for SqliteStore {
    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome> {
        self.write(|tx| {
            let mut out = FeedbackOutcome::default();
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO feedback (tenant_id, idempotency_key, response_id, question, field_type, score, text_value, channel, survey_id, survey_version, journey, stage, agent, identifier, account, collected_at, sentiment, cues, created_at, profile_id, tier)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )?;
            let mut profile_of = tx.prepare_cached("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3")?;
            let mut account_of = tx.prepare_cached("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id LIMIT 1")?;
            let mut traits_of = tx.prepare_cached("SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2")?;
            let mut roll = tx.prepare_cached(
                "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
                 ON CONFLICT DO UPDATE SET answers = answers + 1",
            )?;
            let now = now_ms();
            for r in rows {
                let a = &r.answer;
                let (survey, journey, stage, agent) = (a.survey_id.as_deref().unwrap_or(""), a.journey.as_deref().unwrap_or(""), a.stage.as_deref().unwrap_or(""), a.agent.as_deref().unwrap_or(""));
                // link the answer to its customer and account through the identity graph
                let profile: Option<String> = match a.identifier.as_deref().and_then(Identifier::parse_typed) {
                    Some(id) => profile_of.query_row(params![tenant, id.kind_str(), id.value], |r| r.get(0)).optional()?,
                    None => None,
                };
                let account: Option<String> = match (&a.account, &profile) {
                    (Some(acc), _) => Some(acc.clone()),
                    (None, Some(p)) => account_of.query_row(params![tenant, p], |r| r.get(0)).optional()?,
                    _ => None,
                };
                let tier = match &account {
                    Some(acc) => traits_of
                        .query_row(params![tenant, acc], |r| r.get::<_, String>(0))
                        .optional()?
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|t| tier_of(&t))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let n = ins.execute(params![
                    tenant, a.idempotency_key, a.response_id, a.question, a.field_type.as_str(), a.score, a.text, a.channel.as_str(), survey, a.survey_version,
                    journey, stage, agent, a.identifier, account, a.collected_at.timestamp_millis(), r.sentiment, r.cues, now, profile, tier
                ])?;
                if n == 0 {
                    out.duplicates += 1;
                    continue;
                }
                out.accepted += 1;
                if let Some(score) = a.score {
                    let day = a.collected_at.format("%Y-%m-%d").to_string();
                    for (dim, value) in [("", ""), ("channel", a.channel.as_str()), ("survey", survey), ("journey", journey), ("stage", stage), ("agent", agent), ("tier", tier.as_str())] {
                        if dim.is_empty() || !value.is_empty() {
                            roll.execute(params![tenant, a.field_type.as_str(), dim, day, value, score])?;
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    fn feedback_histogram(
        &self,
        tenant: &str,
        field_type: &str,
        from_day: &str,
        to_day: &str,
        by: Option<Slice>,
    ) -> Result<Vec<HistogramRow>> {
        let dim = by.map(Slice::dim).unwrap_or("");
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT day, dim_value, score, answers FROM feedback_rollup WHERE tenant_id = ?1 AND field_type = ?2 AND dim = ?3 AND day >= ?4 AND day <= ?5 ORDER BY day, dim_value, score",
            )?;
            let rows = st
                .query_map(params![tenant, field_type, dim, from_day, to_day], |r| Ok(HistogramRow { day: r.get(0)?, group: r.get(1)?, score: r.get(2)?, answers: r.get::<_, i64>(3)? as u64 }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        // `+n.field_type`: find the response's NPS by (tenant, response), never by scanning
        // every NPS answer of the tenant
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND +n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.field_type = 'text' AND t.collected_at >= ?2 AND t.collected_at < ?3 ORDER BY t.collected_at DESC LIMIT ?4",
            )?;
            let rows = st.query_map(params![tenant, from_ms, to_ms, limit], text_answer)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT field_type, score, sentiment, cues, collected_at FROM feedback WHERE tenant_id = ?1 AND profile_id = ?2 AND collected_at >= ?3 ORDER BY collected_at DESC LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![tenant, profile_id, since_ms, limit], |r| {
                    let cues: Option<String> = r.get(3)?;
                    Ok(RecentAnswer { field_type: r.get(0)?, score: r.get(1)?, sentiment: r.get(2)?, cues: cues.and_then(|c| serde_json::from_str(&c).ok()), at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT response_id, score FROM feedback WHERE tenant_id = ?1 AND field_type = 'nps' AND collected_at >= ?2 AND collected_at < ?3")?;
            let rows = st.query_map(params![tenant, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
