//! One suite, run against every backend: SQLite always, PostgreSQL when
//! `CXM_TEST_DATABASE_URL` names a server (each test gets a fresh database).

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use cxm_domain::{Clock, Identifier, IngestOptions};
use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::*;
use serde_json::{json, Value};

mod agents;
mod events;
mod feedback;
mod identity;
mod journeys;
mod provenance;
mod tenants;
mod themes;

use agents::*;
use events::*;
use feedback::*;
use identity::*;
use journeys::*;
use provenance::*;
use tenants::*;
use themes::*;

struct Backend {
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any>,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path(), StoreSettings::default()).unwrap();
    Backend {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

fn postgres() -> Option<Backend> {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)");
        return None;
    };
    let db = TestDb::create(&admin);
    let store = PgStore::connect(&db.url, StoreSettings::default()).unwrap();
    // the store must be dropped before the database: field order drops `store` first
    Some(Backend {
        store: Arc::new(store),
        _guard: Box::new(db),
    })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend { $( #[test] fn $name() { super::$name(&*super::sqlite().store); } )* }
        mod postgres_backend { $( #[test] fn $name() { if let Some(b) = super::postgres() { super::$name(&*b.store); } } )* }
    };
}

conformance!(
    tenants_keys_and_users,
    dedup_is_per_write_key_and_quarantine_is_listed,
    dedup_window_spans_days_of_arrival,
    anonymous_history_joins_the_identified_customer,
    owners_follow_merges_and_erasures_across_commits,
    two_user_ids_never_merge_and_the_drop_is_recorded,
    timeline_is_newest_first_and_paginates,
    a_customers_events_are_found_indexed_or_not,
    rebuild_equals_incremental,
    one_request_equals_one_event_at_a_time,
    blocking_an_identifier_unmerges,
    overview_counts_by_day_and_channel,
    tenants_are_isolated,
    feedback_is_idempotent_and_rolled_up,
    surveys_are_versioned_and_links_count,
    answers_link_to_accounts_and_slice_by_tier,
    themes_persist_and_count,
    journeys_are_versioned_and_progress_is_saved_once,
    decisions_chain_and_reviews_settle_once,
    signing_keys_messages_and_checkpoints,
    event_blocks_copy_the_log_and_go_with_an_erasure,
);

/// SQLite with its identifier index catching up every few events, so that reads and
/// erasures span the indexed part of the log and the tail it has not reached.
mod sqlite_short_index_lag {
    fn store() -> super::Backend {
        let dir = tempfile::tempdir().unwrap();
        let settings = super::StoreSettings {
            identifier_index_lag: 7,
            ..Default::default()
        };
        let store = super::SqliteStore::open_dir(dir.path(), settings).unwrap();
        super::Backend {
            store: std::sync::Arc::new(store),
            _guard: Box::new(dir),
        }
    }
    #[test]
    fn a_customers_events_are_found_indexed_or_not() {
        super::a_customers_events_are_found_indexed_or_not(&*store().store);
    }
    #[test]
    fn timeline_is_newest_first_and_paginates() {
        super::timeline_is_newest_first_and_paginates(&*store().store);
    }
    #[test]
    fn event_blocks_copy_the_log_and_go_with_an_erasure() {
        super::event_blocks_copy_the_log_and_go_with_an_erasure(&*store().store);
    }
    #[test]
    fn blocking_an_identifier_unmerges() {
        super::blocking_an_identifier_unmerges(&*store().store);
    }
}

fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn events(msgs: &[Value]) -> Vec<cxm_domain::NormalizedEvent> {
    let clock = Clock {
        received_at: base() + Duration::days(30),
        batch_sent_at: None,
    };
    let opts = IngestOptions {
        trust_timestamps: true,
        ..Default::default()
    };
    msgs.iter()
        .map(|m| cxm_domain::normalize(m, 10, &clock, &opts).unwrap())
        .collect()
}

fn at(minutes: i64) -> String {
    (base() + Duration::minutes(minutes)).to_rfc3339()
}

fn req(tenant: &str, key: &str, msgs: &[Value]) -> AppendRequest {
    AppendRequest {
        tenant_id: tenant.into(),
        write_key_id: key.into(),
        events: events(msgs),
        quarantined: Default::default(),
    }
}

fn profile_of(s: &dyn Store, tenant: &str, typed: &str) -> Profile {
    let pid = s
        .profile_for(tenant, &Identifier::parse_typed(typed).unwrap())
        .unwrap()
        .unwrap_or_else(|| panic!("{typed} has no profile"));
    s.profile(tenant, &pid).unwrap().unwrap()
}
