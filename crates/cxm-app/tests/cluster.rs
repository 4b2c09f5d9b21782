//! Three keepers sharing a PostgreSQL database: every partition gets an owner, each node a
//! fair share; when a node stops renewing its partitions pass to the others with larger
//! epochs, and when it comes back it gets its share again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cxm_app::cluster::{status, Keeper, Membership};
use cxm_store::testing::{pg_admin_url, TestDb};
use cxm_store::{PgStore, Store, StoreSettings};

const P: u32 = 16;

fn owners(s: &PgStore) -> HashMap<i32, (String, i64)> {
    s.cluster()
        .unwrap()
        .leases()
        .unwrap()
        .into_iter()
        .filter(|l| !l.expired)
        .map(|l| (l.partition, (l.owner, l.epoch)))
        .collect()
}

#[test]
fn partitions_follow_the_live_nodes() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let db = TestDb::create(&admin);
    let s = PgStore::connect(&db.url, StoreSettings::default()).unwrap();
    let c = s.cluster().unwrap();
    let ttl = Duration::from_secs(2);
    let mut nodes: Vec<Keeper> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| Keeper::new(Membership::new(n, P, ttl).unwrap()))
        .collect();
    // a few rounds settle it: every partition owned, nobody over its share
    for _ in 0..8 {
        for k in nodes.iter_mut() {
            k.round(c).unwrap();
        }
    }
    let first = owners(&s);
    assert_eq!(first.len(), P as usize, "{first:?}");
    for k in &nodes {
        let held = k.held().len();
        assert!((5..=6).contains(&held), "{}: {held}", k.membership.node);
        for (p, epoch) in k.held() {
            assert_eq!(first[&p], (k.membership.node.clone(), epoch));
        }
    }
    assert!(status(c, P).unwrap().unowned.is_empty());

    // n3 stops renewing (a dead process): once its leases expire the others take them over
    let dead: Vec<i32> = nodes[2].held().into_iter().map(|(p, _)| p).collect();
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        for k in nodes.iter_mut().take(2) {
            k.round(c).unwrap();
        }
        if owners(&s).values().all(|(o, _)| o != "n3") && owners(&s).len() == P as usize {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no takeover: {:?}",
            owners(&s)
        );
    }
    let after = owners(&s);
    for p in &dead {
        assert!(
            after[p].1 > first[p].1,
            "partition {p} changed hands with a larger epoch"
        );
    }
    assert!(
        nodes[2].epoch_of(dead[0]).is_none(),
        "n3's own clock says its lease is over"
    );
    assert_eq!(nodes[0].held().len() + nodes[1].held().len(), P as usize);

    // n3 comes back as a new process: the others give back down to their share
    nodes[2] = Keeper::new(Membership::new("n3", P, ttl).unwrap());
    for _ in 0..8 {
        for k in nodes.iter_mut() {
            k.round(c).unwrap();
        }
    }
    let back = owners(&s);
    assert_eq!(back.len(), P as usize);
    assert!(
        nodes.iter().all(|k| (5..=6).contains(&k.held().len())),
        "{back:?}"
    );
    // and the same node id twice is refused while the first is alive
    let mut twin = Keeper::new(Membership::new("n1", P, ttl).unwrap());
    let e = twin.round(c).unwrap_err();
    assert!(e.detail.contains("in use"), "{}", e.detail);
    // epochs only ever grew
    for p in 0..P as i32 {
        let h = c.lease_history(p).unwrap();
        assert!(h.windows(2).all(|w| w[0].0 < w[1].0), "{p}: {h:?}");
    }
    // a clean stop hands everything over at once
    nodes[0].leave(c).unwrap();
    let left = owners(&s);
    assert!(left.values().all(|(o, _)| o != "n1"), "{left:?}");
}
