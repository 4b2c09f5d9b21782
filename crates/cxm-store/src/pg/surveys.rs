//! Survey definitions, links, event triggers and invitations.

use super::*;

impl SurveyStore for PgStore {
    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64> {
        let now = now_ms();
        self.tx(|g| {
            g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))", &[&tenant, &survey_id])?;
            let v: i64 = g.opt("SELECT COALESCE(MAX(version), 0)::bigint + 1 FROM surveys WHERE tenant_id = $1 AND survey_id = $2", &[&tenant, &survey_id])?.map(|r| r.get(0)).unwrap_or(1);
            g.exec("INSERT INTO surveys (tenant_id, survey_id, version, name, definition, created_at) VALUES ($1, $2, $3, $4, $5, $6)", &[&tenant, &survey_id, &v, &name, &definition, &now])?;
            Ok(v)
        })
    }

    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT version, definition FROM surveys WHERE tenant_id = $1 AND survey_id = $2 AND ($3::bigint IS NULL OR version = $3) ORDER BY version DESC LIMIT 1",
                &[&tenant, &survey_id, &version],
            )?
            .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>> {
        self.tx(|g| {
            Ok(g.all(
                "SELECT s.survey_id, s.version, s.name,
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.displayed_at IS NOT NULL),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.responded_at IS NOT NULL)
                 FROM surveys s WHERE s.tenant_id = $1 AND s.version = (SELECT MAX(version) FROM surveys x WHERE x.tenant_id = s.tenant_id AND x.survey_id = s.survey_id)
                 ORDER BY s.survey_id",
                &[&tenant],
            )?
            .iter()
            .map(|r| SurveySummary { survey_id: r.get(0), version: r.get(1), name: r.get(2), links: r.get(3), displays: r.get(4), responses: r.get(5) })
            .collect())
        })
    }

    fn create_link(&self, token_hash: &str, l: &SurveyLink) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&token_hash, &l.tenant_id, &l.survey_id, &l.version, &l.identifier, &l.channel, &now],
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
        self.tx(|g| {
            Ok(g.all(
                "SELECT created_at FROM survey_links WHERE tenant_id = $1 AND identifier = $2 AND ($3::text IS NULL OR survey_id = $3) AND created_at >= $4 ORDER BY created_at DESC",
                &[&tenant, &identifier, &survey_id, &since_ms],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT tenant_id, survey_id, version, identifier, channel, displayed_at, responded_at, follow_ups FROM survey_links WHERE token_hash = $1",
                &[&token_hash],
            )?
            .map(|r| SurveyLink { tenant_id: r.get(0), survey_id: r.get(1), version: r.get(2), identifier: r.get(3), channel: r.get(4), displayed_at_ms: r.get(5), responded_at_ms: r.get(6), follow_ups: r.get(7) }))
        })
    }

    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()> {
        let now = now_ms();
        self.tx(|g| {
            match event {
                LinkEvent::Displayed => g.exec("UPDATE survey_links SET displayed_at = COALESCE(displayed_at, $2) WHERE token_hash = $1", &[&token_hash, &now])?,
                LinkEvent::Responded => g.exec("UPDATE survey_links SET responded_at = COALESCE(responded_at, $2), displayed_at = COALESCE(displayed_at, $2) WHERE token_hash = $1", &[&token_hash, &now])?,
                LinkEvent::FollowUpAnswered => g.exec("UPDATE survey_links SET follow_ups = follow_ups + 1 WHERE token_hash = $1", &[&token_hash])?,
            };
            Ok(())
        })
    }
}
