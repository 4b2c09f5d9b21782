//! Helpers for tests that need a real database: a throwaway PostgreSQL database per test,
//! created from `CXM_TEST_DATABASE_URL` and dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

/// The admin url tests use, or `None` (PostgreSQL tests then skip with a message).
pub fn pg_admin_url() -> Option<String> {
    std::env::var("CXM_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh database that is dropped when this guard is.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub fn create(admin_url: &str) -> TestDb {
        let name = format!(
            "cxm_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        let mut c = postgres::Client::connect(admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach CXM_TEST_DATABASE_URL: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{admin_url}/{name}"),
        };
        TestDb {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // on a plain thread: the synchronous client cannot run inside an async test's runtime
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// Where a test store lives, for tests that must reach behind the store (to prove that
/// tampering with the database is detected).
#[derive(Debug, Clone)]
pub enum SqlTarget {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// Runs raw SQL against a test store's database on a connection of its own.
pub fn execute_sql(target: &SqlTarget, sql: &str) {
    match target {
        SqlTarget::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            c.execute_batch(sql).unwrap();
        }
        SqlTarget::Postgres(url) => {
            let (url, sql) = (url.clone(), sql.to_string());
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.batch_execute(&sql).unwrap();
            })
            .join()
            .unwrap();
        }
    }
}

/// Every table cell (as text) that contains one of `needles`, as `table: needle`; the proof
/// that an erasure left nothing identifying behind.
pub fn find_text(target: &SqlTarget, needles: &[String]) -> Vec<String> {
    let mut hits = vec![];
    let mut check = |table: &str, cell: &str| {
        for n in needles {
            if cell.contains(n.as_str()) {
                hits.push(format!(
                    "{table}: {n} in {}",
                    cell.chars().take(200).collect::<String>()
                ));
            }
        }
    };
    match target {
        SqlTarget::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for t in tables {
                let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                let n = st.column_count();
                let mut rows = st.query([]).unwrap();
                while let Some(r) = rows.next().unwrap() {
                    for i in 0..n {
                        if let rusqlite::types::ValueRef::Text(b) = r.get_ref(i).unwrap() {
                            check(&t, &String::from_utf8_lossy(b));
                        }
                    }
                }
            }
        }
        SqlTarget::Postgres(url) => {
            let url = url.clone();
            let cells: Vec<(String, String)> = std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let tables: Vec<String> = c
                    .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut out = vec![];
                for t in tables {
                    for r in c.query(&format!("SELECT x::text FROM \"{t}\" x"), &[]).unwrap() {
                        out.push((t.clone(), r.get(0)));
                    }
                }
                out
            })
            .join()
            .unwrap();
            for (t, cell) in cells {
                check(&t, &cell);
            }
        }
    }
    hits
}

/// Bytes the store takes on disk: the SQLite file after its WAL is checkpointed into it
/// (plus whatever the WAL still holds), or the PostgreSQL database's size.
pub fn store_bytes(target: &SqlTarget) -> u64 {
    match target {
        SqlTarget::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let wal = path.with_extension("db-wal");
            size(path) + size(&wal)
        }
        SqlTarget::Postgres(url) => {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let _ = c.batch_execute("CHECKPOINT");
                let n: i64 = c
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .unwrap()
                    .get(0);
                n as u64
            })
            .join()
            .unwrap()
        }
    }
}
