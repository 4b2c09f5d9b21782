use super::*;
use proptest::prelude::*;

fn defaults() -> Policies {
    Policies::compile(DEFAULT_POLICIES).unwrap()
}

fn ask_with(p: &Policies, action: &str, facts: Facts) -> Verdict {
    let c = CustomerFacts::default();
    p.authorize(&Ask {
        agent: "billing-bot",
        agent_kind: "bot",
        action,
        customer: "u-1",
        customer_facts: &c,
        facts: &facts,
    })
    .unwrap()
}

fn refund(cents: i64) -> Facts {
    Facts {
        amount_cents: Some(cents),
        currency: Some("USD".into()),
        ..Facts::default()
    }
}

#[test]
fn the_default_matrix() {
    let p = defaults();
    let v = ask_with(&p, "refund", refund(4999));
    assert_eq!((v.outcome, v.level), (Outcome::Allow, Level::L1));
    assert_eq!(v.policy_ids, vec!["refund-under-50"]);
    let v = ask_with(&p, "refund", refund(5000));
    assert_eq!((v.outcome, v.level), (Outcome::Review, Level::L2));
    let v = ask_with(&p, "refund", refund(20000));
    assert_eq!(v.outcome, Outcome::Review);
    // the unassigned 200..500 band fails safe
    let v = ask_with(&p, "refund", refund(30000));
    assert_eq!((v.outcome, v.level), (Outcome::Escalate, Level::L3));
    assert!(v.reasons[0].contains("fail"), "{:?}", v.reasons);
    let v = ask_with(&p, "refund", Facts::default());
    assert_eq!(v.policy_ids, vec!["refund-without-amount"]);
    assert_eq!(
        ask_with(&p, "password_reset", Facts::default()).outcome,
        Outcome::Allow
    );
    assert_eq!(
        ask_with(&p, "address_update", Facts::default()).outcome,
        Outcome::Allow
    );
}

#[test]
fn cues_raise_the_level_above_a_routine_permit() {
    let p = defaults();
    let v = ask_with(
        &p,
        "refund",
        Facts {
            legal_threat: true,
            ..refund(1000)
        },
    );
    assert_eq!(v.outcome, Outcome::Escalate);
    assert_eq!(
        v.policy_ids[0], "legal-threat",
        "the deciding policy leads: {v:?}"
    );
    assert!(v.policy_ids.contains(&"refund-under-50".to_string()));
    for f in [
        Facts {
            rage: true,
            ..Facts::default()
        },
        Facts {
            sentiment: Some(-60),
            ..Facts::default()
        },
        Facts {
            account_takeover: true,
            ..Facts::default()
        },
        Facts {
            human_requested: true,
            ..Facts::default()
        },
    ] {
        assert_eq!(
            ask_with(&p, "password_reset", f.clone()).outcome,
            Outcome::Escalate,
            "{f:?}"
        );
    }
    assert_eq!(
        ask_with(
            &p,
            "password_reset",
            Facts {
                sentiment: Some(-59),
                ..Facts::default()
            }
        )
        .outcome,
        Outcome::Allow
    );
}

#[test]
fn step_up_and_unmatched_actions() {
    let p = defaults();
    assert_eq!(
        ask_with(&p, "contact_change", Facts::default()).outcome,
        Outcome::Review
    );
    let v = ask_with(
        &p,
        "contact_change",
        Facts {
            step_up_verified: true,
            ..Facts::default()
        },
    );
    assert_eq!(v.outcome, Outcome::Allow);
    let v = ask_with(&p, "cancel_subscription", Facts::default());
    assert_eq!((v.outcome, v.level), (Outcome::Escalate, Level::L3));
    assert!(v.policy_ids.is_empty());
    assert!(v.reasons[0].contains("no policy"));
}

#[test]
fn forbid_denies() {
    let text = format!(
        "{DEFAULT_POLICIES}\n@id(\"no-voice-refunds\") @reason(\"voice agents never refund\")\nforbid (principal, action == Cxm::Action::\"refund\", resource) when {{ principal.kind == \"voice\" }};"
    );
    let p = Policies::compile(&text).unwrap();
    let c = CustomerFacts::default();
    let f = refund(100);
    let v = p
        .authorize(&Ask {
            agent: "v",
            agent_kind: "voice",
            action: "refund",
            customer: "u",
            customer_facts: &c,
            facts: &f,
        })
        .unwrap();
    assert_eq!(v.outcome, Outcome::Deny);
    assert_eq!(v.policy_ids, vec!["no-voice-refunds"]);
    assert_eq!(v.reasons, vec!["voice agents never refund"]);
    assert_eq!(ask_with(&p, "refund", refund(100)).outcome, Outcome::Allow);
}

#[test]
fn bad_policies_are_refused_with_the_reason() {
    let e = Policies::compile("permit(principal, action, resource").unwrap_err();
    assert!(matches!(e, PolicyError::Parse(_)), "{e}");
    let e = Policies::compile("@id(\"a\") permit(principal, action, resource);").unwrap_err();
    assert!(e.to_string().contains("no @level"), "{e}");
    let e = Policies::compile("@level(\"L1\") permit(principal, action, resource);").unwrap_err();
    assert!(e.to_string().contains("no @id"), "{e}");
    let e = Policies::compile("@id(\"a\") @level(\"L9\") permit(principal, action, resource);")
        .unwrap_err();
    assert!(e.to_string().contains("L1, L2 or L3"), "{e}");
    let e = Policies::compile(
        "@id(\"a\") @level(\"L1\") permit(principal, action == Cxm::Action::\"fly\", resource);",
    )
    .unwrap_err();
    assert!(matches!(e, PolicyError::Invalid(_)), "{e}");
    let e = Policies::compile(
        "@id(\"a\") @level(\"L1\") permit(principal, action, resource) when { context.amount > 1 };",
    )
    .unwrap_err();
    assert!(matches!(e, PolicyError::Invalid(_)), "{e}");
    let e = Policies::compile(
        "@id(\"a\") @level(\"L1\") permit(principal, action, resource);\n@id(\"a\") @level(\"L2\") permit(principal, action, resource);",
    )
    .unwrap_err();
    assert!(e.to_string().contains("two policies"), "{e}");
}

#[test]
fn unknown_actions_are_errors_not_allows() {
    let p = defaults();
    let c = CustomerFacts::default();
    let f = Facts::default();
    let e = p
        .authorize(&Ask {
            agent: "a",
            agent_kind: "bot",
            action: "launch_rocket",
            customer: "u",
            customer_facts: &c,
            facts: &f,
        })
        .unwrap_err();
    assert!(e.to_string().contains("refund"), "{e}");
}

#[test]
fn lint_flags_a_set_that_allows_everything() {
    assert!(defaults().lint().is_empty(), "{:?}", defaults().lint());
    let p = Policies::compile("@id(\"all\") @level(\"L1\") permit(principal, action, resource);")
        .unwrap();
    let w = p.lint();
    assert_eq!(w.len(), actions().len());
    assert!(w[0].contains("all"));
}

#[test]
fn the_matrix_lists_rules_with_their_actions() {
    let p = defaults();
    let r = p
        .rules()
        .iter()
        .find(|r| r.id == "credit-or-discount")
        .unwrap();
    assert_eq!(r.actions, vec!["credit", "discount"]);
    assert_eq!(r.level, Some(Level::L2));
    let r = p.rules().iter().find(|r| r.id == "legal-threat").unwrap();
    assert!(r.actions.is_empty());
}

proptest! {
    // the default matrix is monotone in the amount: a bigger refund never needs less authority
    #[test]
    fn refunds_never_need_less_authority_as_they_grow(a in 0i64..100_000, b in 0i64..100_000) {
        let p = defaults();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(ask_with(&p, "refund", refund(lo)).level <= ask_with(&p, "refund", refund(hi)).level);
    }

    // whatever the cues, nothing in the defaults ends up allowing once a legal threat is known
    #[test]
    fn a_legal_threat_always_reaches_a_human(cents in proptest::option::of(0i64..1_000_000), idx in 0usize..11, verified: bool) {
        let p = defaults();
        let action = actions()[idx % actions().len()].clone();
        let f = Facts { amount_cents: cents, legal_threat: true, step_up_verified: verified, ..Facts::default() };
        prop_assert_eq!(ask_with(&p, &action, f).outcome, Outcome::Escalate);
    }
}
