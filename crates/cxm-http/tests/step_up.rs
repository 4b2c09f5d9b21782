//! Step-up verification: a one-time code goes to the email cxm knows for the customer (only
//! through endpoints that asked for codes), wrong codes are counted, and a contact change is
//! allowed on its own only after the customer proved it is them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestApp};
use serde_json::{json, Value};

async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(vec![]));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = s2.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn step_up_unlocks_a_contact_change(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, common::loopback_webhooks()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let r = app
        .batch(json!({"batch": [
            {"type": "identify", "userId": "ana", "traits": {"email": "ana@example.com"}},
            {"type": "identify", "userId": "bo"}
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "account-bot"}))
            .await
            .status(),
        201
    );
    let ask = |customer: &str, step_up: Option<&str>| {
        let mut ctx = json!({"channel": "chat"});
        if let Some(s) = step_up {
            ctx["step_up"] = json!(s);
        }
        json!({"agent": "account-bot", "action": "contact_change", "customer": customer, "context": ctx})
    };
    let d: Value = app
        .post("/api/v1/decisions", &sk, &ask("user_id:ana", None))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (d["decision"].as_str(), d["policy_ids"][0].as_str()),
        (Some("review"), Some("step-up-required"))
    );

    // no endpoint takes codes yet; bo has no email or phone
    let r = app
        .post("/api/v1/step-ups", &sk, &json!({"customer": "user_id:ana"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "no_known_channel");
    let (codes_url, codes) = receiver().await;
    let (all_url, everything) = receiver().await;
    assert_eq!(
        app.post(
            "/api/v1/webhooks",
            &sk,
            &json!({"url": codes_url, "events": ["step_up.code"]})
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        app.post("/api/v1/webhooks", &sk, &json!({"url": all_url}))
            .await
            .status(),
        201
    );
    let r = app
        .post("/api/v1/step-ups", &sk, &json!({"customer": "user_id:bo"}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "no_known_channel");
    let r = app
        .post(
            "/api/v1/step-ups",
            &sk,
            &json!({"customer": "user_id:nobody"}),
        )
        .await;
    assert_eq!(r.status(), 404);

    let r = app
        .post("/api/v1/step-ups", &sk, &json!({"customer": "user_id:ana"}))
        .await;
    assert_eq!(r.status(), 201);
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["sent_to"], "a***@example.com");
    let id = started["step_up_id"].as_str().unwrap().to_string();
    let mut code = None;
    for _ in 0..100 {
        code = codes
            .lock()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "step_up.code")
            .map(|m| m["data"]["code"].as_str().unwrap().to_string());
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.expect("the code was delivered");
    let sent = codes.lock().unwrap()[0].clone();
    assert_eq!(sent["data"]["to"], "ana@example.com");
    let page = sent["data"]["verify_url"].as_str().unwrap().to_string();
    assert!(page.starts_with("/step-up/"), "{sent}");

    // the code is not kept: not in the delivery log (owners and admins only), not in the
    // database once the delivery is settled
    let hooks = app.get_json("/api/v1/webhooks").await;
    let codes_hook = hooks["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["events"] == json!(["step_up.code"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut log = Value::Null;
    for _ in 0..100 {
        log = app
            .get_json(&format!("/api/v1/webhooks/{codes_hook}/deliveries"))
            .await;
        if log["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log["deliveries"][0]["status"], "delivered", "{log}");
    assert!(
        log["deliveries"][0]["payload"]["data"]
            .get("code")
            .is_none(),
        "{log}"
    );
    assert!(!log.to_string().contains(&code));
    let sql = app.sql.clone();
    let needles = vec![format!("\"code\":\"{code}\""), "sealed:v1:".to_string()];
    let hits = tokio::task::spawn_blocking(move || cxm_store::testing::find_text(&sql, &needles))
        .await
        .unwrap();
    assert!(
        hits.iter()
            .all(|h| !h.starts_with("webhook_deliveries") && !h.contains("\"code\"")),
        "{hits:?}"
    );
    let viewer = app.login("viewer@acme.io", cxm_store::Role::Viewer).await;
    let operator = app
        .login("ops@acme.io", cxm_store::Role::AgentOperator)
        .await;
    for cookie in [&viewer, &operator] {
        let r = app
            .client
            .get(app.url(&format!("/api/v1/webhooks/{codes_hook}/deliveries")))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "delivery logs are for owners and admins");
    }

    // whoever started the step-up cannot verify it
    let r = app
        .post(
            &format!("/api/v1/step-ups/{id}/verify"),
            &sk,
            &json!({"code": code}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("someone other than who asked"));
    // another operator can, and wrong codes still count
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app
        .client
        .post(app.url(&format!("/api/v1/step-ups/{id}/verify")))
        .header("cookie", &operator)
        .json(&json!({"code": wrong}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "invalid_code");
    assert!(b["detail"].as_str().unwrap().contains("4 attempts left"));
    // an unverified step-up changes nothing
    let d: Value = app
        .post("/api/v1/decisions", &sk, &ask("user_id:ana", Some(&id)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["decision"], "review");
    assert!(d["used"]["step_up"]["not_verified"]
        .as_str()
        .unwrap()
        .contains("not completed"));
    // the customer types the code on the page the link names
    let html = app.client.get(app.url(&page)).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().contains("a***@example.com"));
    let r = app
        .client
        .post(app.url(&page))
        .form(&[("code", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("3 tries left"));
    let r = app
        .client
        .post(app.url(&page))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("you are confirmed"));
    let r = app
        .client
        .get(app.url(&format!("/step-up/{}/stp_forged", app.tenant)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let d: Value = app
        .post("/api/v1/decisions", &sk, &ask("user_id:ana", Some(&id)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (d["decision"].as_str(), d["level"].as_str()),
        (Some("allow"), Some("L1")),
        "{d}"
    );
    assert_eq!(
        d["policy_ids"],
        json!(["verified-contact-or-payment-change"])
    );
    // ana's verification does not vouch for bo
    let d: Value = app
        .post("/api/v1/decisions", &sk, &ask("user_id:bo", Some(&id)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["decision"], "review");
    assert!(d["used"]["step_up"]["not_verified"]
        .as_str()
        .unwrap()
        .contains("another customer"));
    // bad ids are refused, codes never reach the catch-all endpoint
    let r = app.post("/api/v1/decisions", &sk, &json!({"agent": "account-bot", "action": "contact_change", "customer": "user_id:ana", "context": {"step_up": 7}})).await;
    assert_eq!(r.status(), 400);
    let r = app
        .post(
            "/api/v1/step-ups/stp_forged/verify",
            &sk,
            &json!({"code": "123456"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(everything
        .lock()
        .unwrap()
        .iter()
        .all(|m| m["type"] != "step_up.code"));
    app.stop().await;
}

#[tokio::test]
async fn step_up_on_sqlite() {
    step_up_unlocks_a_contact_change(Backend::Sqlite).await;
}

#[tokio::test]
async fn step_up_on_postgres() {
    step_up_unlocks_a_contact_change(Backend::Postgres).await;
}
