//! Answers and their rollups: one SQL for both backends, over [`SqlBackend`].

use crate::sql::{all, Dialect, Row, SqlBackend};
use crate::{
    now_ms, tier_of, AnswerQuery, FeedbackOutcome, FeedbackRow, FeedbackStore, HistogramRow,
    ListedAnswer, ProfileAnswer, RecentAnswer, Result, Slice, TextAnswer,
};
use cxm_domain::Identifier;
use serde_json::Value;

pub(crate) fn text_answer(r: &Row) -> Result<TextAnswer> {
    Ok(TextAnswer {
        response_id: r.text(0)?,
        text: r.text(1)?,
        sentiment: r.opt_real(2)?,
        nps: r.opt_int(3)?,
        collected_at_ms: r.int(4)?,
        id: r.int(5)?,
        account: r.opt_text(6)?,
    })
}

fn recent_answer(r: &Row) -> Result<RecentAnswer> {
    Ok(RecentAnswer {
        field_type: r.text(0)?,
        score: r.opt_int(1)?,
        sentiment: r.opt_real(2)?,
        cues: r.opt_text(3)?.and_then(|c| serde_json::from_str(&c).ok()),
        at_ms: r.int(4)?,
    })
}

fn profile_answer(r: &Row) -> Result<ProfileAnswer> {
    Ok(ProfileAnswer {
        response_id: r.text(0)?,
        question: r.text(1)?,
        field_type: r.text(2)?,
        score: r.opt_int(3)?,
        text: r.opt_text(4)?,
        survey_id: r.text(5)?,
        channel: r.text(6)?,
        sentiment: r.opt_real(7)?,
        at_ms: r.int(8)?,
    })
}

fn listed_answer(r: &Row) -> Result<ListedAnswer> {
    Ok(ListedAnswer {
        id: r.int(0)?,
        response_id: r.text(1)?,
        question: r.text(2)?,
        field_type: r.text(3)?,
        score: r.opt_int(4)?,
        text: r.opt_text(5)?,
        survey_id: r.text(6)?,
        channel: r.text(7)?,
        sentiment: r.opt_real(8)?,
        at_ms: r.int(9)?,
        profile_id: r.opt_text(10)?,
        account: r.opt_text(11)?,
    })
}

/// `%text%` for LIKE with the pattern characters in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl<B: SqlBackend> FeedbackStore for B {
    fn list_answers(&self, tenant: &str, q: &AnswerQuery) -> Result<Vec<ListedAnswer>> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let (field_type, survey, channel) =
            (opt(&q.field_type), opt(&q.survey_id), opt(&q.channel));
        let text = q.text.as_deref().map(contains_pattern).unwrap_or_default();
        self.read_sql(|db| {
            // an empty parameter is no filter, so one statement serves every combination
            all(
                db,
                "SELECT id, response_id, question, field_type, score, text_value, survey_id, channel, sentiment, collected_at, profile_id, account FROM feedback
                 WHERE tenant_id = ?1 AND collected_at >= ?2 AND collected_at < ?3
                   AND (?4 = '' OR field_type = ?4) AND (?5 = '' OR survey_id = ?5) AND (?6 = '' OR channel = ?6)
                   AND (?7 = '' OR LOWER(text_value) LIKE ?7 ESCAPE '\\') AND id < ?8
                 ORDER BY id DESC LIMIT ?9",
                &[
                    tenant.into(),
                    q.from_ms.into(),
                    q.to_ms.into(),
                    (&field_type).into(),
                    (&survey).into(),
                    (&channel).into(),
                    (&text).into(),
                    q.before_id.unwrap_or(i64::MAX).into(),
                    i64::from(q.limit).into(),
                ],
                listed_answer,
            )
        })
    }

    fn profile_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        limit: u32,
    ) -> Result<Vec<ProfileAnswer>> {
        self.read_sql(|db| {
            all(
                db,
                "SELECT response_id, question, field_type, score, text_value, survey_id, channel, sentiment, collected_at FROM feedback
                 WHERE tenant_id = ?1 AND profile_id IN (SELECT id FROM profiles WHERE tenant_id = ?1 AND (id = ?2 OR merged_into = ?2))
                 ORDER BY collected_at DESC, id DESC LIMIT ?3",
                &[tenant.into(), profile_id.into(), i64::from(limit).into()],
                profile_answer,
            )
        })
    }

    fn insert_feedback(&self, tenant: &str, rows: &[FeedbackRow]) -> Result<FeedbackOutcome> {
        self.write_sql(|db| {
            let mut out = FeedbackOutcome::default();
            let now = now_ms();
            for r in rows {
                let a = &r.answer;
                let (survey, journey, stage, agent) = (a.survey_id.as_deref().unwrap_or(""), a.journey.as_deref().unwrap_or(""), a.stage.as_deref().unwrap_or(""), a.agent.as_deref().unwrap_or(""));
                // link the answer to its customer and account through the identity graph
                let profile: Option<String> = match a.identifier.as_deref().and_then(Identifier::parse_typed) {
                    Some(id) => db
                        .row("SELECT profile_id FROM identifiers WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3", &[tenant.into(), (&id.kind_str()).into(), (&id.value).into()])?
                        .map(|r| r.text(0))
                        .transpose()?,
                    None => None,
                };
                let account: Option<String> = match (&a.account, &profile) {
                    (Some(acc), _) => Some(acc.clone()),
                    (None, Some(p)) => db
                        .row("SELECT group_id FROM profile_accounts WHERE tenant_id = ?1 AND profile_id = ?2 ORDER BY group_id LIMIT 1", &[tenant.into(), p.into()])?
                        .map(|r| r.text(0))
                        .transpose()?,
                    _ => None,
                };
                let tier = match &account {
                    Some(acc) => db
                        .row("SELECT traits FROM accounts WHERE tenant_id = ?1 AND group_id = ?2", &[tenant.into(), acc.into()])?
                        .map(|r| r.text(0))
                        .transpose()?
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|t| tier_of(&t))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let n = db.exec(
                    "INSERT INTO feedback (tenant_id, idempotency_key, response_id, question, field_type, score, text_value, channel, survey_id, survey_version, journey, stage, agent, identifier, account, collected_at, sentiment, cues, created_at, profile_id, tier)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) ON CONFLICT DO NOTHING",
                    &[
                        tenant.into(), (&a.idempotency_key).into(), (&a.response_id).into(), (&a.question).into(), a.field_type.as_str().into(), a.score.into(), (&a.text).into(),
                        a.channel.as_str().into(), survey.into(), a.survey_version.into(), journey.into(), stage.into(), agent.into(), (&a.identifier).into(), (&account).into(),
                        a.collected_at.timestamp_millis().into(), r.sentiment.into(), (&r.cues).into(), now.into(), (&profile).into(), (&tier).into(),
                    ],
                )?;
                if n == 0 {
                    out.duplicates += 1;
                    continue;
                }
                out.accepted += 1;
                if let Some(score) = a.score {
                    let day = a.collected_at.format("%Y-%m-%d").to_string();
                    for (dim, value) in [("", ""), ("channel", a.channel.as_str()), ("survey", survey), ("journey", journey), ("stage", stage), ("agent", agent), ("tier", tier.as_str())] {
                        if dim.is_empty() || !value.is_empty() {
                            db.exec(
                                "INSERT INTO feedback_rollup (tenant_id, field_type, dim, day, dim_value, score, answers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
                                 ON CONFLICT (tenant_id, field_type, dim, day, dim_value, score) DO UPDATE SET answers = feedback_rollup.answers + 1",
                                &[tenant.into(), a.field_type.as_str().into(), dim.into(), (&day).into(), value.into(), score.into()],
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
        self.read_sql(|db| {
            all(
                db,
                "SELECT day, dim_value, score, answers FROM feedback_rollup WHERE tenant_id = ?1 AND field_type = ?2 AND dim = ?3 AND day >= ?4 AND day <= ?5 ORDER BY day, dim_value, score",
                &[tenant.into(), field_type.into(), dim.into(), from_day.into(), to_day.into()],
                |r| Ok(HistogramRow { day: r.text(0)?, group: r.text(1)?, score: r.int(2)?, answers: r.int(3)? as u64 }),
            )
        })
    }

    fn text_answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<TextAnswer>> {
        self.read_sql(|db| {
            let sql = match db.dialect() {
                // `+n.field_type`: find the response's NPS by (tenant, response), never by
                // scanning every NPS answer of the tenant
                Dialect::Sqlite => "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND +n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.field_type = 'text' AND t.collected_at >= ?2 AND t.collected_at < ?3 ORDER BY t.collected_at DESC LIMIT ?4",
                Dialect::Postgres => "SELECT t.response_id, t.text_value, t.sentiment, (SELECT n.score FROM feedback n WHERE n.tenant_id = t.tenant_id AND n.response_id = t.response_id AND n.field_type = 'nps' LIMIT 1), t.collected_at, t.id, t.account
                 FROM feedback t WHERE t.tenant_id = ?1 AND t.field_type = 'text' AND t.collected_at >= ?2 AND t.collected_at < ?3 ORDER BY t.collected_at DESC LIMIT ?4",
            };
            all(db, sql, &[tenant.into(), from_ms.into(), to_ms.into(), i64::from(limit).into()], text_answer)
        })
    }

    fn recent_answers(
        &self,
        tenant: &str,
        profile_id: &str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecentAnswer>> {
        self.read_sql(|db| {
            all(
                db,
                "SELECT field_type, score, sentiment, cues, collected_at FROM feedback WHERE tenant_id = ?1 AND profile_id = ?2 AND collected_at >= ?3 ORDER BY collected_at DESC LIMIT ?4",
                &[tenant.into(), profile_id.into(), since_ms.into(), i64::from(limit).into()],
                recent_answer,
            )
        })
    }

    fn nps_answers(&self, tenant: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(String, i64)>> {
        self.read_sql(|db| {
            all(
                db,
                "SELECT response_id, score FROM feedback WHERE tenant_id = ?1 AND field_type = 'nps' AND collected_at >= ?2 AND collected_at < ?3",
                &[tenant.into(), from_ms.into(), to_ms.into()],
                |r| Ok((r.text(0)?, r.int(1)?)),
            )
        })
    }
}
