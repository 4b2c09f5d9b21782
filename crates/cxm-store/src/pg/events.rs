//! The event log: appending (group-committed requests), quarantine, the dedup window, the columnar copy of the log, and the overview counts.

use super::*;

impl EventStore for PgStore {
    fn append(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        let tenants: BTreeSet<&str> = requests.iter().map(|r| r.tenant_id.as_str()).collect();
        self.ensure_dedup_days(requests.iter().flat_map(|r| r.events.iter()))?;
        self.tx(|g| {
            // identity resolution reads then writes; several servers may ingest for one tenant,
            // so serialise per tenant (in a stable order, so two writers cannot deadlock)
            for t in &tenants {
                g.tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[t])?;
            }
            graph::append_all(g, requests, &self.settings)
        })
    }

    fn max_event_seq(&self) -> Result<i64> {
        self.tx(|g| {
            Ok(
                g.opt("SELECT COALESCE(MAX(seq), 0)::bigint FROM events", &[])?
                    .map(|r| r.get(0))
                    .unwrap_or(0),
            )
        })
    }

    fn event_blocks_head(&self, tenant: &str) -> Result<i64> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT COALESCE(MAX(last_seq), 0)::bigint FROM event_blocks WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| r.get(0))
            .unwrap_or(0))
        })
    }

    fn compact_events(&self, tenant: &str, block: usize) -> Result<usize> {
        let head = self.event_blocks_head(tenant)?;
        let limit = block.max(1) as i64;
        let rows: Vec<crate::columns::LogColumns> = self.tx(|g| {
            Ok(g.all(
                "SELECT seq, user_id, anonymous_id, name, channel, ts FROM events
                 WHERE tenant_id = $1 AND seq > $2 AND name IS NOT NULL ORDER BY seq LIMIT $3",
                &[&tenant, &head, &limit],
            )?
            .iter()
            .map(|r| crate::columns::LogColumns {
                seq: r.get(0),
                user_id: r.get(1),
                anonymous_id: r.get(2),
                name: r.get(3),
                channel: r.get(4),
                ts_ms: r.get(5),
            })
            .collect())
        })?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(0);
        };
        if rows.len() < block.max(1) {
            return Ok(0);
        }
        let body = crate::columns::encode(&rows);
        let (first, last, n) = (first.seq, last.seq, rows.len() as i64);
        self.tx(|g| {
            // written only onto the head it was read after: a purge or another server in
            // between and this block is not written
            let put = g.exec(
                "INSERT INTO event_blocks (tenant_id, first_seq, last_seq, events, body)
                 SELECT $1, $2, $3, $4, $5 WHERE COALESCE((SELECT MAX(last_seq) FROM event_blocks WHERE tenant_id = $1), 0) = $6
                 ON CONFLICT DO NOTHING",
                &[&tenant, &first, &last, &n, &body, &head],
            )?;
            Ok(if put == 1 { n as usize } else { 0 })
        })
    }

    fn event_blocks(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::columns::EventBlock>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT first_seq, last_seq, body FROM event_blocks WHERE tenant_id = $1 AND first_seq > $2 ORDER BY first_seq LIMIT $3",
                &[&tenant, &after_seq, &limit],
            )?
                .iter()
                .map(|r| crate::columns::EventBlock { first_seq: r.get(0), last_seq: r.get(1), body: r.get(2) })
                .collect())
        })
    }

    fn trigger_cursor(&self, tenant: &str) -> Result<Option<i64>> {
        self.tx(|g| {
            Ok(g.opt(
                "SELECT seq FROM survey_trigger_cursors WHERE tenant_id = $1",
                &[&tenant],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn set_trigger_cursor(&self, tenant: &str, seq: i64) -> Result<()> {
        self.tx(|g| {
            g.exec("INSERT INTO survey_trigger_cursors (tenant_id, seq) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq", &[&tenant, &seq])?;
            Ok(())
        })
    }

    fn trigger_events(
        &self,
        tenant: &str,
        after: i64,
        upto: i64,
        names: &[String],
        limit: u32,
    ) -> Result<Vec<TriggerEvent>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT seq, name, channel, user_id, anonymous_id, message_id, ts FROM events
                 WHERE seq > $1 AND seq <= $2 AND tenant_id = $3 AND name = ANY($4) ORDER BY seq LIMIT $5",
                &[&after, &upto, &tenant, &names, &limit],
            )?
            .iter()
            .map(|r| TriggerEvent { seq: r.get(0), name: r.get(1), channel: r.get(2), user_id: r.get(3), anonymous_id: r.get(4), message_id: r.get(5), ts_ms: r.get(6) })
            .collect())
        })
    }

    fn create_invitation(
        &self,
        tenant: &str,
        inv: &Invitation,
        link: Option<(&str, &SurveyLink)>,
    ) -> Result<bool> {
        let now = now_ms();
        self.tx(|g| {
            let inserted = with_public_id(g, "survey_invitations", |g, id| {
                g.exec(
                    "INSERT INTO survey_invitations (id, tenant_id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at)
                     VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                    &[&tenant, &inv.survey_id, &inv.version, &inv.identifier, &inv.channel, &inv.trigger_event, &inv.trigger_message_id, &inv.status, &inv.detail, &inv.url, &now, &id],
                )
            })?;
            let n = u64::from(inserted.is_some());
            if n == 1 {
                if let Some((hash, l)) = link {
                    g.exec(
                        "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&hash, &l.tenant_id, &l.survey_id, &l.version, &l.identifier, &l.channel, &now],
                    )?;
                }
            }
            Ok(n == 1)
        })
    }

    fn list_invitations(
        &self,
        tenant: &str,
        status: Option<&str>,
        survey_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Invitation>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR survey_id = $3) ORDER BY id LIMIT $4",
                &[&tenant, &status, &survey_id, &limit],
            )?
            .iter()
            .map(invitation)
            .collect())
        })
    }

    fn mark_invitation(
        &self,
        tenant: &str,
        id: i64,
        status: &str,
        detail: &str,
    ) -> Result<Option<Invitation>> {
        let now = now_ms();
        self.tx(|g| {
            g.exec(
                "UPDATE survey_invitations SET status = $3, detail = $4, delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                &[&tenant, &id, &status, &detail, &now],
            )?;
            Ok(g.opt(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )?
            .as_ref()
            .map(invitation))
        })
    }

    fn invitation_counts(&self, tenant: &str) -> Result<Vec<(String, String, i64)>> {
        self.tx(|g| {
            Ok(g.all("SELECT survey_id, status, COUNT(*)::bigint FROM survey_invitations WHERE tenant_id = $1 GROUP BY survey_id, status ORDER BY survey_id, status", &[&tenant])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }

    fn quarantine(&self, tenant: &str, limit: u32) -> Result<Vec<QuarantineEntry>> {
        let limit = i64::from(limit);
        self.tx(|g| {
            Ok(g.all("SELECT id, code, detail, payload, received_at FROM quarantine WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", &[&tenant, &limit])?
                .iter()
                .map(|r| QuarantineEntry {
                    id: r.get(0),
                    code: r.get(1),
                    detail: r.get(2),
                    payload: serde_json::from_str(r.get(3)).unwrap_or(Value::Null),
                    received_at_ms: r.get(4),
                })
                .collect())
        })
    }

    fn quarantine_days(&self, tenant: &str, since_day: &str) -> Result<Vec<QuarantineDay>> {
        self.tx(|g| {
            Ok(g.all("SELECT day, events, rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = $1 AND day >= $2 ORDER BY day DESC", &[&tenant, &since_day])?
                .iter()
                .map(|r| QuarantineDay { day: r.get(0), events: r.get(1), rows_kept: r.get(2), bytes_kept: r.get(3) })
                .collect())
        })
    }

    /// Drops the days of arrival wholly older than the cutoff, so ids are remembered for
    /// the window and at most a day longer.
    fn prune_dedup(&self, older_than_ms: i64) -> Result<u64> {
        let before = dedup_day(older_than_ms);
        let removed = self.tx(|g| {
            let days: Vec<i32> = g
                .all(
                    "SELECT substr(c.relname, 8)::int FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE i.inhparent = 'dedup'::regclass AND c.relname ~ '^dedup_d[0-9]+$'",
                    &[],
                )?
                .iter()
                .map(|r| r.get::<_, i32>(0))
                .filter(|d| *d < before)
                .collect();
            let mut removed = 0u64;
            for d in days {
                let n: i64 = g.tx.query_one(&format!("SELECT count(*) FROM dedup_d{d}"), &[])?.get(0);
                g.tx.batch_execute(&format!("DROP TABLE dedup_d{d}"))?;
                removed += n as u64;
            }
            Ok(removed)
        })?;
        self.dedup_days
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d| *d >= before);
        Ok(removed)
    }

    fn overview(&self, tenant: &str, days: u32, now: i64) -> Result<Overview> {
        let since = chrono::DateTime::from_timestamp_millis(now - i64::from(days) * 86_400_000)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        self.tx(|g| {
            let total: i64 = g.opt("SELECT COALESCE(SUM(events), 0)::BIGINT FROM ingest_daily WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let profiles: i64 = g.opt("SELECT COUNT(*) FROM profiles WHERE tenant_id = $1 AND merged_into IS NULL", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let quarantined: i64 = g.opt("SELECT COUNT(*) FROM quarantine WHERE tenant_id = $1", &[&tenant])?.map(|r| r.get(0)).unwrap_or(0);
            let by_day_channel = g
                .all("SELECT day, channel, events FROM ingest_daily WHERE tenant_id = $1 AND day >= $2 ORDER BY day, channel", &[&tenant, &since])?
                .iter()
                .map(|r| DayChannelCount { day: r.get(0), channel: r.get(1), events: r.get(2) })
                .collect();
            Ok(Overview { total_events: total, profiles, quarantined, by_day_channel })
        })
    }
}
