//! The bare ceiling `cxm bench ingest --database-url` is measured beside: the events it
//! stored, copied again by COPY BINARY into a scratch table with the events table's columns
//! and indexes, a transaction per chunk, with nothing else (no dedup, identity or counters).
//! What PostgreSQL on this machine takes for the log alone bounds what ingest can reach.

use std::time::Instant;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use postgres::{Client, NoTls};

use crate::Result;

/// What the copy measured.
#[derive(Debug, Clone, Copy)]
pub struct CopyCeiling {
    pub rows: u64,
    pub seconds: f64,
}

use super::rows::{EVENT_COPY_COLUMNS as COLUMNS, EVENT_COPY_TYPES};

type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
    String,
);

/// Copies the tenant's events into `bench_copy_ceiling` (made here and dropped after),
/// `rows_per_tx` rows a transaction, and times only the copy.
pub fn pg_copy_ceiling(url: &str, tenant: &str, rows_per_tx: usize) -> Result<CopyCeiling> {
    let mut c = Client::connect(url, NoTls)?;
    c.batch_execute(
        "DROP TABLE IF EXISTS bench_copy_ceiling;
         CREATE TABLE bench_copy_ceiling (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES);",
    )?;
    let rows: Vec<EventRow> = c
        .query(
            &format!("SELECT {COLUMNS} FROM events WHERE tenant_id = $1 ORDER BY seq"),
            &[&tenant],
        )?
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
                r.get(9),
                r.get(10),
                r.get(11),
                r.get(12),
                r.get(13),
            )
        })
        .collect();
    let started = Instant::now();
    let copied = (|| -> Result<()> {
        for chunk in rows.chunks(rows_per_tx.max(1)) {
            let mut tx = c.transaction()?;
            let sink = tx.copy_in(&format!(
                "COPY bench_copy_ceiling ({COLUMNS}) FROM STDIN BINARY"
            ))?;
            let mut w = BinaryCopyInWriter::new(sink, &EVENT_COPY_TYPES);
            for r in chunk {
                let row: [&(dyn ToSql + Sync); 14] = [
                    &r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8, &r.9, &r.10, &r.11,
                    &r.12, &r.13,
                ];
                w.write(&row)?;
            }
            w.finish()?;
            tx.commit()?;
        }
        Ok(())
    })();
    let seconds = started.elapsed().as_secs_f64();
    // the scratch table goes whatever happened
    let dropped = c.batch_execute("DROP TABLE IF EXISTS bench_copy_ceiling");
    copied?;
    dropped?;
    Ok(CopyCeiling {
        rows: rows.len() as u64,
        seconds,
    })
}
