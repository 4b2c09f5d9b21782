//! Experiments, their exposures and the views that count them.

use super::*;

impl ExperimentStore for SqliteStore {
    fn experiment_views(
        &self,
        tenant: &str,
        experiment: &str,
        after: i64,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<ViewEvent>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT e.seq, e.user_id, e.anonymous_id, COALESCE(iu.profile_id, ia.profile_id), e.ts,
                   CAST(json_extract(e.payload, '$.properties.variation_id') AS TEXT)
                 FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = ?3 AND e.name = 'Experiment Viewed' AND e.seq > ?1 AND e.seq <= ?2
                   AND CAST(json_extract(e.payload, '$.properties.experiment_id') AS TEXT) = ?4
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, experiment, limit], |r| {
                    Ok(ViewEvent { seq: r.get(0)?, user_id: r.get(1)?, anonymous_id: r.get(2)?, profile_id: r.get(3)?, ts_ms: r.get(4)?, variation: r.get(5)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn save_experiment(&self, tenant: &str, e: &StoredExperiment) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO experiments (tenant_id, id, definition, status, rollout_percent, shipped_arm, history, created_by, created_at, updated_at, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, status = excluded.status, rollout_percent = excluded.rollout_percent,
                   shipped_arm = excluded.shipped_arm, history = excluded.history, updated_at = excluded.updated_at, started_at = excluded.started_at",
                params![tenant, e.id, e.definition, e.status, e.rollout_percent, e.shipped_arm, e.history, e.created_by, e.created_at_ms, e.updated_at_ms, e.started_at_ms],
            )?;
            Ok(())
        })
    }

    fn experiment(&self, tenant: &str, id: &str) -> Result<Option<StoredExperiment>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 AND id = ?2"),
                params![tenant, id],
                experiment_row,
            )
            .optional()?)
        })
    }

    fn experiments(&self, tenant: &str) -> Result<Vec<StoredExperiment>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "{EXPERIMENT_COLUMNS} WHERE tenant_id = ?1 ORDER BY created_at DESC, id"
            ))?;
            let rows = st
                .query_map([tenant], experiment_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn expose(&self, tenant: &str, x: &Exposure) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO experiment_exposures (tenant_id, experiment_id, unit, customer, profile_id, arm, first_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant_id, experiment_id, unit, customer) DO UPDATE SET profile_id = COALESCE(experiment_exposures.profile_id, excluded.profile_id)",
                params![tenant, x.experiment_id, x.unit, x.customer, x.profile_id, x.arm, x.first_at_ms],
            )?;
            Ok(tx.query_row(
                "SELECT arm FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 AND unit = ?3 AND customer = ?4",
                params![tenant, x.experiment_id, x.unit, x.customer],
                |r| r.get(0),
            )?)
        })
    }

    fn exposures(&self, tenant: &str, experiment: &str) -> Result<Vec<Exposure>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT experiment_id, unit, customer, profile_id, arm, first_at FROM experiment_exposures WHERE tenant_id = ?1 AND experiment_id = ?2 ORDER BY first_at, unit, customer",
            )?;
            let rows = st
                .query_map(params![tenant, experiment], |r| {
                    Ok(Exposure { experiment_id: r.get(0)?, unit: r.get(1)?, customer: r.get(2)?, profile_id: r.get(3)?, arm: r.get(4)?, first_at_ms: r.get(5)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
