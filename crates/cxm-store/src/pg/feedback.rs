//! Answers and their rollups.

use super::*;

impl FeedbackStore for PgStore {
    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome> {
        self.tx(|g| {
            let mut out = FeedbackOutcome::default();
            let now = now_ms();
            for r in rows {
                let a = &r.answer;
                let (survey, journey, stage, agent) = (a.survey_id.as_deref().unwrap_or(""), a.journey.as_deref().unwrap_or(""), a.stage.as_deref().unwrap_or(""), a.agent.as_deref().unwrap_or(""));
                // link the answer to its customer and account through the identity graph
                let profile: Option<String> = match a.identifier.as_deref().and_then(Identifier::parse_typed) {
                    Some(id) => g.opt("SELECT profile_id FROM identifiers WHERE tenant_id = $1 AND kind = $2 AND value = $3", &[&tenant, &id.kind_str(), &id.value])?.map(|r| r.get(0)),
                    None => None,
                };
                let account: Option<String> = match (&a.account, &profile) {
                    (Some(acc), _) => Some(acc.clone()),
                    (None, Some(p)) => g.opt("SELECT group_id FROM profile_accounts WHERE tenant_id = $1 AND profile_id = $2 ORDER BY group_id LIMIT 1", &[&tenant, p])?.map(|r| r.get(0)),
                    _ => None,
                };
                let tier = match &account {
                    Some(acc) => g
                        .opt("SELECT traits FROM accounts WHERE tenant_id = $1 AND group_id = $2", &[&tenant, acc])?
                        .and_then(|r| serde_json::from_str::<Value>(r.get::<_, &str>(0)).ok())
                        .and_then(|t| tier_of(&t))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let inserted = g.opt(
                    "INSERT INTO feedback (tenant_id, idempotency_key, response_id, question, field_type, score, text_value, channel, survey_id, survey_version, journey, stage, agent, identifier, account, collected_at, sentiment, cues, created_at, profile_id, tier)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT DO NOTHING RETURNING id",
                    &[&tenant, &a.idempotency_key, &a.response_id, &a.question, &a.field_type.as_str(), &a.score, &a.text, &a.channel.as_str(), &survey, &a.survey_version,
                      &journey, &stage, &agent, &a.identifier, &account, &a.collected_at.timestamp_millis(), &r.sentiment, &r.cues, &now, &profile, &tier],
                )?;
                if inserted.is_none() {
                    out.duplicates += 1;
                    continue;
                }
                out.accepted += 1;
                if let Some(score) = a.score {
                    let day = a.collected_at.format("%Y-%m-%d").to_string();
                    for (dim, value) in [("", ""), ("channel", a.channel.as_str()), ("survey", survey), ("journey", journey), ("stage", stage), ("agent", agent), ("tier", tier.as_str())] {
                        if dim.is_empty() || !value.is_empty() {
                            g.exec(
                                "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers) VALUES ($1, $2, $3, $4, $5, $6, 1)
                                 ON CONFLICT (tenant_id, field_type, dim, day, dim_value, score) DO UPDATE SET answers = feedback_rollup.answers + 1",
                                &[&tenant, &a.field_type.as_str(), &dim, &day, &value, &score],
                            )?;
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
        self.tx(|g| {
            Ok(g.all(
                "SELECT day, dim_value, score, answers FROM feedback_rollup WHERE tenant_id = $1 AND field_type = $2 AND dim = $3 AND day >= $4 AND day <= $5 ORDER BY day, dim_value, score",
                &[&tenant, &field_type, &dim, &from_day, &to_day],
            )?
            .iter()
            .map(|r| HistogramRow { day: r.get(0), group: r.get(1), score: r.get(2), answers: r.get::<_, i64>(3) as u64 })
            .collect())
        })
    }

    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = $1 AND t.field_type = 'text' AND t.collected_at >= $2 AND t.collected_at < $3 ORDER BY t.collected_at DESC LIMIT $4",
                &[&tenant, &from_ms, &to_ms, &limit],
            )?
            .iter()
            .map(text_answer)
            .collect())
        })
    }

    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT field_type, score, sentiment, cues, collected_at FROM feedback WHERE tenant_id = $1 AND profile_id = $2 AND collected_at >= $3 ORDER BY collected_at DESC LIMIT $4",
                &[&tenant, &profile_id, &since_ms, &limit],
            )?
            .iter()
            .map(|r| RecentAnswer {
                field_type: r.get(0),
                score: r.get(1),
                sentiment: r.get(2),
                cues: r.get::<_, Option<String>>(3).and_then(|c| serde_json::from_str(&c).ok()),
                at_ms: r.get(4),
            })
            .collect())
        })
    }

    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>> {
        self.tx(|g| {
            Ok(g.all("SELECT response_id, score FROM feedback WHERE tenant_id = $1 AND field_type = 'nps' AND collected_at >= $2 AND collected_at < $3", &[&tenant, &from_ms, &to_ms])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }
}
