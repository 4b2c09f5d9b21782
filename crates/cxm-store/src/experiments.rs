//! Experiments, their exposures and the views that count them: one SQL for both backends
//! over [`SqlBackend`], but for reading a property out of an event's JSON.

use crate::sql::{Db, Dialect, Row, SqlBackend};
use crate::{ExperimentStore, Exposure, Result, StoredExperiment, ViewEvent};

const EXPERIMENT_COLUMNS: &str = "SELECT id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at FROM experiments";

fn experiment(r: &Row) -> Result<StoredExperiment> {
    Ok(StoredExperiment {
        id: r.text(0)?,
        definition: r.text(1)?,
        status: r.text(2)?,
        rollout_percent: r.real(3)?,
        shipped_arm: r.opt_text(4)?,
        history: r.text(5)?,
        created_by: r.text(6)?,
        created_at_ms: r.int(7)?,
        updated_at_ms: r.int(8)?,
        started_at_ms: r.opt_int(9)?,
    })
}

fn exposure(r: &Row) -> Result<Exposure> {
    Ok(Exposure {
        experiment_id: r.text(0)?,
        unit: r.text(1)?,
        customer: r.text(2)?,
        profile_id: r.opt_text(3)?,
        arm: r.text(4)?,
        first_at_ms: r.int(5)?,
    })
}

/// `Experiment Viewed` events of one experiment, with the customer they resolve to now.
fn views_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SELECT e.seq, e.user_id, e.anonymous_id, COALESCE(iu.profile_id, ia.profile_id), e.ts,
               CAST(json_extract(e.payload, '$.properties.variation_id') AS TEXT)
             FROM events e
               LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
               LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
             WHERE e.tenant_id = ?3 AND e.name = 'Experiment Viewed' AND e.seq > ?1 AND e.seq <= ?2
               AND CAST(json_extract(e.payload, '$.properties.experiment_id') AS TEXT) = ?4
             ORDER BY e.seq LIMIT ?5",
        Dialect::Postgres => "SELECT e.seq, e.user_id, e.anonymous_id, COALESCE(iu.profile_id, ia.profile_id), e.ts,
               p.props ->> 'variation_id'
             FROM events e
               CROSS JOIN LATERAL (SELECT (e.payload::jsonb) -> 'properties' AS props) p
               LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
               LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
             WHERE e.tenant_id = ?3 AND e.name = 'Experiment Viewed' AND e.seq > ?1 AND e.seq <= ?2
               AND p.props ->> 'experiment_id' = ?4
             ORDER BY e.seq LIMIT ?5",
    }
}

fn arm_of(db: &mut dyn Db, tenant: &str, x: &Exposure) -> Result<Option<String>> {
    Ok(match db.row(
        "SELECT arm FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 AND unit = ?3 AND customer = ?4",
        &[tenant.into(), (&x.experiment_id).into(), (&x.unit).into(), (&x.customer).into()],
    )? {
        Some(r) => Some(r.text(0)?),
        None => None,
    })
}

impl<B: SqlBackend> ExperimentStore for B {
    fn experiment_views(
        &self,
        tenant: &str,
        experiment: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<ViewEvent>> {
        self.read_sql(|db| {
            let sql = views_sql(db.dialect());
            db.rows(
                sql,
                &[
                    after.into(),
                    upto.into(),
                    tenant.into(),
                    experiment.into(),
                    i64::from(limit).into(),
                ],
            )?
            .iter()
            .map(|r| {
                Ok(ViewEvent {
                    seq: r.int(0)?,
                    user_id: r.opt_text(1)?,
                    anonymous_id: r.opt_text(2)?,
                    profile_id: r.opt_text(3)?,
                    ts_ms: r.int(4)?,
                    variation: r.opt_text(5)?,
                })
            })
            .collect()
        })
    }

    fn save_experiment(&self, tenant: &str, e: &StoredExperiment) -> Result<()> {
        self.write_sql(|db| {
            db.exec(
                "INSERT INTO experiments (tenant_id, id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, status = excluded.status, rollout_percent = excluded.rollout_percent,
                   shipped_arm = excluded.shipped_arm, history = excluded.history, updated_at = excluded.updated_at, started_at = excluded.started_at",
                &[
                    tenant.into(),
                    (&e.id).into(),
                    (&e.definition).into(),
                    (&e.status).into(),
                    e.rollout_percent.into(),
                    (&e.shipped_arm).into(),
                    (&e.history).into(),
                    (&e.created_by).into(),
                    e.created_at_ms.into(),
                    e.updated_at_ms.into(),
                    e.started_at_ms.into(),
                ],
            )?;
            Ok(())
        })
    }

    fn experiment(&self, tenant: &str, id: &str) -> Result<Option<StoredExperiment>> {
        self.read_sql(|db| {
            db.row(
                &format!("{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 AND id = ?2"),
                &[tenant.into(), id.into()],
            )?
            .as_ref()
            .map(experiment)
            .transpose()
        })
    }

    fn experiments(&self, tenant: &str) -> Result<Vec<StoredExperiment>> {
        self.read_sql(|db| {
            db.rows(
                &format!("{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 ORDER BY created_at DESC, id"),
                &[tenant.into()],
            )?
            .iter()
            .map(experiment)
            .collect()
        })
    }

    fn expose(&self, tenant: &str, x: &Exposure) -> Result<String> {
        self.write_sql(|db| {
            db.exec(
                "INSERT INTO experiment_exposures (tenant_id, experiment_id, unit, customer, profile_id, arm, first_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant_id, experiment_id, unit, customer) DO UPDATE SET profile_id = COALESCE(experiment_exposures.profile_id, excluded.profile_id)",
                &[
                    tenant.into(),
                    (&x.experiment_id).into(),
                    (&x.unit).into(),
                    (&x.customer).into(),
                    (&x.profile_id).into(),
                    (&x.arm).into(),
                    x.first_at_ms.into(),
                ],
            )?;
            // the first exposure's arm: a later call with another arm does not move them
            Ok(arm_of(db, tenant, x)?.unwrap_or_else(|| x.arm.clone()))
        })
    }

    fn exposures(&self, tenant: &str, experiment: &str) -> Result<Vec<Exposure>> {
        self.read_sql(|db| {
            db.rows(
                "SELECT experiment_id, unit, customer, profile_id, arm, first_at FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 ORDER BY first_at, unit, customer",
                &[tenant.into(), experiment.into()],
            )?
            .iter()
            .map(exposure)
            .collect()
        })
    }
}
