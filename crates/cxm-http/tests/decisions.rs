//! Governed agents over HTTP: registered agents ask before acting, the default matrix
//! answers (enriched with what cxm knows of the customer), every decision is chained on
//! the audit log, L2 decisions wait for a review, policies are versioned and tested against
//! the recorded history, and tampering with the log is named.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use reqwest::Method;
use serde_json::{json, Value};

async fn decide(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    let r = app.post("/api/v1/decisions", key, &body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn agents_ask_before_acting(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    // an unknown agent is refused, never allowed
    let (s, b) = decide(
        &app,
        &sk,
        json!({"agent": "ghost", "action": "refund", "customer": "u1", "context": {"amount": 10}}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (422, Some("unknown_agent")), "{b}");

    let r = app
        .post(
            "/api/v1/agents",
            &sk,
            &json!({"name": "billing-bot", "kind": "bot"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let agent: Value = r.json().await.unwrap();
    assert_eq!(agent["disclosure"], "I'm an automated assistant.");
    let r = app
        .post("/api/v1/agents/billing-bot/keys", &sk, &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    let ak = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ak.starts_with("cxm_ak_"));

    // the matrix: under 50 alone, 50–200 reviewed, the unassigned band escalated
    let (s, small) = decide(&app, &ak, json!({"action": "refund", "customer": "user_id:u1", "resource": "order-1", "context": {"amount": 20, "currency": "usd"}})).await;
    assert_eq!(s, 200, "{small}");
    assert_eq!(
        (small["decision"].as_str(), small["level"].as_str()),
        (Some("allow"), Some("L1"))
    );
    assert_eq!(small["policy_ids"], json!(["refund-under-50"]));
    assert!(small["decision_id"].as_str().unwrap().starts_with("dec_"));
    let (_, mid) = decide(
        &app,
        &ak,
        json!({"action": "refund", "customer": "u1", "context": {"amount": 120}}),
    )
    .await;
    assert_eq!(mid["decision"], "review");
    assert!(mid["review_due_at_ms"].as_i64().is_some());
    let (_, gap) = decide(
        &app,
        &ak,
        json!({"action": "refund", "customer": "u1", "context": {"amount": 350}}),
    )
    .await;
    assert_eq!(
        (gap["decision"].as_str(), gap["level"].as_str()),
        (Some("escalate"), Some("L3"))
    );

    // the customer's own words raise the stakes whatever the agent claims
    let (_, threat) = decide(&app, &ak, json!({"action": "refund", "customer": "u1", "context": {"amount": 10, "legal_threat": false, "message": "Refund me now or my lawyer will sue you"}})).await;
    assert_eq!(threat["decision"], "escalate", "{threat}");
    assert_eq!(threat["policy_ids"][0], "legal-threat");
    assert_eq!(threat["used"]["text"]["legal_threat"], true);

    // an agent key speaks for its agent only; write keys never ask
    let (s, b) = decide(
        &app,
        &ak,
        json!({"agent": "other-bot", "action": "refund", "customer": "u1"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")));
    let (s, b) = decide(
        &app,
        &app.write_key,
        json!({"agent": "billing-bot", "action": "refund", "customer": "u1"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (403, Some("wrong_key_kind")));
    // an agent key is not a management key
    let r = app
        .client
        .get(app.url("/api/v1/decisions"))
        .bearer_auth(&ak)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // bad asks: named field, stable code
    for (body, code, says) in [
        (
            json!({"agent": "billing-bot", "action": "launch_rocket", "customer": "u1"}),
            "unknown_action",
            "password_reset",
        ),
        (
            json!({"agent": "billing-bot", "action": "refund", "customer": "u1", "context": {"amount": "lots"}}),
            "invalid_parameter",
            "context.amount",
        ),
        (
            json!({"agent": "billing-bot", "action": "refund", "customer": "u1", "context": {"amount": -5}}),
            "invalid_parameter",
            "context.amount",
        ),
        (
            json!({"agent": "billing-bot", "action": "refund", "customer": "u1", "context": {"step_up_verified": true}}),
            "invalid_parameter",
            "cannot be claimed",
        ),
        (
            json!({"agent": "billing-bot", "action": "refund", "customer": ""}),
            "invalid_parameter",
            "customer",
        ),
        (
            json!({"agent": "billing-bot", "action": "refund", "customer": "u1", "extra": 1}),
            "invalid_parameter",
            "extra",
        ),
        (
            json!({"action": "refund", "customer": "u1"}),
            "invalid_parameter",
            "agent",
        ),
    ] {
        let (s, b) = decide(&app, &sk, body.clone()).await;
        assert!(s == 400 || s == 422, "{body} -> {s} {b}");
        assert_eq!(b["code"], code, "{body} -> {b}");
        assert!(
            b["detail"].as_str().unwrap().contains(says),
            "{body} -> {b}"
        );
    }

    // the review queue: the escalations first, then the L2 review
    let q = app.get_json("/api/v1/reviews").await;
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{q}");
    assert_eq!(items[0]["kind"], "escalation");
    assert_eq!(items[2]["kind"], "review");
    assert!(
        items[2]["summary"]
            .as_str()
            .unwrap()
            .contains("billing-bot wants to refund 120.00"),
        "{}",
        items[2]["summary"]
    );
    let mid_id = mid["decision_id"].as_str().unwrap();
    // a reversal needs a reason; viewers cannot review; a decision is reviewed once
    let r = app
        .post(
            &format!("/api/v1/decisions/{mid_id}/review"),
            &sk,
            &json!({"verdict": "reversed"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let viewer = app.login("viewer@acme.test", cxm_store::Role::Viewer).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/decisions/{mid_id}/review")))
        .header("cookie", &viewer)
        .json(&json!({"verdict": "approved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            &format!("/api/v1/decisions/{mid_id}/review"),
            &sk,
            &json!({"verdict": "reversed", "reason": "the order was never delivered late"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["review_status"], "reversed");
    let r = app
        .post(
            &format!("/api/v1/decisions/{mid_id}/review"),
            &sk,
            &json!({"verdict": "approved"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_pending");
    let small_id = small["decision_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/decisions/{small_id}/review"),
            &sk,
            &json!({"verdict": "approved"}),
        )
        .await;
    assert_eq!(r.status(), 409, "an L1 decision needs no review");
    let r = app
        .post(
            "/api/v1/decisions/dec_forged/review",
            &sk,
            &json!({"verdict": "approved"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .get(app.url("/api/v1/decisions/dec_forged"))
        .bearer_auth(&ak)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/decisions/{small_id}")))
        .bearer_auth(&ak)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an agent can check its own decision");

    // the pages: the queue with the escalations, a reversal through the form, the log
    let op = app
        .login("ops@acme.test", cxm_store::Role::AgentOperator)
        .await;
    let page = |path: &str| {
        let (c, url) = (app.client.clone(), app.url(path));
        let cookie = op.clone();
        async move {
            let r = c.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let queue_page = page("/reviews").await;
    assert!(
        queue_page.contains("data-testid=\"review-queue\"") && queue_page.contains("escalation"),
        "{queue_page}"
    );
    let gap_id = gap["decision_id"].as_str().unwrap();
    assert!(queue_page.contains(gap_id));
    let r = app
        .client
        .post(app.url(&format!("/reviews/{gap_id}")))
        .header("cookie", &op)
        .form(&[
            ("verdict", "reversed"),
            ("reason", "a human refunded it by hand"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app
        .client
        .post(app.url(&format!("/reviews/{gap_id}")))
        .header("cookie", &viewer)
        .form(&[("verdict", "approved")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!page("/reviews").await.contains(gap_id));
    let log = page("/decisions?outcome=escalate").await;
    assert!(
        log.contains(gap_id) && log.contains("a human refunded it by hand"),
        "{log}"
    );
    let agents_page = page("/agents").await;
    assert!(
        agents_page.contains("data-testid=\"authority-matrix\"")
            && agents_page.contains("refund-50-to-200")
    );
    assert!(
        !agents_page.contains("policy-editor"),
        "only admins edit policies"
    );

    // KPIs per agent
    let agents = app.get_json("/api/v1/agents").await;
    let k = &agents["agents"][0];
    assert_eq!(k["decisions"], 4);
    assert_eq!(k["reversed"], 2);
    assert_eq!(k["reversal_rate"], 1.0);
    assert_eq!(k["escalations_by_reason"]["legal-threat"], 1);

    // policies: the default is version 1; a bad set is refused with its problems
    let pol = app.get_json("/api/v1/policies").await;
    assert_eq!(pol["active_version"], 1);
    assert!(pol["warnings"].as_array().unwrap().is_empty());
    assert!(pol["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "refund-50-to-200" && r["level"] == "L2"));
    for (text, says) in [
        ("permit(principal, action, resource", "do not parse"),
        ("@id(\"x\") permit(principal, action, resource);", "no @level"),
        ("@id(\"x\") @level(\"L1\") permit(principal, action == Cxm::Action::\"fly\", resource);", "not valid"),
    ] {
        let r = app.send(Method::PUT, "/api/v1/policies", &json!({"text": text})).await;
        assert_eq!(r.status(), 422, "{text}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["code"], "invalid_policy");
        assert!(b["detail"].as_str().unwrap().contains(says), "{b}");
    }
    // a draft that raises the small-refund limit to 150: tested against history first
    let text = cxm_policy::DEFAULT_POLICIES
        .replace(
            "context.amount_cents < 5000",
            "context.amount_cents < 15000",
        )
        .replace(
            "context.amount_cents >= 5000 &&",
            "context.amount_cents >= 15000 &&",
        );
    let r = app
        .send(
            Method::POST,
            "/api/v1/policies/test",
            &json!({"text": text}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["replayed"], 4);
    assert_eq!(t["changed"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["changed"][0]["decision_id"], mid["decision_id"]);
    assert_eq!(t["transitions"]["review → allow"], 1);
    let r = app
        .send(
            Method::PUT,
            "/api/v1/policies",
            &json!({"text": text, "note": "raise the small refund limit", "activate": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get_json("/api/v1/policies").await["active_version"], 1);
    let r = app
        .send(Method::POST, "/api/v1/policies/2/activate", &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let (_, now_small) = decide(
        &app,
        &ak,
        json!({"action": "refund", "customer": "u1", "context": {"amount": 120}}),
    )
    .await;
    assert_eq!(
        (
            now_small["decision"].as_str(),
            now_small["policy_version"].as_i64()
        ),
        (Some("allow"), Some(2))
    );
    // a set that lets agents do anything alone is saved with a warning
    let r = app.send(Method::PUT, "/api/v1/policies", &json!({"text": "@id(\"yolo\") @level(\"L1\") permit(principal, action, resource);", "activate": false})).await;
    let w: Value = r.json().await.unwrap();
    assert!(w["warnings"][0].as_str().unwrap().contains("yolo"), "{w}");

    // the audit chain holds, and names the first bad entry after an edit
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["decisions"], 5);
    let (sql, stmt) = (
        app.sql.clone(),
        format!("UPDATE decisions SET outcome = 'allow' WHERE id = '{mid_id}'"),
    );
    tokio::task::spawn_blocking(move || cxm_store::testing::execute_sql(&sql, &stmt))
        .await
        .unwrap();
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], false);
    assert!(
        v["broken"]["problem"].as_str().unwrap().contains(mid_id),
        "{v}"
    );
    // a decision row taken away is named too
    let (sql, stmt) = (
        app.sql.clone(),
        format!("DELETE FROM decisions WHERE id = '{mid_id}'"),
    );
    tokio::task::spawn_blocking(move || cxm_store::testing::execute_sql(&sql, &stmt))
        .await
        .unwrap();
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], false);
    let said = v["broken"]["problem"].as_str().unwrap();
    assert!(
        said.contains(mid_id) && said.contains("missing from the decision table"),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn decisions_on_sqlite() {
    agents_ask_before_acting(Backend::Sqlite).await;
}

#[tokio::test]
async fn decisions_on_postgres() {
    agents_ask_before_acting(Backend::Postgres).await;
}

async fn resolution_is_the_agent_kpi(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let ago =
        |d: f64| (chrono::Utc::now() - chrono::Duration::minutes((d * 1440.0) as i64)).to_rfc3339();
    let r = app
        .client
        .post(app.url("/v1/batch?historical=true"))
        .basic_auth(&app.write_key, Some(""))
        .json(&json!({"batch": [
            {"type": "identify", "userId": "ana", "timestamp": ago(30.0)},
            {"type": "identify", "userId": "bo", "timestamp": ago(30.0)},
            {"type": "identify", "userId": "cy", "timestamp": ago(30.0)},
            // bo comes back to chat two days later: not resolved; ana only uses the product
            {"type": "track", "userId": "bo", "event": "Chat Started", "timestamp": ago(6.0)},
            {"type": "track", "userId": "ana", "event": "Feature Used", "timestamp": ago(6.0)}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "billing-bot"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "other-bot"}))
            .await
            .status(),
        201
    );
    // three decisions eight days old (their window is over), logged as the API would
    let at = chrono::Utc::now().timestamp_millis() - 8 * 86_400_000;
    let batch: Vec<cxm_store::NewDecision> = ["ana", "bo", "cy"]
        .iter()
        .map(|c| cxm_store::NewDecision {
            tenant_id: app.tenant.clone(),
            actor: "agent:billing-bot".into(),
            record: cxm_domain::decision::DecisionRecord {
                id: format!("dec_old_{c}"),
                agent: "billing-bot".into(),
                action: "refund".into(),
                customer: format!("user_id:{c}"),
                resource: None,
                request: json!({"amount": 20}),
                facts: json!({"amount_cents": 2000}),
                used: json!({}),
                policy_version: 1,
                outcome: "allow".into(),
                level: "L1".into(),
                policy_ids: vec!["refund-under-50".into()],
                reasons: vec![],
                at_ms: at,
            },
            review_due_at_ms: None,
        })
        .collect();
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.record_decisions(&batch).unwrap())
        .await
        .unwrap();
    let fresh: Value = app.post("/api/v1/decisions", &sk, &json!({"agent": "billing-bot", "action": "refund", "customer": "user_id:ana", "context": {"amount": 10}})).await.json().await.unwrap();
    for (id, resolved) in [
        ("dec_old_ana", true),
        ("dec_old_bo", true),
        ("dec_old_cy", false),
        (fresh["decision_id"].as_str().unwrap(), true),
    ] {
        let r = app
            .post(
                &format!("/api/v1/decisions/{id}/outcome"),
                &sk,
                &json!({"resolved": resolved, "intent": "billing"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{id}");
    }
    // another agent's key cannot report for this one
    let other = app
        .post("/api/v1/agents/other-bot/keys", &sk, &json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            "/api/v1/decisions/dec_old_ana/outcome",
            &other,
            &json!({"resolved": false}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .post(
            "/api/v1/decisions/dec_nope/outcome",
            &sk,
            &json!({"resolved": true}),
        )
        .await;
    assert_eq!(r.status(), 404);

    let k = app.get_json("/api/v1/agents/billing-bot").await;
    assert_eq!(k["reported"], 4, "{k}");
    assert_eq!(
        (
            k["resolved"].as_u64(),
            k["not_resolved"].as_u64(),
            k["resolution_pending"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{k}"
    );
    assert!((k["resolution_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        k["deflection_rate"], 1.0,
        "every ask was handled without a human: deflection says nothing"
    );
    // the outcomes are on the chain
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn resolution_on_sqlite() {
    resolution_is_the_agent_kpi(Backend::Sqlite).await;
}

#[tokio::test]
async fn resolution_on_postgres() {
    resolution_is_the_agent_kpi(Backend::Postgres).await;
}

async fn decisions_are_used_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "billing-bot"}))
            .await
            .status(),
        201
    );
    let ask = |amount: f64, message: &str| json!({"agent": "billing-bot", "action": "refund", "customer": "user_id:u9", "context": {"amount": amount, "message": message}});
    let small: Value = app
        .post("/api/v1/decisions", &sk, &ask(30.0, "it arrived broken"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(small["decision"], "allow");
    let id = small["decision_id"].as_str().unwrap();
    let redeem = |id: &str, body: Value| {
        let (c, url, k) = (
            app.client.clone(),
            app.url(&format!("/api/v1/decisions/{id}/redeem")),
            sk.clone(),
        );
        async move {
            let r = c.post(url).bearer_auth(k).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // more money, another action or another customer is not what was decided
    for body in [
        json!({"action": "refund", "customer": "user_id:u9", "amount": 31}),
        json!({"action": "credit", "customer": "user_id:u9"}),
        json!({"action": "refund", "customer": "user_id:u10"}),
    ] {
        let (s, b) = redeem(id, body.clone()).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (409, Some("decision_mismatch")),
            "{body}"
        );
    }
    let (s, _) = redeem(
        id,
        json!({"action": "refund", "customer": "user_id:u9", "amount": 30}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = redeem(
        id,
        json!({"action": "refund", "customer": "user_id:u9", "amount": 30}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("decision_used")),
        "a replay"
    );
    let (s, _) = redeem(
        "dec_forged",
        json!({"action": "refund", "customer": "user_id:u9"}),
    )
    .await;
    assert_eq!(s, 404);
    // an escalation cannot be acted on until a human approves it
    let big: Value = app
        .post("/api/v1/decisions", &sk, &ask(900.0, "please"))
        .await
        .json()
        .await
        .unwrap();
    let big_id = big["decision_id"].as_str().unwrap().to_string();
    let (s, b) = redeem(
        &big_id,
        json!({"action": "refund", "customer": "user_id:u9"}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("decision_not_allowed")));
    let r = app
        .post(
            &format!("/api/v1/decisions/{big_id}/review"),
            &sk,
            &json!({"verdict": "approved", "reason": "long-standing customer"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (s, _) = redeem(
        &big_id,
        json!({"action": "refund", "customer": "user_id:u9", "amount": 900}),
    )
    .await;
    assert_eq!(s, 200);
    // asking for a person is honoured whatever the amount
    let human: Value = app
        .post(
            "/api/v1/decisions",
            &sk,
            &ask(5.0, "Stop. I want to speak to a human please"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (human["decision"].as_str(), human["policy_ids"][0].as_str()),
        (Some("escalate"), Some("human-requested")),
        "{human}"
    );
    assert_eq!(human["used"]["text"]["human_requested"], true);
    // the uses are on the chain
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn redeem_on_sqlite() {
    decisions_are_used_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn redeem_on_postgres() {
    decisions_are_used_once(Backend::Postgres).await;
}
