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
