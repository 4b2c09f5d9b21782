//! The right to erasure, proven: a customer with events, answers, a survey link, an agent
//! decision and its review, a signed message, a ticket naming them and webhook deliveries
//! about them is erased, and then no table cell anywhere holds anything that identifies them
//! — while the audit chain still verifies and other customers are untouched. Access first:
//! the export holds what was there.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use reqwest::Method;
use serde_json::{json, Value};

async fn erasure_leaves_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, common::loopback_webhooks()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let r = app.batch(json!({"batch": [
        {"type": "page", "anonymousId": "anon-erase-7f3", "name": "Pricing", "context": {"traits": {"email": "ana.erasmus@example.com"}}},
        {"type": "identify", "userId": "ana-erase-7f3", "anonymousId": "anon-erase-7f3", "traits": {"name": "Ana Erasmus", "email": "ana.erasmus@example.com", "phone": "+15550001234"}},
        {"type": "group", "userId": "ana-erase-7f3", "groupId": "acme-co", "traits": {"name": "Acme Co", "arr": 50000}},
        {"type": "track", "userId": "ana-erase-7f3", "event": "Chat Started", "properties": {"intent": "billing"}},
        {"type": "track", "userId": "ana-erase-7f3", "event": "Ticket Opened"},
        {"type": "identify", "userId": "bo-keep-1", "traits": {"email": "bo.keep@example.com"}},
        {"type": "track", "userId": "bo-keep-1", "event": "Chat Started"}
    ]})).await;
    assert_eq!(r.status(), 200);
    let answers = json!({"answers": [
        {"response_id": "r-ana", "question": "nps", "type": "nps", "value": 2, "identifier": "user_id:ana-erase-7f3"},
        {"response_id": "r-ana", "question": "why", "type": "text", "value": "Erasmus here: billing charged me twice", "identifier": "user_id:ana-erase-7f3"},
        {"response_id": "r-bo", "question": "nps", "type": "nps", "value": 9, "identifier": "user_id:bo-keep-1"}
    ]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &answers)
            .await
            .status(),
        200
    );
    let r = app.post("/api/v1/surveys", &sk, &json!({"survey_id": "post-chat", "definition": {"name": "How did we do?", "questions": [{"id": "nps", "type": "nps", "prompt": "Recommend us?"}]}})).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = app
        .post(
            "/api/v1/surveys/post-chat/links",
            &sk,
            &json!({"identifier": "user_id:ana-erase-7f3"}),
        )
        .await;
    assert!(r.status().is_success());
    // webhooks that will never be delivered keep their payloads pending
    assert_eq!(
        app.post(
            "/api/v1/webhooks",
            &sk,
            &json!({"url": "http://127.0.0.1:9/hook"})
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "billing-bot"}))
            .await
            .status(),
        201
    );
    let d: Value = app.post("/api/v1/decisions", &sk, &json!({"agent": "billing-bot", "action": "refund", "customer": "user_id:ana-erase-7f3",
        "context": {"amount": 120, "message": "This is Ana Erasmus, please refund the double charge"}})).await.json().await.unwrap();
    let r = app
        .post(
            &format!(
                "/api/v1/decisions/{}/review",
                d["decision_id"].as_str().unwrap()
            ),
            &sk,
            &json!({"verdict": "approved"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.post("/api/v1/messages/sign", &sk, &json!({"agent": "billing-bot", "customer": "user_id:ana-erase-7f3", "text": "I'm an automated assistant. Your refund is on its way."})).await;
    assert_eq!(r.status(), 200);
    let r = app.post("/api/v1/tickets", &sk, &json!({"title": "double charges", "owner": "billing-lead", "severity": "high",
        "source": {"kind": "manual"}, "check": {"kind": "csat_recovers", "accounts": ["acme-co"], "percent": 80, "days": 30, "min_answers": 2},
        "impact": {"customers": 2, "identifiers": ["user_id:ana-erase-7f3", "user_id:bo-keep-1"]}})).await;
    assert_eq!(r.status(), 201);
    let ticket: Value = r.json().await.unwrap();
    // an experiment exposure names them too
    let r = app.post("/api/v1/experiments", &sk, &json!({"id": "refund-copy", "name": "Refund copy", "owner": "ana-pm", "kind": "automation",
        "arms": [{"key": "control"}, {"key": "short"}], "metric": {"event": "Ticket Resolved"}})).await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/api/v1/experiments/refund-copy/status",
            &sk,
            &json!({"status": "running"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let a: Value = app
        .post(
            "/api/v1/experiments/refund-copy/assign",
            &sk,
            &json!({"customer": "user_id:ana-erase-7f3"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["enrolled"], true, "{a}");

    // more that names her: a consent record, a step-up, a quarantined event, a ticket note,
    // and an identifier unmerged from her profile before the erasure (its event stays in
    // the log, and the block's reason names her)
    let r = app
        .post(
            "/api/v1/customers/user_id:ana-erase-7f3/consent",
            &sk,
            &json!({"purpose": "surveys", "status": "denied", "source": "support call"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let hook = app
        .post(
            "/api/v1/webhooks",
            &sk,
            &json!({"url": "http://127.0.0.1:9/codes", "events": ["step_up.code"]}),
        )
        .await;
    assert_eq!(hook.status(), 201);
    let r = app
        .post(
            "/api/v1/step-ups",
            &sk,
            &json!({"customer": "user_id:ana-erase-7f3"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app.batch(json!({"batch": [{"type": "track", "userId": "ana-erase-7f3", "properties": {"note": "no event name"}}]})).await;
    assert_eq!(r.status(), 200);
    let r = app.batch(json!({"batch": [{"type": "identify", "userId": "ana-erase-7f3", "anonymousId": "ana-old-laptop-7f3", "traits": {"name": "Ana Erasmus"}}]})).await;
    assert_eq!(r.status(), 200);
    let before_unmerge = app
        .get_json("/api/v1/customers/email:ana.erasmus@example.com/export")
        .await;
    let pid = before_unmerge["profile"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/customers/{pid}/unmerge"),
            &sk,
            &json!({"identifier": "anonymous_id:ana-old-laptop-7f3", "reason": "Ana Erasmus says this laptop is not hers"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // access: the export holds it all
    let export = app
        .get_json("/api/v1/customers/email:ana.erasmus@example.com/export")
        .await;
    let profile_id = export["profile"]["id"].as_str().unwrap().to_string();
    assert!(export["events"].as_array().unwrap().len() >= 4, "{export}");
    assert_eq!(export["answers"].as_array().unwrap().len(), 2);
    assert_eq!(export["decisions"].as_array().unwrap().len(), 1);

    let needles: Vec<String> = [
        "ana-erase-7f3",
        "anon-erase-7f3",
        "ana.erasmus@example.com",
        "Erasmus",
        "5550001234",
        &profile_id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (sql, n2) = (app.sql.clone(), needles.clone());
    let before = tokio::task::spawn_blocking(move || cxm_store::testing::find_text(&sql, &n2))
        .await
        .unwrap();
    assert!(before.len() > 10, "the data was there: {before:?}");

    let r = app
        .send(
            Method::POST,
            "/api/v1/customers/user_id:ana-erase-7f3/erase",
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let erased: Value = r.json().await.unwrap();
    assert!(erased["erasure_id"].as_str().unwrap().starts_with("era_"));
    assert!(
        erased["removed"]["events"].as_u64().unwrap() >= 4,
        "{erased}"
    );
    assert_eq!(erased["removed"]["decisions"], 1);
    // the export held exactly what the erasure removed, kind by kind
    let held = export["held"].as_object().unwrap();
    let removed = erased["removed"].as_object().unwrap();
    for kind in [
        "events",
        "answers",
        "consents",
        "step_ups",
        "survey_links",
        "ledger",
        "quarantined",
        "webhook_deliveries",
        "ticket_impacts",
        "identifiers",
        "profiles",
        "blocked_identifiers",
    ] {
        assert!(
            removed.get(kind).and_then(Value::as_u64).unwrap_or(0) > 0,
            "the erasure removed no {kind}: {erased}"
        );
    }
    for (kind, n) in removed {
        assert_eq!(
            held.get(kind)
                .map_or(0, |v| v.as_array().unwrap().len() as u64),
            n.as_u64().unwrap(),
            "{kind}: the export and the erasure disagree"
        );
    }
    assert_eq!(
        held.len(),
        removed.len(),
        "{:?}",
        held.keys().collect::<Vec<_>>()
    );

    let needles: Vec<String> = needles
        .into_iter()
        .chain(["ana-old-laptop-7f3".to_string()])
        .collect();
    let (sql, n2) = (app.sql.clone(), needles.clone());
    let after = tokio::task::spawn_blocking(move || cxm_store::testing::find_text(&sql, &n2))
        .await
        .unwrap();
    assert!(
        after.is_empty(),
        "still identifying after erasure: {after:#?}"
    );
    // and no byte of any file of the embedded store holds her email, phone or name: freed
    // pages are zeroed and the WAL was cut
    if let cxm_store::testing::SqlTarget::Sqlite(db) = &app.sql {
        let dir = db.parent().unwrap();
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for needle in [
                "ana.erasmus@example.com",
                "5550001234",
                "Ana Erasmus",
                "Erasmus",
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} is still in {}",
                    path.display()
                );
            }
        }
    }

    // the chain holds (decisions keep their hashes), the erasure is on it; others untouched
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let bo = app
        .get_json("/api/v1/customers/email:bo.keep@example.com/export")
        .await;
    assert_eq!(bo["answers"].as_array().unwrap().len(), 1);
    assert!(!bo["events"].as_array().unwrap().is_empty());
    let t = app
        .get_json(&format!("/api/v1/tickets/{}", ticket["id"]))
        .await;
    assert_eq!(
        t["impact"]["identifiers"],
        json!(["user_id:bo-keep-1"]),
        "{t}"
    );
    // an unknown (or already erased) customer is a clear 404
    for id in ["user_id:ana-erase-7f3", "prof_nobody"] {
        let r = app
            .send(
                Method::POST,
                &format!("/api/v1/customers/{id}/erase"),
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 404, "{id}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found");
    }
    app.stop().await;
}

async fn consent_is_honoured(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let r = app
        .batch(json!({"batch": [
            {"type": "identify", "userId": "ana", "traits": {"email": "ana@example.com"}},
            {"type": "identify", "userId": "bo", "traits": {"email": "bo@example.com"}}
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    let r = app.post("/api/v1/surveys", &sk, &json!({"survey_id": "csat", "definition": {"name": "CSAT", "questions": [{"id": "csat", "type": "csat", "prompt": "How did we do?"}]}})).await;
    assert!(r.status().is_success());
    // bad records are refused
    for (body, says) in [
        (
            json!({"purpose": "telepathy", "status": "denied"}),
            "purpose",
        ),
        (
            json!({"purpose": "surveys", "channel": "pigeon", "status": "denied"}),
            "channel",
        ),
        (json!({"purpose": "surveys", "status": "maybe"}), "status"),
    ] {
        let r = app
            .post("/api/v1/customers/user_id:ana/consent", &sk, &body)
            .await;
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.text().await.unwrap().contains(says));
    }
    let r = app
        .post(
            "/api/v1/customers/user_id:nobody/consent",
            &sk,
            &json!({"purpose": "surveys", "status": "denied"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app.post("/api/v1/customers/user_id:ana/consent", &sk, &json!({"purpose": "surveys", "channel": "email", "status": "denied", "source": "preference_center"})).await;
    assert_eq!(r.status(), 201);
    let view: Value = r.json().await.unwrap();
    let email = view["current"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "surveys" && c["channel"] == "email")
        .unwrap();
    assert_eq!(email["allowed"], false);
    assert_eq!(
        view["current"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purpose"] == "marketing")
            .unwrap()["allowed"],
        false,
        "marketing needs a grant"
    );

    // surveys: not by email, still by sms; bo is unaffected
    let r = app
        .post(
            "/api/v1/surveys/csat/links",
            &sk,
            &json!({"identifier": "user_id:ana", "channel": "email"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "contact_rule");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("denied surveys on email"),
        "{b}"
    );
    assert!(app
        .post(
            "/api/v1/surveys/csat/links",
            &sk,
            &json!({"identifier": "user_id:ana", "channel": "sms"})
        )
        .await
        .status()
        .is_success());
    assert!(app
        .post(
            "/api/v1/surveys/csat/links",
            &sk,
            &json!({"identifier": "user_id:bo", "channel": "email"})
        )
        .await
        .status()
        .is_success());

    // close the loop: ana declined service updates, so only bo hears about the fix
    let r = app
        .post(
            "/api/v1/customers/user_id:ana/consent",
            &sk,
            &json!({"purpose": "service_updates", "status": "revoked"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app.post("/api/v1/tickets", &sk, &json!({"title": "double charges", "owner": "billing-lead", "severity": "high",
        "source": {"kind": "manual"}, "check": {"kind": "csat_recovers", "accounts": ["acme"], "percent": 80, "days": 30, "min_answers": 2},
        "impact": {"customers": 2, "identifiers": ["user_id:ana", "user_id:bo"], "close_loop_message": "We fixed the double charges."}})).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for state in ["in_progress", "fix_shipped"] {
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/state"),
                &sk,
                &json!({"state": state}),
            )
            .await;
        assert_eq!(r.status(), 200, "{state}");
    }
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/close"),
            &sk,
            &json!({"override_reason": "verified by hand"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let note = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "loop_closed")
        .expect("loop closed")
        .clone();
    assert_eq!(note["detail"]["declined"], 1, "{note}");
    assert_eq!(note["detail"]["customers"].as_array().unwrap().len(), 1);
    let history = app.get_json("/api/v1/customers/user_id:ana/consent").await;
    assert_eq!(history["history"].as_array().unwrap().len(), 2);

    // the customer page: consent shown and recorded, erasure behind a typed confirmation
    let owner = app.login("owner@acme.test", cxm_store::Role::Owner).await;
    let pid = history["profile_id"].as_str().unwrap().to_string();
    let page = app
        .client
        .get(app.url(&format!("/customers/{pid}")))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-testid=\"consent\"") && page.contains("revoked"),
        "{page}"
    );
    let r = app
        .client
        .post(app.url(&format!("/customers/{pid}/consent")))
        .header("cookie", &owner)
        .form(&[
            ("purpose", "marketing"),
            ("channel", "email"),
            ("status", "granted"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.get_json("/api/v1/customers/user_id:ana/consent").await["history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let r = app
        .client
        .post(app.url(&format!("/customers/{pid}/erase")))
        .header("cookie", &owner)
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "erasure needs the word");
    let r = app
        .client
        .post(app.url(&format!("/customers/{pid}/erase")))
        .header("cookie", &owner)
        .form(&[("confirm", "erase")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().contains("Erased"));
    assert_eq!(
        app.get("/api/v1/customers/user_id:ana/consent")
            .await
            .status(),
        404
    );
    app.stop().await;
}

fn days_ago(d: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339()
}

async fn retention_purges_what_is_past_its_period(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let r = app.client.post(app.url("/v1/batch?historical=true")).basic_auth(&app.write_key, Some("")).json(&json!({"batch": [
        {"type": "track", "userId": "cy", "event": "Signed Up", "timestamp": days_ago(400)},
        {"type": "track", "userId": "cy", "event": "Chat Started", "properties": {"transcript": "hi, my card 4111 was charged twice"}, "timestamp": days_ago(100)},
        {"type": "track", "userId": "cy", "event": "Chat Started", "properties": {"transcript": "still waiting"}, "timestamp": days_ago(2)}
    ]})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answers = json!({"answers": [
        {"response_id": "old", "question": "why", "type": "text", "value": "an old complaint", "identifier": "user_id:cy", "collected_at": days_ago(800)},
        {"response_id": "old", "question": "nps", "type": "nps", "value": 3, "identifier": "user_id:cy", "collected_at": days_ago(800)},
        {"response_id": "new", "question": "why", "type": "text", "value": "a fresh complaint", "identifier": "user_id:cy"}
    ]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &answers)
            .await
            .status(),
        200
    );
    for (body, says) in [
        (json!({"mail": 10}), "no data class"),
        (json!({"events": 0}), "1 to 36500"),
        (json!({"events": "forever"}), "1 to 36500"),
    ] {
        let r = app.send(Method::PUT, "/api/v1/retention", &body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.text().await.unwrap().contains(says));
    }
    let r = app
        .send(
            Method::PUT,
            "/api/v1/retention",
            &json!({"events": 365, "feedback_text": 730, "transcripts": 30}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["periods"]["transcripts"],
        30
    );
    let purged: Value = app
        .post("/api/v1/retention/purge", &sk, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        purged,
        json!({"events": 1, "feedback_texts": 1, "transcripts": 1, "quarantined": 0})
    );
    let export = app.get_json("/api/v1/customers/user_id:cy/export").await;
    let events = export["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "the 400-day-old event is gone");
    let texts: Vec<String> = events.iter().map(|e| e["payload"].to_string()).collect();
    assert!(!texts.iter().any(|t| t.contains("4111")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("still waiting")));
    // a second purge finds nothing; clearing a period keeps that class again
    let purged: Value = app
        .post("/api/v1/retention/purge", &sk, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        purged,
        json!({"events": 0, "feedback_texts": 0, "transcripts": 0, "quarantined": 0})
    );
    let r = app
        .send(Method::PUT, "/api/v1/retention", &json!({"events": null}))
        .await;
    assert!(r.json::<Value>().await.unwrap()["periods"]
        .get("events")
        .is_none());
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn retention_on_sqlite() {
    retention_purges_what_is_past_its_period(Backend::Sqlite).await;
}

#[tokio::test]
async fn retention_on_postgres() {
    retention_purges_what_is_past_its_period(Backend::Postgres).await;
}

#[tokio::test]
async fn consent_on_sqlite() {
    consent_is_honoured(Backend::Sqlite).await;
}

#[tokio::test]
async fn consent_on_postgres() {
    consent_is_honoured(Backend::Postgres).await;
}

#[tokio::test]
async fn erasure_on_sqlite() {
    erasure_leaves_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn erasure_on_postgres() {
    erasure_leaves_nothing(Backend::Postgres).await;
}
