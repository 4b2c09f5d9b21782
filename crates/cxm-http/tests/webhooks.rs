//! Outbound webhooks against a real receiver: Standard Webhooks signatures, retries with
//! backoff after 500s, the same message id on every attempt, and the delivery log.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Default)]
struct Received {
    calls: Vec<(HeaderMap, String)>,
}

/// A receiver that answers 500 to its first two calls and 200 after.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let seen = Arc::new(Mutex::new(Received::default()));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = s2.clone();
            async move {
                let mut r = seen.lock().unwrap();
                r.calls.push((headers, body));
                if r.calls.len() <= 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn webhooks_are_signed_and_retried(backend: Backend) {
    let config = HttpConfig {
        webhook_retry_base: Duration::from_millis(50),
        ..HttpConfig::default()
    };
    let Some(app) = TestApp::spawn_with(backend, config).await else {
        return;
    };
    let (url, seen) = receiver().await;
    for (body, says) in [
        (json!({"url": "ftp://example.com/x"}), "http or https"),
        (json!({"url": "not a url"}), "not a URL"),
        (
            json!({"url": url, "events": ["ticket.exploded"]}),
            "no event type",
        ),
    ] {
        let r = app.send(Method::POST, "/api/v1/webhooks", &body).await;
        assert_eq!(r.status(), 400);
        assert!(
            r.json::<Value>().await.unwrap()["detail"]
                .as_str()
                .unwrap()
                .contains(says),
            "{says}"
        );
    }
    let r = app
        .send(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": url, "events": ["ticket.created"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = hook["id"].as_str().unwrap().to_string();
    assert!(
        app.get_json("/api/v1/webhooks").await["webhooks"][0]
            .get("secret")
            .is_none(),
        "the secret is shown once"
    );

    let t = app
        .send(
            Method::POST,
            "/api/v1/tickets",
            &json!({"title": "Slow refunds", "owner": "payments", "severity": "low",
        "check": {"kind": "account_health_above", "account": "acme", "score": 60}}),
        )
        .await;
    assert_eq!(t.status(), 201);
    let ticket: Value = t.json().await.unwrap();

    // the worker polls every second when idle: three attempts take about three seconds
    for _ in 0..800 {
        if seen.lock().unwrap().calls.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let calls = std::mem::take(&mut seen.lock().unwrap().calls);
    assert_eq!(calls.len(), 3, "two 500s, then delivered");
    let msg_id = calls[0].0["webhook-id"].to_str().unwrap().to_string();
    assert!(
        calls
            .iter()
            .all(|(h, _)| h["webhook-id"] == msg_id.as_str()),
        "retries keep the message id"
    );
    // verify the last call the way a receiver would
    let (h, body) = &calls[2];
    let ts = h["webhook-timestamp"].to_str().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{ts}.{body}").as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    assert_eq!(h["webhook-signature"].to_str().unwrap(), expected);
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["type"], "ticket.created");
    assert_eq!(payload["data"]["id"], ticket["id"]);

    let mut log = Value::Null;
    for _ in 0..100 {
        log = app
            .get_json(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await;
        if log["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(
        (
            d["status"].as_str(),
            d["attempts"].as_i64(),
            d["message_id"].as_str()
        ),
        (Some("delivered"), Some(3), Some(msg_id.as_str())),
        "{log}"
    );
    assert_eq!(
        log["deliveries"].as_array().unwrap().len(),
        1,
        "events the endpoint did not ask for are not sent"
    );

    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &json!({})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            &json!({})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn webhooks_on_sqlite() {
    webhooks_are_signed_and_retried(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_on_postgres() {
    webhooks_are_signed_and_retried(Backend::Postgres).await;
}
