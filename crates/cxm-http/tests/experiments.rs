//! Experiments over HTTP on real data: a definition is checked, 400 customers are assigned
//! deterministically and exposed, conversions arrive as ordinary events, the results count
//! exactly what was sent, a breached guardrail rolls the rollout back on its own (and the
//! audit chain still verifies), overriding needs a reason, and shipping fixes the arm.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.post(path, &app.secret_key, &body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn definition() -> Value {
    json!({"id": "checkout-copy", "name": "Shorter checkout copy", "owner": "ana-pm", "kind": "journey",
        "hypothesis": "fewer words, more orders", "target": "onboarding",
        "arms": [{"key": "control"}, {"key": "short"}],
        "metric": {"event": "Order Completed", "window_days": 14},
        "guardrails": [{"event": "Churn Notice", "direction": "decrease", "max_relative_change": 0.1}],
        "mde": 0.2})
}

async fn experiments_run_end_to_end(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    // bad definitions are named
    for (field, value, says) in [
        ("arms", json!([{"key": "control"}]), "2 to 10 arms"),
        ("owner", json!(""), "owner"),
        (
            "metric",
            json!({"event": "Order Completed", "window_days": 900}),
            "window_days",
        ),
    ] {
        let mut d = definition();
        d[field] = value;
        let (s, b) = post(&app, "/api/v1/experiments", d).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (422, Some("invalid_definition")),
            "{b}"
        );
        assert!(b["detail"].as_str().unwrap().contains(says), "{b}");
    }
    let (s, b) = post(&app, "/api/v1/experiments", definition()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "draft");
    let (s, b) = post(&app, "/api/v1/experiments", definition()).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("conflict")));

    // a draft assigns nobody
    let (s, a) = post(
        &app,
        "/api/v1/experiments/checkout-copy/assign",
        json!({"customer": "u-1"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (a["arm"].as_str(), a["enrolled"].as_bool()),
        (Some("control"), Some(false))
    );
    let (s, b) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "shipped", "arm": "short"}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("invalid_transition")),
        "{b}"
    );
    let (s, _) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "running"}),
    )
    .await;
    assert_eq!(s, 200);
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/experiments/checkout-copy",
            &definition(),
        )
        .await;
    assert_eq!(r.status(), 409, "a running experiment's design is fixed");

    // 400 known customers, each assigned twice: the same arm both times
    let users: Vec<String> = (0..400).map(|i| format!("u-{i}")).collect();
    let batch: Vec<Value> = users
        .iter()
        .map(|u| json!({"type": "identify", "userId": u, "traits": {"email": format!("{u}@example.com")}}))
        .collect();
    assert_eq!(app.batch(json!({ "batch": batch })).await.status(), 200);
    let mut arm_of = std::collections::HashMap::new();
    for u in &users {
        let (_, a) = post(
            &app,
            "/api/v1/experiments/checkout-copy/assign",
            json!({"customer": u}),
        )
        .await;
        assert_eq!(a["enrolled"], true, "{a}");
        let (_, again) = post(
            &app,
            "/api/v1/experiments/checkout-copy/assign",
            json!({"customer": format!("user_id:{u}")}),
        )
        .await;
        // the same person named another way is the same unit
        assert_eq!(a["arm"], again["arm"]);
        arm_of.insert(u.clone(), a["arm"].as_str().unwrap().to_string());
    }
    // orders: 20 % of the control's customers, 40 % of the treatment's
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    let (mut orders, mut churn) = (vec![], vec![]);
    let mut expected = std::collections::HashMap::<String, (u64, u64, u64)>::new();
    for u in &users {
        let arm = arm_of[u].as_str();
        let k = *seen.entry(arm).and_modify(|k| *k += 1).or_insert(0);
        let (order, churned) = if arm == "control" {
            (k.is_multiple_of(5), k % 5 == 1)
        } else {
            (k % 5 < 2, !k.is_multiple_of(5))
        };
        let e = expected.entry(arm.to_string()).or_default();
        e.0 += 1;
        e.1 += u64::from(order);
        e.2 += u64::from(churned);
        if order {
            orders.push(json!({"type": "track", "userId": u, "event": "Order Completed", "properties": {"revenue": 40}}));
        }
        if churned {
            churn.push(json!({"type": "track", "userId": u, "event": "Churn Notice"}));
        }
    }
    assert_eq!(app.batch(json!({ "batch": orders })).await.status(), 200);

    let r = app
        .get_json("/api/v1/experiments/checkout-copy/results")
        .await;
    assert_eq!(r["units"], 400, "{r}");
    let (cn, cx, _) = expected["control"];
    let (tn, tx, _) = expected["short"];
    let cmp = &r["primary"]["comparisons"][0];
    assert_eq!(cmp["arm"], "short");
    assert!(
        (cmp["control_rate"].as_f64().unwrap() - cx as f64 / cn as f64).abs() < 1e-12,
        "{cmp}"
    );
    assert!(
        (cmp["rate"].as_f64().unwrap() - tx as f64 / tn as f64).abs() < 1e-12,
        "{cmp}"
    );
    let lift = (tx as f64 / tn as f64) / (cx as f64 / cn as f64) - 1.0;
    assert!((cmp["stats"]["relative"]["expected"].as_f64().unwrap() - lift).abs() < 1e-12);
    assert!(r["srm_p_value"].as_f64().unwrap() > 0.001, "{r}");
    assert_eq!(r["guardrails"][0]["breached"], false, "{r}");
    assert_eq!(r["rolled_back"], false);

    // churn notices pile up in the treatment: the guardrail rolls it back
    assert_eq!(app.batch(json!({ "batch": churn })).await.status(), 200);
    let r = app
        .get_json("/api/v1/experiments/checkout-copy/results")
        .await;
    assert_eq!(r["guardrails"][0]["breached"], true, "{r}");
    assert_eq!(r["rolled_back"], true);
    let e = app.get_json("/api/v1/experiments/checkout-copy").await;
    assert_eq!(
        (e["status"].as_str(), e["rollout_percent"].as_f64()),
        (Some("rolled_back"), Some(0.0))
    );
    let last = e["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["actor"].as_str()),
        (Some("rolled_back"), Some("cxm:guardrail")),
        "{e}"
    );
    let (_, a) = post(
        &app,
        "/api/v1/experiments/checkout-copy/assign",
        json!({"customer": "u-3"}),
    )
    .await;
    assert_eq!(
        (a["arm"].as_str(), a["enrolled"].as_bool()),
        (Some("control"), Some(false))
    );
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");

    // overriding a guardrail needs a reason, and restarts at the smallest canary
    let (s, b) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "running"}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{b}"
    );
    let (s, b) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "running", "reason": "churn notices were a billing-system replay"}),
    )
    .await;
    assert_eq!((s, b["rollout_percent"].as_f64()), (200, Some(1.0)), "{b}");
    let (s, b) = post(
        &app,
        "/api/v1/experiments/checkout-copy/rollout",
        json!({"percent": 150}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, _) = post(
        &app,
        "/api/v1/experiments/checkout-copy/rollout",
        json!({"percent": 20, "reason": "canary step"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "shipped", "arm": "nope"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, _) = post(
        &app,
        "/api/v1/experiments/checkout-copy/status",
        json!({"status": "shipped", "arm": "short"}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, a) = post(
        &app,
        "/api/v1/experiments/checkout-copy/assign",
        json!({"customer": "someone-new"}),
    )
    .await;
    assert_eq!(a["arm"], "short");
    let list = app.get_json("/api/v1/experiments").await;
    assert_eq!(list[0]["exposures"], 400);
    let actions: Vec<&str> = list[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "created",
            "started",
            "rolled_back",
            "started",
            "rollout",
            "shipped"
        ]
    );

    // the calculators
    let n = app
        .get_json("/api/v1/stats/sample-size?baseline=0.1&mde=0.2")
        .await;
    assert_eq!(n["units_per_arm"], 3835, "{n}");
    let r = app
        .get("/api/v1/stats/sample-size?baseline=2&mde=0.2")
        .await;
    assert_eq!(r.status(), 400);
    let (s, b) = post(
        &app,
        "/api/v1/stats/ab",
        json!({"control": {"exposures": 10, "conversions": 11}, "treatment": {"exposures": 10, "conversions": 1}}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{b}"
    );
    let (s, b) = post(
        &app,
        "/api/v1/stats/ab",
        json!({"control": {"exposures": 1000, "conversions": 100}, "treatment": {"exposures": 1000, "conversions": 120}}),
    )
    .await;
    assert_eq!(s, 200);
    assert!((b["relative"]["expected"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    app.stop().await;
}

async fn no_exposures_and_a_broken_split_are_said(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let mut d = definition();
    d["id"] = json!("empty");
    d["guardrails"] = json!([]);
    assert_eq!(post(&app, "/api/v1/experiments", d).await.0, 201);
    let r = app.get_json("/api/v1/experiments/empty/results").await;
    assert_eq!(r["units"], 0);
    let w = r["warnings"].to_string();
    assert!(w.contains("no exposures yet"), "{w}");
    assert!(w.contains("no event named"), "{w}");
    assert_eq!(
        r["primary"]["comparisons"][0]["stats"],
        Value::Null,
        "no numbers without data"
    );
    // exposure logging that loses most of one arm: the split is flagged
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..600 {
            let arm = if i < 500 { "control" } else { "short" };
            store
                .expose(
                    &tenant_of(&store),
                    &cxm_store::Exposure {
                        experiment_id: "empty".into(),
                        unit: format!("x-{i}"),
                        customer: format!("x-{i}"),
                        profile_id: None,
                        arm: arm.into(),
                        first_at_ms: 1,
                    },
                )
                .unwrap();
        }
    })
    .await
    .unwrap();
    let r = app.get_json("/api/v1/experiments/empty/results").await;
    assert_eq!(r["sample_ratio_mismatch"], true, "{r}");
    assert!(r["warnings"].to_string().contains("sample ratio mismatch"));
    assert!(app.get("/api/v1/experiments/nope/results").await.status() == 404);
    app.stop().await;
}

/// CSAT and repeat contact as metrics: only customers who answered count for CSAT, and a
/// repeat contact is a second contact within 7 days.
async fn csat_and_repeat_contact(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let d = json!({"id": "bot-tone", "name": "Warmer bot tone", "owner": "support-lead", "kind": "automation",
        "arms": [{"key": "control"}, {"key": "warm"}],
        "metric": {"kind": "csat", "window_days": 7},
        "guardrails": [{"kind": "repeat_contact", "direction": "decrease", "max_relative_change": 0.5}]});
    let (s, b) = post(&app, "/api/v1/experiments", d).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        post(
            &app,
            "/api/v1/experiments/bot-tone/status",
            json!({"status": "running"})
        )
        .await
        .0,
        200
    );
    let users: Vec<String> = (0..60).map(|i| format!("c-{i}")).collect();
    let ids: Vec<Value> = users
        .iter()
        .map(|u| json!({"type": "identify", "userId": u}))
        .collect();
    assert_eq!(app.batch(json!({ "batch": ids })).await.status(), 200);
    let mut arm_of = std::collections::HashMap::new();
    for u in &users {
        let (_, a) = post(
            &app,
            "/api/v1/experiments/bot-tone/assign",
            json!({"customer": u}),
        )
        .await;
        arm_of.insert(u.clone(), a["arm"].as_str().unwrap().to_string());
    }
    // every third customer answers CSAT: 5 in the warm arm, 2 in the control; every fourth
    // contacts support twice
    let (mut answers, mut contacts) = (vec![], vec![]);
    let mut want = std::collections::HashMap::<&str, (u64, u64, u64, u64)>::new();
    for (i, u) in users.iter().enumerate() {
        let arm = arm_of[u].as_str();
        let e = want
            .entry(if arm == "warm" { "warm" } else { "control" })
            .or_default();
        e.0 += 1;
        if i % 3 == 0 {
            let happy = arm == "warm" || i % 2 == 0;
            let score = if happy { 5 } else { 2 };
            answers.push(json!({"response_id": format!("r-{i}"), "question": "csat", "type": "csat", "value": score, "identifier": format!("user_id:{u}")}));
            e.2 += 1;
            e.3 += u64::from(happy);
        }
        if i % 4 == 0 {
            for _ in 0..2 {
                contacts.push(json!({"type": "track", "userId": u, "event": "Ticket Opened"}));
            }
            e.1 += 1;
        }
    }
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({ "answers": answers }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.batch(json!({ "batch": contacts })).await.status(), 200);
    let r = app.get_json("/api/v1/experiments/bot-tone/results").await;
    let c = &r["primary"]["comparisons"][0];
    assert_eq!(r["primary"]["event"], "CSAT (top two box)");
    let (w_n, c_n) = (want["warm"].2, want["control"].2);
    assert_eq!(
        c["stats"]["treatment"]["n"], w_n,
        "only answering customers count: {c}"
    );
    assert_eq!(c["stats"]["control"]["n"], c_n, "{c}");
    let rate = |k: &str| want[k].3 as f64 / want[k].2 as f64;
    assert!(
        (c["rate"].as_f64().unwrap() - rate("warm")).abs() < 1e-12,
        "{c}"
    );
    assert!(
        (c["control_rate"].as_f64().unwrap() - rate("control")).abs() < 1e-12,
        "{c}"
    );
    let g = &r["guardrails"][0];
    assert_eq!(g["event"], "repeat Ticket Opened within 7 days");
    // the repeat-contact rate per arm, checked through the interval's centre
    let repeat = |k: &str| want[k].1 as f64 / want[k].0 as f64;
    let ci = &g["intervals"]["warm"];
    let mid = (ci[0].as_f64().unwrap() + ci[1].as_f64().unwrap()) / 2.0;
    assert!(
        (mid - (repeat("warm") / repeat("control") - 1.0)).abs() < 1e-9,
        "{g} {want:?}"
    );
    assert_eq!(r["units"], 60);
    app.stop().await;
}

#[tokio::test]
async fn csat_and_repeat_contact_on_sqlite() {
    csat_and_repeat_contact(Backend::Sqlite).await;
}

#[tokio::test]
async fn csat_and_repeat_contact_on_postgres() {
    csat_and_repeat_contact(Backend::Postgres).await;
}

/// A policy change on a staged rollout: customers in the candidate arm are decided by the
/// saved (inactive) version, the others by the active one; rolling back puts everyone on the
/// active version again.
async fn policy_rollout(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    assert_eq!(
        app.post(
            "/api/v1/agents",
            &app.secret_key,
            &json!({"name": "billing-bot"})
        )
        .await
        .status(),
        201
    );
    let active = app.get_json("/api/v1/policies").await;
    // the candidate sends refunds from 20 to 50 to a human review
    let text = active["text"]
        .as_str()
        .unwrap()
        .replace("context.amount_cents < 5000", "context.amount_cents < 2000")
        .replace(
            "context.amount_cents >= 5000 &&",
            "context.amount_cents >= 2000 &&",
        );
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/policies",
            &json!({"text": text, "activate": false, "note": "stricter small refunds"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut d = json!({"id": "stricter-refunds", "name": "Stricter small refunds", "owner": "risk-lead", "kind": "policy",
        "target": "9", "arms": [{"key": "current"}, {"key": "candidate"}], "metric": {"event": "Ticket Opened"}});
    let (s, b) = post(&app, "/api/v1/experiments", d.clone()).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (422, Some("invalid_definition")),
        "{b}"
    );
    d["target"] = json!("2");
    assert_eq!(post(&app, "/api/v1/experiments", d).await.0, 201);
    assert_eq!(
        post(
            &app,
            "/api/v1/experiments/stricter-refunds/status",
            json!({"status": "running"})
        )
        .await
        .0,
        200
    );
    let ask = |c: String| json!({"agent": "billing-bot", "action": "refund", "customer": c, "context": {"amount": 30}});
    let mut seen = std::collections::HashMap::<i64, Vec<String>>::new();
    for i in 0..40 {
        let (s, b) = post(&app, "/api/v1/decisions", ask(format!("user_id:r-{i}"))).await;
        assert_eq!(s, 200, "{b}");
        let v = b["policy_version"].as_i64().unwrap();
        let want = if v == 2 { "review" } else { "allow" };
        assert_eq!(b["decision"], want, "{b}");
        seen.entry(v).or_default().push(format!("user_id:r-{i}"));
    }
    assert!(
        seen.get(&1).is_some_and(|v| v.len() > 5) && seen.get(&2).is_some_and(|v| v.len() > 5),
        "{seen:?}"
    );
    let assign = |c: &str| json!({"customer": c});
    for c in &seen[&2] {
        let (_, a) = post(
            &app,
            "/api/v1/experiments/stricter-refunds/assign",
            assign(c),
        )
        .await;
        assert_eq!(
            a["arm"], "candidate",
            "the decision path and assignment agree"
        );
    }
    let r = app
        .get_json("/api/v1/experiments/stricter-refunds/results")
        .await;
    assert_eq!(r["units"], 40, "every asked customer was exposed: {r}");
    // rolled back: the active version decides for everyone (the rollout cache lives 2 s)
    let (s, _) = post(
        &app,
        "/api/v1/experiments/stricter-refunds/status",
        json!({"status": "rolled_back", "reason": "too many reviews"}),
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, b) = post(&app, "/api/v1/decisions", ask(seen[&2][0].clone())).await;
    assert_eq!(
        (b["policy_version"].as_i64(), b["decision"].as_str()),
        (Some(1), Some("allow")),
        "{b}"
    );
    app.stop().await;
}

#[tokio::test]
async fn policy_rollout_on_sqlite() {
    policy_rollout(Backend::Sqlite).await;
}

#[tokio::test]
async fn policy_rollout_on_postgres() {
    policy_rollout(Backend::Postgres).await;
}

/// SDKs that assign on their own report `Experiment Viewed` events; those are exposures too.
async fn sdk_exposure_events(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let d = json!({"id": "hero-banner", "name": "Hero banner", "owner": "web", "kind": "journey",
        "arms": [{"key": "control"}, {"key": "banner"}], "metric": {"event": "Signed Up"}});
    assert_eq!(post(&app, "/api/v1/experiments", d).await.0, 201);
    let mut batch = vec![];
    let mut signed = [0u64; 2];
    for i in 0..20 {
        let arm = if i % 2 == 0 { "control" } else { "banner" };
        batch.push(json!({"type": "track", "anonymousId": format!("anon-{i}"), "event": "Experiment Viewed",
            "properties": {"experiment_id": "hero-banner", "variation_id": arm}}));
        if i % 4 < 2 && (arm == "banner" || i % 8 == 0) {
            batch.push(
                json!({"type": "track", "anonymousId": format!("anon-{i}"), "event": "Signed Up"}),
            );
            signed[i % 2] += 1;
        }
    }
    batch.push(
        json!({"type": "track", "anonymousId": "anon-x", "event": "Experiment Viewed",
        "properties": {"experiment_id": "hero-banner", "variation_id": "purple"}}),
    );
    batch.push(
        json!({"type": "track", "anonymousId": "anon-y", "event": "Experiment Viewed",
        "properties": {"experiment_id": "another-test", "variation_id": "control"}}),
    );
    assert_eq!(app.batch(json!({ "batch": batch })).await.status(), 200);
    let r = app
        .get_json("/api/v1/experiments/hero-banner/results")
        .await;
    assert_eq!(r["units"], 20, "{r}");
    assert_eq!(
        (
            r["arms"][0]["units"].as_u64(),
            r["arms"][1]["units"].as_u64()
        ),
        (Some(10), Some(10))
    );
    let c = &r["primary"]["comparisons"][0];
    assert!(
        (c["control_rate"].as_f64().unwrap() - signed[0] as f64 / 10.0).abs() < 1e-12,
        "{c}"
    );
    assert!(
        (c["rate"].as_f64().unwrap() - signed[1] as f64 / 10.0).abs() < 1e-12,
        "{c}"
    );
    assert!(
        r["warnings"]
            .to_string()
            .contains("variation_id that is not an arm"),
        "{}",
        r["warnings"]
    );
    app.stop().await;
}

#[tokio::test]
async fn sdk_exposures_on_sqlite() {
    sdk_exposure_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn sdk_exposures_on_postgres() {
    sdk_exposure_events(Backend::Postgres).await;
}

fn tenant_of(store: &std::sync::Arc<dyn cxm_store::Store>) -> String {
    store.list_tenants().unwrap()[0].id.clone()
}

#[tokio::test]
async fn experiments_on_sqlite() {
    experiments_run_end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn experiments_on_postgres() {
    experiments_run_end_to_end(Backend::Postgres).await;
}

#[tokio::test]
async fn experiment_warnings_on_sqlite() {
    no_exposures_and_a_broken_split_are_said(Backend::Sqlite).await;
}

#[tokio::test]
async fn experiment_warnings_on_postgres() {
    no_exposures_and_a_broken_split_are_said(Backend::Postgres).await;
}
