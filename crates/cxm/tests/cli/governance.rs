//! Policies, agents, the audit log and retention from the command line.

use super::*;

#[test]
pub(crate) fn policies_agents_and_a_tamper_evident_audit_log_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let ok = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // the default matrix is there before anything is applied
    let matrix = ok(cxm(dir.path()).args(["policy", "show", "--tenant", tenant]));
    assert!(
        matrix.contains("refund-50-to-200") && matrix.contains("L2"),
        "{matrix}"
    );
    // a bad file is refused with the problem; a good one becomes version 2
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&bad, "@id(\"x\") permit(principal, action, resource);").unwrap();
    let out = cxm(dir.path())
        .args(["policy", "apply", "--tenant", tenant])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no @level"));
    let good = dir.path().join("good.cedar");
    std::fs::write(
        &good,
        cxm_policy::DEFAULT_POLICIES.replace("< 5000", "< 2500"),
    )
    .unwrap();
    let tested = run_json(
        cxm(dir.path())
            .args(["policy", "test", "--tenant", tenant, "--json"])
            .arg(&good),
    );
    assert_eq!(tested["replayed"], 0);
    let applied = ok(cxm(dir.path())
        .args(["policy", "apply", "--tenant", tenant, "--note", "tighter"])
        .arg(&good));
    assert!(applied.contains("saved version 2 (active)"), "{applied}");
    ok(cxm(dir.path()).args([
        "agent",
        "add",
        "--tenant",
        tenant,
        "billing-bot",
        "--kind",
        "voice",
    ]));
    let key = ok(cxm(dir.path()).args(["agent", "key", "--tenant", tenant, "billing-bot"]));
    assert!(key.trim().starts_with("cxm_ak_"));
    let agents = run_json(cxm(dir.path()).args(["agent", "list", "--tenant", tenant, "--json"]));
    assert_eq!(agents[0]["agent"]["kind"], "voice");

    // policy saved + activated (twice), agent saved, key made: six entries, intact
    let v = run_json(cxm(dir.path()).args(["audit", "verify", "--json"]));
    assert_eq!(v[0]["report"]["ok"], true, "{v}");
    assert_eq!(v[0]["report"]["entries"], 6);

    // an edit behind the store's back is named, and the command fails
    let db = cxm_store::testing::SqlTarget::Sqlite(dir.path().join("cxm.db"));
    cxm_store::testing::execute_sql(
        &db,
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else' WHERE seq = 3;",
    );
    let out = cxm(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("BROKEN at entry 3") && said.contains("altered"),
        "{said}"
    );
    // and so is a deletion
    cxm_store::testing::execute_sql(
        &db,
        "UPDATE audit_log SET actor = 'cli' WHERE seq = 3; DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;",
    );
    let out = cxm(dir.path())
        .args(["audit", "verify", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("entry 2 is missing"), "{said}");
}

#[test]
pub(crate) fn retention_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    run_json(cxm(dir.path()).args([
        "generate", "--events", "2000", "--seed", "3", "--tenant", tenant,
    ]));
    let set = run_json(cxm(dir.path()).args([
        "retention",
        "set",
        "--tenant",
        tenant,
        "--class",
        "events",
        "--days",
        "30",
    ]));
    assert_eq!(set["events"], 30);
    let out = cxm(dir.path())
        .args([
            "retention",
            "set",
            "--tenant",
            tenant,
            "--class",
            "mail",
            "--days",
            "3",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no data class"));
    let purged = run_json(cxm(dir.path()).args(["retention", "purge", "--tenant", tenant]));
    assert!(
        purged["events"].as_u64().unwrap() > 0,
        "the generator spreads events over more than 30 days: {purged}"
    );
    let again = run_json(cxm(dir.path()).args(["retention", "purge", "--tenant", tenant]));
    assert_eq!(again["events"], 0);
    let kept = run_json(cxm(dir.path()).args([
        "retention",
        "set",
        "--tenant",
        tenant,
        "--class",
        "events",
        "--keep",
    ]));
    assert!(kept.get("events").is_none());
    let shown = run_json(cxm(dir.path()).args(["retention", "show", "--tenant", tenant, "--json"]));
    // quarantine is the one class with a default period
    assert_eq!(shown, json!({"quarantine": 30}));
    // people read a table
    let table = cxm(dir.path())
        .args(["retention", "show", "--tenant", tenant])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("events          until erased") && text.contains("quarantine      30 days"),
        "{text}"
    );
}
