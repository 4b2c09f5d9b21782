//! The decision log on the audit chain, and reviews that settle once.

use super::*;

pub(crate) fn decision(id: &str, at_ms: i64) -> cxm_domain::decision::DecisionRecord {
    cxm_domain::decision::DecisionRecord {
        id: id.into(),
        agent: "billing-bot".into(),
        action: "refund".into(),
        customer: "u-1".into(),
        resource: Some("order-9".into()),
        request: json!({"amount": 75.0}),
        facts: json!({"amount_cents": 7500}),
        used: json!({"profile": "p-1"}),
        policy_version: 1,
        outcome: "review".into(),
        level: "L2".into(),
        policy_ids: vec!["refund-50-to-200".into()],
        reasons: vec!["refunds from 50 to 200 are reviewed".into()],
        at_ms,
    }
}

pub(crate) fn decisions_chain_and_reviews_settle_once(s: &dyn Store) {
    use cxm_domain::audit::ChainCheck;
    use cxm_domain::decision::{Review, ReviewVerdict};
    let t = s.create_tenant("Acme").unwrap().id;
    let other = s.create_tenant("Other").unwrap().id;
    let v = s
        .save_policy_set(&t, "// v1", "first", "admin@acme", true)
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(
        s.save_policy_set(&t, "// v2", "draft", "admin@acme", false)
            .unwrap(),
        2
    );
    assert_eq!(s.active_policy_set(&t).unwrap().unwrap().version, 1);
    assert!(s.activate_policy_set(&t, 2, "admin@acme").unwrap());
    assert!(!s.activate_policy_set(&t, 9, "admin@acme").unwrap());
    assert_eq!(s.active_policy_set(&t).unwrap().unwrap().version, 2);
    assert_eq!(s.policy_sets(&t).unwrap().len(), 2);
    assert!(s.active_policy_set(&other).unwrap().is_none());

    let batch: Vec<NewDecision> = (0..3)
        .map(|i| NewDecision {
            tenant_id: if i == 2 { other.clone() } else { t.clone() },
            actor: "agent:billing-bot".into(),
            record: decision(&format!("dec_{i}"), 1_000 + i),
            review_due_at_ms: (i != 1).then_some(5_000),
        })
        .collect();
    s.record_decisions(&batch).unwrap();
    let d0 = s.decision(&t, "dec_0").unwrap().unwrap();
    assert_eq!(d0.record, decision("dec_0", 1_000));
    assert_eq!(d0.review_status.as_deref(), Some("pending"));
    assert!(
        s.decision(&t, "dec_2").unwrap().is_none(),
        "another tenant's decision"
    );
    let q = DecisionQuery {
        review_status: Some("pending".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.decisions(&t, &q).unwrap().len(), 1);
    let all = DecisionQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.decisions(&t, &all)
            .unwrap()
            .iter()
            .map(|d| d.record.id.as_str())
            .collect::<Vec<_>>(),
        ["dec_1", "dec_0"]
    );

    let review = |id: &str| Review {
        decision_id: id.into(),
        verdict: ReviewVerdict::Reversed,
        by: "lead@acme".into(),
        reason: "too generous".into(),
        at_ms: 2_000,
    };
    match s.review_decision(&t, &review("dec_0")).unwrap() {
        ReviewResult::Done(d) => assert_eq!(d.review_status.as_deref(), Some("reversed")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.review_decision(&t, &review("dec_0")).unwrap(),
        ReviewResult::NotPending(_)
    ));
    assert!(matches!(
        s.review_decision(&t, &review("dec_1")).unwrap(),
        ReviewResult::NotPending(_)
    ));
    assert!(matches!(
        s.review_decision(&t, &review("dec_2")).unwrap(),
        ReviewResult::NotFound
    ));
    s.append_audit(
        &t,
        &cxm_domain::audit::NewAuditEntry {
            actor: "admin@acme".into(),
            kind: "ticket.override".into(),
            subject: "tkt_1".into(),
            body: "{}".into(),
        },
    )
    .unwrap();

    // policy saved, saved, activated, two decisions, a review, an override: one unbroken chain
    let entries = s.audit_entries(&t, 0, 100).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        [
            "policy.saved",
            "policy.activated",
            "policy.saved",
            "policy.activated",
            "decision",
            "decision",
            "decision.reviewed",
            "ticket.override"
        ]
    );
    let mut check = ChainCheck::default();
    for e in &entries {
        check.check(e).unwrap();
    }
    let ds = s.decisions_by_audit_seq(&t, 0, 10).unwrap();
    assert_eq!(ds.iter().map(|d| d.audit_seq).collect::<Vec<_>>(), [5, 6]);
    assert_eq!(entries[4].body, ds[0].record.body());
    // the other tenant's chain starts at 1
    assert_eq!(s.audit_entries(&other, 0, 10).unwrap()[0].seq, 1);
    assert_eq!(s.audit_entries(&t, 6, 1).unwrap()[0].seq, 7);

    let agent = Agent {
        name: "billing-bot".into(),
        kind: "bot".into(),
        description: "".into(),
        disclosure: "I'm an automated assistant".into(),
        created_by: "admin".into(),
        created_at_ms: 1,
        disabled_at_ms: None,
    };
    s.save_agent(&t, &agent).unwrap();
    s.save_agent(
        &t,
        &Agent {
            kind: "voice".into(),
            ..agent.clone()
        },
    )
    .unwrap();
    assert_eq!(s.agent(&t, "billing-bot").unwrap().unwrap().kind, "voice");
    assert!(s.agent(&other, "billing-bot").unwrap().is_none());
    assert_eq!(s.agents(&t).unwrap().len(), 1);
}
