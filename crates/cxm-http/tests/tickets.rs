//! Remediation tickets over HTTP: opened from an alert or by hand with a verification check,
//! refused closure (409 verification_failed) until the data proves the fix, admin overrides
//! on the timeline.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use reqwest::Method;
use serde_json::{json, Value};

fn days_ago(d: f64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes((d * 24.0 * 60.0) as i64)).to_rfc3339()
}

async fn tickets_need_evidence(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let batch = json!({"batch": [
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "arr": 120000}, "timestamp": days_ago(40.0)},
        {"type": "track", "userId": "u1", "event": "Payment Failed", "timestamp": days_ago(3.0)},
        {"type": "track", "userId": "u1", "event": "Payment Failed", "timestamp": days_ago(2.0)},
        {"type": "track", "userId": "u1", "event": "Feature Used", "timestamp": days_ago(30.0)},
    ]});
    let r = app
        .client
        .post(app.url("/v1/batch?historical=true"))
        .basic_auth(&app.write_key, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // quiet for 30 days, two failed payments and an angry answer: at risk
    let angry = json!({"answers": [{"response_id": "n1", "question": "nps", "type": "nps", "value": 1, "identifier": "user_id:u1", "collected_at": days_ago(1.0)}]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &angry)
            .await
            .status(),
        200
    );
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    tokio::task::spawn_blocking(move || {
        cxm_app::health::upkeep(store.as_ref(), &tenant, true).unwrap()
    })
    .await
    .unwrap();
    let alerts = app.get_json("/api/v1/alerts?status=open").await;
    let at_risk = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "at_risk")
        .expect("Acme is at risk")
        .clone();

    // bad tickets are refused with the reason
    for (body, says) in [
        (
            json!({"title": "x", "owner": "", "severity": "high", "check": {"kind": "account_health_above", "account": "acme", "score": 75}}),
            "owner",
        ),
        (
            json!({"title": "x", "owner": "o", "severity": "high", "check": {"kind": "stage_drop_off_below", "journey_id": "j", "stage_id": "s", "percent": 140}}),
            "percent",
        ),
        (
            json!({"title": "x", "owner": "o", "severity": "high", "check": {"kind": "theme_volume_below", "theme_id": "th_404", "per_week": 3}}),
            "no theme th_404",
        ),
    ] {
        let r = app.send(Method::POST, "/api/v1/tickets", &body).await;
        assert_eq!(r.status(), 400);
        assert!(
            r.json::<Value>().await.unwrap()["detail"]
                .as_str()
                .unwrap()
                .contains(says),
            "{says}"
        );
    }
    let r = app.send(Method::POST, "/api/v1/tickets", &json!({"title": "x", "owner": "o", "severity": "urgent", "check": {"kind": "account_health_above", "account": "acme", "score": 75}})).await;
    assert_eq!(r.status(), 400, "unknown severity");

    // the alert becomes a ticket whose check is the account's health recovering
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/alerts/{}/ticket", at_risk["id"]),
            &json!({"owner": "csm@acme.io"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let t1: Value = r.json().await.unwrap();
    assert_eq!(
        (
            t1["state"].as_str(),
            t1["severity"].as_str(),
            t1["owner"].as_str()
        ),
        (Some("open"), Some("high"), Some("csm@acme.io"))
    );
    assert_eq!(
        t1["check"],
        json!({"kind": "account_health_above", "account": "acme", "score": 75.0})
    );
    assert_eq!(t1["impact"]["arr"], 120000.0);
    assert_eq!(t1["verdict"]["passed"], false);
    assert_eq!(t1["sla_status"], "active");
    assert_eq!(
        app.get_json(&format!("/api/v1/alerts/{}", at_risk["id"]))
            .await["status"],
        "acknowledged"
    );
    let id1 = t1["id"].as_i64().unwrap();

    let close = |id: i64, body: Value| {
        let req = app
            .client
            .post(app.url(&format!("/api/v1/tickets/{id}/close")))
            .bearer_auth(&app.secret_key);
        let req = if body.is_null() { req } else { req.json(&body) };
        async move { req.send().await.unwrap() }
    };
    let r = close(id1, json!({})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "invalid_transition",
        "nothing shipped yet"
    );
    let step = |id: i64, state: &str| {
        let req = app
            .client
            .post(app.url(&format!("/api/v1/tickets/{id}/state")))
            .bearer_auth(&app.secret_key)
            .json(&json!({"state": state}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        step(id1, "verifying").await.status(),
        409,
        "open cannot jump to verifying"
    );
    for s in ["in_progress", "fix_shipped"] {
        assert_eq!(step(id1, s).await.status(), 200);
    }
    let r = close(id1, json!({})).await;
    assert_eq!(r.status(), 409);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "verification_failed");
    assert!(
        p["detail"].as_str().unwrap().contains("needs at least 75"),
        "{p}"
    );
    // an analyst may not override; an admin may, and it is on the timeline
    let analyst = app.login("analyst@acme.io", cxm_store::Role::Analyst).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{id1}/close")))
        .header("cookie", &analyst)
        .json(&json!({"override_reason": "customer renewed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = close(
        id1,
        json!({"override_reason": "renewed on a call; health lags"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let closed: Value = r.json().await.unwrap();
    assert_eq!(closed["state"], "closed");
    let kinds: Vec<&str> = closed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "close_refused",
            "state",
            "state",
            "close_refused",
            "close_refused",
            "closed_override"
        ]
    );
    assert_eq!(
        closed["timeline"][6]["detail"]["reason"],
        "renewed on a call; health lags"
    );
    assert_eq!(step(id1, "reopened").await.status(), 200);

    // a ticket that waits for customers' CSAT to recover closes once the answers prove it
    let t2 = app.send(Method::POST, "/api/v1/tickets", &json!({
        "title": "Billing errors after the plan change", "owner": "billing@acme.io", "severity": "medium",
        "source": {"kind": "manual"}, "impact": {"customers": 1, "accounts": ["acme"], "arr": 120000, "identifiers": ["user_id:u1"],
            "close_loop_message": "We fixed the billing errors after the plan change. Thank you for telling us."},
        "check": {"kind": "csat_recovers", "accounts": ["acme"], "percent": 80, "days": 30, "min_answers": 2}
    })).await;
    assert_eq!(t2.status(), 201);
    let t2: Value = t2.json().await.unwrap();
    let id2 = t2["id"].as_i64().unwrap();
    assert_eq!(t2["sla_hours"], 168);
    for s in ["in_progress", "fix_shipped"] {
        assert_eq!(step(id2, s).await.status(), 200);
    }
    let v = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{id2}/verify"),
            &json!({}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        (v["state"].as_str(), v["verdict"]["passed"].as_bool()),
        (Some("verifying"), Some(false))
    );
    assert!(v["verdict"]["detail"]
        .as_str()
        .unwrap()
        .contains("no data yet"));
    assert_eq!(close(id2, json!({})).await.status(), 409);
    // cxm knows u1's address: the loop is closed by email too
    let r = app
        .client
        .post(app.url("/v1/identify"))
        .basic_auth(&app.write_key, Some(""))
        .json(&json!({"userId": "u1", "traits": {"email": "u1@acme.example"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answers = json!({"answers": [
        {"response_id": "c1", "question": "csat", "type": "csat", "value": 5, "identifier": "user_id:u1"},
        {"response_id": "c2", "question": "csat", "type": "csat", "value": 4, "identifier": "user_id:u1"},
    ]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &answers)
            .await
            .status(),
        200
    );
    let r = close(id2, Value::Null).await;
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["state"], "closed", "{done}");
    assert_eq!(done["verdict"]["observed"], 100.0);
    let timeline = done["timeline"].as_array().unwrap();
    assert_eq!(timeline[timeline.len() - 2]["kind"], "closed_verified");
    // the loop is closed with the customer who raised it (once, though they are also Acme's)
    let looped = timeline.last().unwrap();
    assert_eq!(looped["kind"], "loop_closed");
    assert_eq!(
        (
            looped["detail"]["customers"].as_array().unwrap().len(),
            looped["detail"]["unreachable"].as_i64()
        ),
        (1, Some(0))
    );
    assert_eq!(looped["detail"]["emailed"], 1);
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    let mail = tokio::task::spawn_blocking(move || {
        store
            .list_mail(&tenant, None, Some(("loop_closed", &id2.to_string())), 10)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(
        (
            mail[0].to.as_str(),
            mail[0].subject.as_str(),
            mail[0].status.as_str()
        ),
        (
            "u1@acme.example",
            "Fixed: Billing errors after the plan change",
            "pending"
        )
    );
    assert!(mail[0].body.contains("We fixed the billing errors"));
    let who = app
        .get_json("/api/v1/customers?identifier=user_id:u1")
        .await;
    let ctx = app
        .get_json(&format!(
            "/api/v1/customers/{}/context",
            who["id"].as_str().unwrap()
        ))
        .await;
    let loop_event = ctx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Loop Closed")
        .expect("on the customer's timeline");
    assert!(
        loop_event
            .to_string()
            .contains("We fixed the billing errors"),
        "{loop_event}"
    );
    assert_eq!(done["sla_status"], "hit");
    let r = app.send(Method::POST, "/api/v1/tickets", &json!({"title": "x", "owner": "o", "severity": "low",
        "impact": {"identifiers": ["u1"]}, "check": {"kind": "account_health_above", "account": "acme", "score": 75}})).await;
    assert_eq!(r.status(), 400, "identifiers are typed");

    // the board and the ticket page; a refused close shows why on the page
    let board = app
        .client
        .get(app.url("/tickets"))
        .header("cookie", &analyst)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        board.contains("Billing errors after the plan change")
            && board.contains("data-state=\"reopened\""),
        "{board}"
    );
    let r = app
        .client
        .post(app.url(&format!("/tickets/{id1}/action")))
        .header("cookie", &analyst)
        .form(&[("action", "close")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Not done: a ticket closes after its fix shipped"),
        "{page}"
    );
    let r = app
        .client
        .post(app.url(&format!("/tickets/{id1}/action")))
        .header("cookie", &analyst)
        .form(&[("action", "in_progress")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // escalation: ticket 1 (reopened, high, 72 h) once less than a fifth of its SLA is left, then when missed; once each
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    let escalate = move |hours: i64| {
        let (store, tenant) = (store.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || {
            let later = chrono::Utc::now().timestamp_millis() + hours * 3_600_000;
            cxm_app::tickets::sweep_sla(store.as_ref(), &tenant, later).unwrap()
        })
    };
    assert_eq!(escalate(1).await.unwrap(), 0, "plenty of time left");
    assert_eq!(escalate(60).await.unwrap(), 1);
    assert_eq!(escalate(61).await.unwrap(), 0, "escalated once");
    assert_eq!(escalate(80).await.unwrap(), 1, "and once more when missed");
    let kinds: Vec<String> = app.get_json(&format!("/api/v1/tickets/{id1}")).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.ends_with(&["sla_at_risk".to_string(), "sla_missed".to_string()]),
        "{kinds:?}"
    );

    let list = app.get_json("/api/v1/tickets?state=closed").await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 1);
    // the overridden close does not count as a verified fix; the CSAT one does
    assert_eq!(list["obstacle_removal"]["verified_fixes_30d"], 1);
    assert_eq!(list["obstacle_removal"]["open_tickets"], 1);
    assert!(
        list["obstacle_removal"]["median_hours_to_verified_fix"]
            .as_f64()
            .unwrap()
            < 1.0
    );
    assert_eq!(
        app.get("/api/v1/tickets?state=finished").await.status(),
        400
    );
    assert_eq!(app.get("/api/v1/tickets/424242").await.status(), 404);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{id2}/close")))
        .bearer_auth(&app.secret_key)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn tickets_on_sqlite() {
    tickets_need_evidence(Backend::Sqlite).await;
}

#[tokio::test]
async fn tickets_on_postgres() {
    tickets_need_evidence(Backend::Postgres).await;
}

async fn rules_open_tickets_by_themselves(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let batch = json!({"batch": [
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "arr": 120000}, "timestamp": days_ago(40.0)},
        {"type": "group", "userId": "u2", "groupId": "globex", "traits": {"name": "Globex", "arr": 10000}, "timestamp": days_ago(40.0)},
        {"type": "track", "userId": "u1", "event": "Payment Failed", "timestamp": days_ago(3.0)},
        {"type": "track", "userId": "u1", "event": "Feature Used", "timestamp": days_ago(30.0)},
        {"type": "track", "userId": "u2", "event": "Feature Used", "timestamp": days_ago(1.0)},
    ]});
    let r = app
        .client
        .post(app.url("/v1/batch?historical=true"))
        .basic_auth(&app.write_key, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut answers = vec![
        json!({"response_id": "a1", "question": "nps", "type": "nps", "value": 1, "identifier": "user_id:u1", "collected_at": days_ago(1.0)}),
        json!({"response_id": "g1", "question": "nps", "type": "nps", "value": 2, "identifier": "user_id:u2", "collected_at": days_ago(1.0)}),
    ];
    // a theme that grows: two complaints the week before last, eight this week; and a steady one
    for i in 0..10 {
        let when = if i < 2 { 10.0 } else { 1.0 };
        answers.push(json!({"response_id": format!("r{i}"), "question": "why", "type": "text", "value": format!("my refund is late again, refund number {i}"), "collected_at": days_ago(when)}));
        answers.push(json!({"response_id": format!("s{i}"), "question": "why", "type": "text", "value": format!("the mobile app crashes on login screen {i}"), "collected_at": days_ago(if i % 2 == 0 { 10.0 } else { 2.0 })}));
    }
    assert_eq!(
        app.post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({"answers": answers})
        )
        .await
        .status(),
        200
    );
    let r = app
        .send(
            Method::POST,
            "/api/v1/themes/discover",
            &json!({"days": 30, "k": 2}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let bad = app
        .send(
            Method::PUT,
            "/api/v1/ticket-rules",
            &json!({"at_risk": {"owner": " ", "severity": "high"}}),
        )
        .await;
    assert_eq!(bad.status(), 422);
    let rules = json!({
        "at_risk": {"owner": "cs-lead@acme.io", "severity": "high"},
        "large_account_detractors": {"min_arr": 50000.0, "owner": "cs-lead@acme.io", "severity": "medium"},
        "growing_themes": {"min_growth_pct": 50.0, "min_answers": 5, "owner": "cx-ops@acme.io", "severity": "medium"}
    });
    assert_eq!(
        app.send(Method::PUT, "/api/v1/ticket-rules", &rules)
            .await
            .status(),
        200
    );
    assert_eq!(app.get_json("/api/v1/ticket-rules").await, rules);

    let upkeep = || {
        let (store, tenant) = (app.store.clone(), app.tenant.clone());
        tokio::task::spawn_blocking(move || {
            cxm_app::health::upkeep(store.as_ref(), &tenant, true).unwrap()
        })
    };
    upkeep().await.unwrap();
    let list = app.get_json("/api/v1/tickets").await;
    let mut got: Vec<(String, String)> = list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["source"]["kind"].as_str().unwrap().to_string(),
                t["check"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alert".into(), "account_health_above".into()),
            ("rule".into(), "csat_recovers".into()),
            ("theme".into(), "theme_volume_below".into())
        ],
        "Acme's alert, Acme's detractor (Globex is too small), the refund theme: {list}"
    );
    let theme_ticket = list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"]["kind"] == "theme")
        .unwrap();
    assert_eq!(theme_ticket["check"]["per_week"], 2);
    assert!(
        theme_ticket["title"]
            .as_str()
            .unwrap()
            .contains("8 answers this week, 2 the week before"),
        "{theme_ticket}"
    );
    // rules do not repeat themselves while their tickets are open
    upkeep().await.unwrap();
    assert_eq!(
        app.get_json("/api/v1/tickets").await["tickets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // a ticket waiting for a synthetic journey check to pass
    let report = |passed: bool| {
        let req = app
            .client
            .post(app.url("/api/v1/journey-checks"))
            .bearer_auth(&app.secret_key)
            .json(&json!({"name": "chat-then-call", "passed": passed, "detail": {"failures": []}}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(report(false).await.status(), 201);
    assert_eq!(
        app.send(
            Method::POST,
            "/api/v1/journey-checks",
            &json!({"name": "bad name!", "passed": true})
        )
        .await
        .status(),
        400
    );
    let t = app.send(Method::POST, "/api/v1/tickets", &json!({"title": "Context lost between chat and phone", "owner": "cx-eng", "severity": "high",
        "check": {"kind": "journey_check_passes", "name": "chat-then-call"}})).await;
    assert_eq!(t.status(), 201);
    let id = t.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for s in ["in_progress", "fix_shipped"] {
        assert_eq!(
            app.send(
                Method::POST,
                &format!("/api/v1/tickets/{id}/state"),
                &json!({"state": s})
            )
            .await
            .status(),
            200
        );
    }
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{id}/close"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("failed"));
    assert_eq!(report(true).await.status(), 201);
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{id}/close"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.get_json("/api/v1/journey-checks").await["runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let cookie = app.login("ops@acme.io", cxm_store::Role::Analyst).await;
    let page = app
        .client
        .get(app.url("/journeys"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-testid=\"check-runs\"") && page.contains("chat-then-call"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn rules_on_sqlite() {
    rules_open_tickets_by_themselves(Backend::Sqlite).await;
}

#[tokio::test]
async fn rules_on_postgres() {
    rules_open_tickets_by_themselves(Backend::Postgres).await;
}
