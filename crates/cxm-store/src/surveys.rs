//! Survey definitions and their links: one SQL for both backends, over [`SqlBackend`].

use crate::sql::{all, one, Dialect, Row, SqlBackend};
use crate::{now_ms, LinkEvent, Result, SurveyLink, SurveyStore, SurveySummary};

fn summary(r: &Row) -> Result<SurveySummary> {
    Ok(SurveySummary {
        survey_id: r.text(0)?,
        version: r.int(1)?,
        name: r.text(2)?,
        links: r.int(3)?,
        displays: r.int(4)?,
        responses: r.int(5)?,
    })
}

fn link(r: &Row) -> Result<SurveyLink> {
    Ok(SurveyLink {
        tenant_id: r.text(0)?,
        survey_id: r.text(1)?,
        version: r.int(2)?,
        identifier: r.opt_text(3)?,
        channel: r.text(4)?,
        displayed_at_ms: r.opt_int(5)?,
        responded_at_ms: r.opt_int(6)?,
        follow_ups: r.int(7)?,
    })
}

impl<B: SqlBackend> SurveyStore for B {
    fn save_survey(
        &self,
        tenant: &str,
        survey_id: &str,
        name: &str,
        definition: &str,
    ) -> Result<i64> {
        self.write_sql(|db| {
            // SQLite's writer is one at a time; PostgreSQL's are not, so two saves of one survey
            // would read the same MAX(version) without the lock
            if db.dialect() == Dialect::Postgres {
                db.rows(
                    "SELECT pg_advisory_xact_lock(hashtext(?1 || '/' || ?2))::text",
                    &[tenant.into(), survey_id.into()],
                )?;
            }
            let v = db
                .row(
                    "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2",
                    &[tenant.into(), survey_id.into()],
                )?
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(1);
            db.exec(
                "INSERT INTO surveys (tenant_id, survey_id, version, name, definition, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[tenant.into(), survey_id.into(), v.into(), name.into(), definition.into(), now_ms().into()],
            )?;
            Ok(v)
        })
    }

    fn survey(
        &self,
        tenant: &str,
        survey_id: &str,
        version: Option<i64>,
    ) -> Result<Option<(i64, String)>> {
        self.read_sql(|db| {
            one(
                db,
                "SELECT version, definition FROM surveys WHERE tenant_id = ?1 AND survey_id = ?2 AND (CAST(?3 AS BIGINT) IS NULL OR version = ?3) ORDER BY version DESC LIMIT 1",
                &[tenant.into(), survey_id.into(), version.into()],
                |r| Ok((r.int(0)?, r.text(1)?)),
            )
        })
    }

    fn list_surveys(&self, tenant: &str) -> Result<Vec<SurveySummary>> {
        self.read_sql(|db| {
            all(
                db,
                "SELECT s.survey_id, s.version, s.name,
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.displayed_at IS NOT NULL),
                   (SELECT COUNT(*) FROM survey_links l WHERE l.tenant_id = s.tenant_id AND l.survey_id = s.survey_id AND l.responded_at IS NOT NULL)
                 FROM surveys s WHERE s.tenant_id = ?1 AND s.version = (SELECT MAX(version) FROM surveys x WHERE x.tenant_id = s.tenant_id AND x.survey_id = s.survey_id)
                 ORDER BY s.survey_id",
                &[tenant.into()],
                summary,
            )
        })
    }

    fn create_link(&self, token_hash: &str, l: &SurveyLink) -> Result<()> {
        self.write_sql(|db| {
            db.exec(
                "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &[token_hash.into(), (&l.tenant_id).into(), (&l.survey_id).into(), l.version.into(), (&l.identifier).into(), (&l.channel).into(), now_ms().into()],
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
        self.read_sql(|db| {
            all(
                db,
                "SELECT created_at FROM survey_links WHERE tenant_id = ?1 AND identifier = ?2 AND (CAST(?3 AS TEXT) IS NULL OR survey_id = ?3) AND created_at >= ?4 ORDER BY created_at DESC",
                &[tenant.into(), identifier.into(), survey_id.into(), since_ms.into()],
                |r| r.int(0),
            )
        })
    }

    fn link(&self, token_hash: &str) -> Result<Option<SurveyLink>> {
        self.read_sql(|db| {
            one(
                db,
                "SELECT tenant_id, survey_id, version, identifier, channel, displayed_at, responded_at, follow_ups FROM survey_links WHERE token_hash = ?1",
                &[token_hash.into()],
                link,
            )
        })
    }

    fn mark_link(&self, token_hash: &str, event: LinkEvent) -> Result<()> {
        let now = now_ms();
        self.write_sql(|db| {
            match event {
                LinkEvent::Displayed => db.exec("UPDATE survey_links SET displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1", &[token_hash.into(), now.into()])?,
                LinkEvent::Responded => db.exec("UPDATE survey_links SET responded_at = COALESCE(responded_at, ?2), displayed_at = COALESCE(displayed_at, ?2) WHERE token_hash = ?1", &[token_hash.into(), now.into()])?,
                LinkEvent::FollowUpAnswered => db.exec("UPDATE survey_links SET follow_ups = follow_ups + 1 WHERE token_hash = ?1", &[token_hash.into()])?,
            };
            Ok(())
        })
    }
}
