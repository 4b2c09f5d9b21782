//! What customer value is computed from.

use super::*;

impl EquityStore for SqliteStore {
    fn amount_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<AmountEvent>> {
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.group_id, e.ts,
                   CAST(COALESCE(json_extract(e.payload, '$.properties.revenue'), json_extract(e.payload, '$.properties.total'),
                                 json_extract(e.payload, '$.properties.amount'), json_extract(e.payload, '$.properties.value')) AS TEXT)
                 FROM events e
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = ?3 AND e.name IN (SELECT value FROM json_each(?4)) AND e.seq > ?1 AND e.seq <= ?2
                 ORDER BY e.seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok(AmountEvent { seq: r.get(0)?, profile_id: r.get(1)?, group_id: r.get(2)?, ts_ms: r.get(3)?, amount: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
