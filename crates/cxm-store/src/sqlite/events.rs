//! The event log: appending (group-committed requests), quarantine, the dedup window, the columnar copy of the log, and the overview counts.

use super::*;

/// The rows of the next columnar block. NOT INDEXED: `name IS NOT NULL` lets the planner
/// take the partial `events_name` index, which for "any name" has no seq bound, so each block
/// walked every event of the tenant and sorted them (34 ms a block at 171,000 events, and
/// growing with the log); the log's own order is a range read from the head.
const BLOCK_ROWS: &str =
    "SELECT seq, user_id, anonymous_id, name, channel, ts FROM events NOT INDEXED
     WHERE tenant_id = ?1 AND seq > ?2 AND name IS NOT NULL ORDER BY seq LIMIT ?3";

impl EventStore for SqliteStore {
    fn append(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        let out = self.append_unsynced(requests)?;
        self.sync_appended()?;
        Ok(out)
    }

    fn append_unsynced(&self, requests: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *guard;
        w.dedup
            .load(&w.conn, self.settings.dedup_window.as_millis() as i64)?;
        // the commit writes its WAL frames without waiting for them to reach the disk;
        // `sync_appended` does that, beside the next group (WAL frames become durable in
        // order, and SQLite still syncs around every checkpoint)
        let mut added = vec![];
        let result = unsynced_tx(&mut w.conn, |tx| {
            let mut g = SqlTx::new(tx);
            g.dedup = Some(&mut w.dedup);
            let r = graph::append_all(&mut g, requests, &self.settings);
            added = std::mem::take(&mut g.added);
            r
        });
        match result {
            Ok(out) => {
                // after the commit: the events are stored (durable once synced) and answered
                // whatever this does
                let appended: i64 = out.iter().map(|o| i64::from(o.accepted)).sum();
                if let Err(e) = w.index_identifiers(appended, self.settings.identifier_index_lag) {
                    tracing::warn!(error = %e, "identifier index catch-up failed");
                }
                restart_if_asked(&w.conn, &self.wal_full);
                Ok(out)
            }
            Err(e) => {
                // nothing was stored: forget the ids so a retry is not taken for a duplicate
                for k in added {
                    w.dedup.keys.remove(&k);
                }
                Err(e)
            }
        }
    }

    fn sync_appended(&self) -> Result<()> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        // any commit's frames, and every earlier one's, are in this file or were copied into
        // the database by a checkpoint, which syncs both. The file lives as long as the store
        // is open: if it is gone, what was committed cannot be vouched for.
        std::fs::File::open(&wal)
            .and_then(|f| f.sync_data())
            .map_err(|e| {
                StoreError::Backend(format!("cannot sync the write-ahead log to disk: {e}"))
            })
    }

    fn upkeep_while_idle(&self) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.index_identifiers(0, 1)?;
        restart_if_asked(&w.conn, &self.wal_full);
        Ok(())
    }

    fn max_event_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }

    fn event_blocks_head(&self, tenant: &str) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(last_seq), 0) FROM event_blocks WHERE tenant_id = ?1",
                [tenant],
                |r| r.get(0),
            )?)
        })
    }

    fn compact_events(&self, tenant: &str, block: usize) -> Result<usize> {
        let head = self.event_blocks_head(tenant)?;
        let rows = self.read(|c| {
            let mut st = c.prepare_cached(BLOCK_ROWS)?;
            let rows = st
                .query_map(params![tenant, head, block.max(1) as i64], |r| {
                    Ok(crate::columns::LogColumns {
                        seq: r.get(0)?,
                        user_id: r.get(1)?,
                        anonymous_id: r.get(2)?,
                        name: r.get(3)?,
                        channel: r.get(4)?,
                        ts_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(0);
        };
        if rows.len() < block.max(1) {
            return Ok(0);
        }
        let body = crate::columns::encode(&rows);
        let (first, last, n) = (first.seq, last.seq, rows.len());
        self.write_derived(|tx| {
            // written only onto the head it was read after: a purge in between starts again
            let put = tx.execute(
                "INSERT INTO event_blocks (tenant_id, first_seq, last_seq, events, body)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE COALESCE((SELECT MAX(last_seq) FROM event_blocks WHERE tenant_id = ?1), 0) = ?6",
                params![tenant, first, last, n as i64, body, head],
            )?;
            Ok(if put == 1 { n } else { 0 })
        })
    }

    fn event_blocks(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::columns::EventBlock>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT first_seq, last_seq, body FROM event_blocks WHERE tenant_id = ?1 AND first_seq > ?2 ORDER BY first_seq LIMIT ?3")?;
            let rows = st
                .query_map(params![tenant, after_seq, limit], |r| Ok(crate::columns::EventBlock { first_seq: r.get(0)?, last_seq: r.get(1)?, body: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn trigger_cursor(&self, tenant: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT seq FROM survey_trigger_cursors WHERE tenant_id = ?1",
                params![tenant],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn set_trigger_cursor(&self, tenant: &str, seq: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("INSERT INTO survey_trigger_cursors (tenant_id, seq) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq", params![tenant, seq])?;
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
        let names = serde_json::to_string(names)?;
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, name, channel, user_id, anonymous_id, message_id, ts FROM events
                 WHERE seq > ?1 AND seq <= ?2 AND tenant_id = ?3 AND name IN (SELECT value FROM json_each(?4)) ORDER BY seq LIMIT ?5",
            )?;
            let rows = st
                .query_map(params![after, upto, tenant, names, limit], |r| {
                    Ok(TriggerEvent { seq: r.get(0)?, name: r.get(1)?, channel: r.get(2)?, user_id: r.get(3)?, anonymous_id: r.get(4)?, message_id: r.get(5)?, ts_ms: r.get(6)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn create_invitation(
        &self,
        tenant: &str,
        inv: &Invitation,
        link: Option<(&str, &SurveyLink)>,
    ) -> Result<bool> {
        let now = now_ms();
        self.write(|tx| {
            let inserted = with_public_id(tx, "survey_invitations", |id| {
                Ok(tx.execute(
                    "INSERT OR IGNORE INTO survey_invitations (id, tenant_id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at)
                     VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![tenant, inv.survey_id, inv.version, inv.identifier, inv.channel, inv.trigger_event, inv.trigger_message_id, inv.status, inv.detail, inv.url, now, id],
                )?)
            })?;
            let n = usize::from(inserted.is_some());
            if n == 1 {
                if let Some((hash, l)) = link {
                    tx.execute(
                        "INSERT INTO survey_links (token_hash, tenant_id, survey_id, version, identifier, channel, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![hash, l.tenant_id, l.survey_id, l.version, l.identifier, l.channel, now],
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
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR survey_id = ?3) ORDER BY id LIMIT ?4",
            )?;
            let rows = st.query_map(params![tenant, status, survey_id, limit], invitation)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
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
        self.write(|tx| {
            tx.execute(
                "UPDATE survey_invitations SET status = ?3, detail = ?4, delivered_at = CASE WHEN ?3 = 'delivered' THEN ?5 ELSE delivered_at END
                 WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
                params![tenant, id, status, detail, now],
            )?;
            Ok(tx
                .query_row(
                    "SELECT id, survey_id, version, identifier, channel, trigger_event, trigger_message_id, status, detail, url, created_at, delivered_at FROM survey_invitations WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id],
                    invitation,
                )
                .optional()?)
        })
    }

    fn invitation_counts(&self, tenant: &str) -> Result<Vec<(String, String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT survey_id, status, COUNT(*) FROM survey_invitations WHERE tenant_id = ?1 GROUP BY survey_id, status ORDER BY survey_id, status")?;
            let rows = st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn quarantine(&self, tenant: &str, limit: u32) -> Result<Vec<QuarantineEntry>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT id, code, detail, payload, received_at FROM quarantine WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")?;
            let rows = st
                .query_map(params![tenant, limit], |r| {
                    let p: String = r.get(3)?;
                    Ok(QuarantineEntry { id: r.get(0)?, code: r.get(1)?, detail: r.get(2)?, payload: serde_json::from_str(&p).unwrap_or(Value::Null), received_at_ms: r.get(4)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn quarantine_days(&self, tenant: &str, since_day: &str) -> Result<Vec<QuarantineDay>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT day, events, rows_kept, bytes_kept FROM quarantine_days WHERE tenant_id = ?1 AND day >= ?2 ORDER BY day DESC")?;
            let rows = st
                .query_map(params![tenant, since_day], |r| Ok(QuarantineDay { day: r.get(0)?, events: r.get(1)?, rows_kept: r.get(2)?, bytes_kept: r.get(3)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn prune_dedup(&self, older_than_ms: i64) -> Result<u64> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let cutoff = (older_than_ms / 1000) as u32;
        let before = w.dedup.keys.len();
        w.dedup.keys.retain(|_, at| *at >= cutoff);
        Ok((before - w.dedup.keys.len()) as u64)
    }

    fn overview(&self, tenant: &str, days: u32, now: i64) -> Result<Overview> {
        let since = chrono::DateTime::from_timestamp_millis(now - i64::from(days) * 86_400_000)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        self.read(|c| {
            let total: i64 = c.query_row("SELECT COALESCE(SUM(events), 0) FROM ingest_daily WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            let profiles: i64 = c.query_row("SELECT COUNT(*) FROM profiles WHERE tenant_id = ?1 AND merged_into IS NULL", [tenant], |r| r.get(0))?;
            let quarantined: i64 = c.query_row("SELECT COUNT(*) FROM quarantine WHERE tenant_id = ?1", [tenant], |r| r.get(0))?;
            let mut st = c.prepare("SELECT day, channel, events FROM ingest_daily WHERE tenant_id = ?1 AND day >= ?2 ORDER BY day, channel")?;
            let by_day_channel = st
                .query_map(params![tenant, since], |r| Ok(DayChannelCount { day: r.get(0)?, channel: r.get(1)?, events: r.get(2)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Overview { total_events: total, profiles, quarantined, by_day_channel })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block is read as a range of the log from its head, whatever the store holds.
    #[test]
    fn a_block_is_read_from_the_head_not_through_the_name_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
        let plan: Vec<String> = store
            .read(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {BLOCK_ROWS}"))?;
                let rows = st
                    .query_map(params!["t", 0, 10], |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
        assert!(
            !plan.contains("events_name") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }
}
