//! What customer value is computed from.

use super::*;

impl EquityStore for PgStore {
    fn amount_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<AmountEvent>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT e.seq, COALESCE(iu.profile_id, ia.profile_id), e.group_id, e.ts,
                   COALESCE(p.props ->> 'revenue', p.props ->> 'total', p.props ->> 'amount', p.props ->> 'value')
                 FROM events e
                   CROSS JOIN LATERAL (SELECT (e.payload::jsonb) -> 'properties' AS props) p
                   LEFT JOIN identifiers iu ON iu.tenant_id = e.tenant_id AND iu.kind = 'user_id' AND iu.value = e.user_id
                   LEFT JOIN identifiers ia ON ia.tenant_id = e.tenant_id AND ia.kind = 'anonymous_id' AND ia.value = e.anonymous_id
                 WHERE e.tenant_id = $3 AND e.name = ANY($4) AND e.seq > $1 AND e.seq <= $2
                 ORDER BY e.seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| AmountEvent { seq: r.get(0), profile_id: r.get(1), group_id: r.get(2), ts_ms: r.get(3), amount: r.get(4) })
            .collect())
        })
    }
}
