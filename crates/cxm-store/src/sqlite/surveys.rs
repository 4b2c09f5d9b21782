//! Survey definitions, links, event triggers and invitations.

use super::*;

impl SurveyStore for SqliteStore {
    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64> {
        self.write(|tx| {
            let v: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2", params![tenant, survey_id], |r| r.get(0))?;
            tx.execute("INSERT INTO surveys (tenant_id, survey_id, version, name, definition, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![tenant, survey_id, v, name, definition, now_ms()])?;
            Ok(v)
        })
    }

    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT version, definition FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2 AND (?3 IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
                params![tenant, survey_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT s.survey_id, s.version, s.name,
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.displayed_at IS NOT NULL),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.responded_at IS NOT NULL)
                 FROM surveys s WHERE s.tenant_id = ?1 AND s.version = (SELECT MAX(version) FROM surveys x WHERE x.tenant_id = s.tenant_id AND x.survey_id = s.survey_id)
                 ORDER BY s.survey_id",
            )?;
            let rows = st
                .query_map([tenant], |r| Ok(SurveySummary { survey_id: r.get(0)?, version: r.get(1)?, name: r.get(2)?, links: r.get(3)?, displays: r.get(4)?, responses: r.get(5)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn create_link(&self, token_hash: &str, l: &SurveyLink) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![token_hash, l.tenant_id, l.survey_id, l.version, l.identifier, l.channel, now_ms()],
            )?;
            Ok(())
        })
    }

    fn invitations(
        &self,
        tenant: &str,
        identifier: &str,
        survey_id: Option<&str>,
        since_ms: i64,
    ) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT created_at FROM survey_links WHERE tenant_id = ?1 AND identifier = ?2 AND (?3 IS NULL OR survey_id = ?3) AND created_at >= ?4 ORDER BY created_at DESC",
            )?;
            let rows = st.query_map(params![tenant, identifier, survey_id, since_ms], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
            Ok(rows)
        })
    }

    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT tenant_id, survey_id, version, identifier, channel, displayed_at, responded_at, follow_ups FROM survey_links WHERE token_hash = ?1",
                [token_hash],
                |r| Ok(SurveyLink { tenant_id: r.get(0)?, survey_id: r.get(1)?, version: r.get(2)?, identifier: r.get(3)?, channel: r.get(4)?, displayed_at_ms: r.get(5)?, responded_at_ms: r.get(6)?, follow_ups: r.get(7)? }),
            )
            .optional()?)
        })
    }

    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()> {
        let sql = match event {
            LinkEvent::Displayed => "UPDATE survey_links SET displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1",
            LinkEvent::Responded => "UPDATE survey_links SET responded_at = COALESCE(responded_at, ?2), displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1",
            LinkEvent::FollowUpAnswered => "UPDATE survey_links SET follow_ups = follow_ups + 1 WHERE token_hash = ?1 AND ?2 IS NOT NULL",
        };
        self.write(|tx| {
            tx.execute(sql, params![token_hash, now_ms()])?;
            Ok(())
        })
    }
}
