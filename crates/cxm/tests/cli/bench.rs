//! `cxm bench ingest` on PostgreSQL reports the bare COPY ceiling beside its own figure,
//! measured on the very rows it stored, and leaves no scratch table behind.

use cxm_store::testing::{pg_admin_url, TestDb};

#[test]
fn postgres_ingest_bench_measures_its_ceiling_on_what_it_stored() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let db = TestDb::create(&admin);
    let out = super::run_json(
        std::process::Command::new(env!("CARGO_BIN_EXE_cxm"))
            .args(["--database-url", &db.url])
            .args(["bench", "ingest", "--events", "3000", "--concurrency", "4"])
            .env_remove("CXM_DATA_DIR")
            .env_remove("CXM_CONFIG")
            .env("CXM_MASTER_KEY", "7".repeat(64))
            .env("CXM_LOG", "warn"),
    );
    assert_eq!(out["backend"], "postgres", "{out}");
    let stored = out["stored_events"].as_u64().unwrap();
    assert!(stored > 2000, "{out}");
    assert_eq!(out["copy_ceiling_rows"].as_u64(), Some(stored), "{out}");
    let ceiling = out["copy_ceiling_rows_per_sec"].as_f64().unwrap();
    let ratio = out["ratio_to_ceiling"].as_f64().unwrap();
    let ingest = out["events_per_sec"].as_f64().unwrap();
    assert!(
        ceiling > 0.0 && (ratio - ingest / ceiling).abs() < 1e-9,
        "{out}"
    );
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let left: Option<String> = c
        .query_one("SELECT to_regclass('bench_copy_ceiling')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, None, "the scratch table is dropped");
}
