//! Access, route by route: every management route in the OpenAPI document is called without
//! credentials, with a write key, as a viewer, and with another tenant's secret key aimed at
//! this tenant's ids. Nothing answers 2xx that should not, and nothing answers 5xx.

mod common;

use common::{Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// Routes anyone may call: ingest (its own keys), public verification, the survey page.
const PUBLIC: &[&str] = &[
    "/v1/",
    "/batch",
    "/api/v1/events",
    "/api/v1/feedback",
    "/api/v1/messages/verify",
    "/api/v1/assets/verify",
    "/api/v1/taxonomy",
];

async fn every_route_checks_who_calls(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, common::loopback_webhooks()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    // tenant A's things
    assert_eq!(app.batch(json!({"batch": [{"type": "identify", "userId": "ana", "traits": {"email": "ana@example.com"}}]})).await.status(), 200);
    let profile = app
        .get_json("/api/v1/customers?identifier=user_id:ana")
        .await;
    let profile_id = profile["id"]
        .as_str()
        .or_else(|| profile["customers"][0]["id"].as_str())
        .unwrap_or("none")
        .to_string();
    let journey = json!({"id": "onboarding", "name": "Onboarding", "owner": "ada", "stages": [{"id": "s", "name": "S", "owner": "o", "entry": ["Signed Up"]}]});
    assert_eq!(
        app.send(Method::POST, "/api/v1/journeys", &journey)
            .await
            .status(),
        201
    );
    let ticket: Value = app
        .post(
            "/api/v1/tickets",
            &sk,
            &json!({"title": "t", "owner": "o", "severity": "low", "source": {"kind": "manual"},
        "check": {"kind": "account_health_above", "account": "acme", "score": 75}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.post("/api/v1/agents", &sk, &json!({"name": "bot-a"}))
            .await
            .status(),
        201
    );
    let decision: Value = app.post("/api/v1/decisions", &sk, &json!({"agent": "bot-a", "action": "refund", "customer": "user_id:ana", "context": {"amount": 100}})).await.json().await.unwrap();
    let survey = json!({"survey_id": "csat", "definition": {"name": "CSAT", "questions": [{"id": "q", "type": "csat", "prompt": "?"}]}});
    assert!(app
        .post("/api/v1/surveys", &sk, &survey)
        .await
        .status()
        .is_success());
    let hook: Value = app
        .post(
            "/api/v1/webhooks",
            &sk,
            &json!({"url": "http://127.0.0.1:9/x"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let keys = app.get_json("/api/v1/keys").await;
    let key_id = keys["keys"][0]["id"]
        .as_str()
        .or_else(|| keys[0]["id"].as_str())
        .unwrap_or("none")
        .to_string();
    let signing = app.get_json("/api/v1/signing-keys").await;
    let kid = signing["keys"][0]["kid"].as_str().unwrap().to_string();

    // tenant B, its key, and A's viewer
    let (_, b_write, b_secret) = TestApp::new_tenant(&app.store, "Other").await;
    let viewer = app.login("viewer@acme.test", cxm_store::Role::Viewer).await;

    let doc = app.get_json("/api/openapi.json").await;
    let mut checked = 0;
    let mut problems = vec![];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if PUBLIC.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        let id_for = |prefix: &str| -> String {
            match prefix {
                p if p.starts_with("/api/v1/journeys") => "onboarding".into(),
                p if p.starts_with("/api/v1/tickets") => ticket["id"].to_string(),
                p if p.starts_with("/api/v1/decisions") => {
                    decision["decision_id"].as_str().unwrap_or("x").into()
                }
                p if p.starts_with("/api/v1/customers") => profile_id.clone(),
                p if p.starts_with("/api/v1/agents") => "bot-a".into(),
                p if p.starts_with("/api/v1/surveys") => "csat".into(),
                p if p.starts_with("/api/v1/webhooks") => hook["id"].as_str().unwrap_or("x").into(),
                p if p.starts_with("/api/v1/keys") => key_id.clone(),
                p if p.starts_with("/api/v1/signing-keys") => kid.clone(),
                p if p.starts_with("/api/v1/policies") => "1".into(),
                p if p.starts_with("/api/v1/metrics") => "nps".into(),
                _ => "1".into(),
            }
        };
        let mut url = path.clone();
        while let (Some(a), Some(b)) = (url.find('{'), url.find('}')) {
            url.replace_range(a..=b, &id_for(path));
        }
        // a path parameter that names one of this tenant's things (a metric name does not)
        let has_id = path.contains('{') && !path.starts_with("/api/v1/metrics");
        for (method, _) in ops.as_object().unwrap() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = |auth: Option<(&str, &str)>| {
                let mut r = app
                    .client
                    .request(m.clone(), app.url(&url))
                    .header("content-type", "application/json")
                    .body("{}");
                match auth {
                    Some(("bearer", k)) => r = r.bearer_auth(k),
                    Some(("cookie", c)) => r = r.header("cookie", c),
                    _ => {}
                }
                async move { r.send().await.unwrap().status().as_u16() }
            };
            checked += 1;
            let anon = call(None).await;
            if anon != 401 {
                problems.push(format!("{method} {path} without credentials: {anon}"));
            }
            let wk = call(Some(("bearer", &app.write_key))).await;
            if wk != 403 && wk != 401 {
                problems.push(format!("{method} {path} with a write key: {wk}"));
            }
            let v = call(Some(("cookie", &viewer))).await;
            if method != "get" && v != 403 {
                problems.push(format!("{method} {path} as a viewer: {v}"));
            }
            if v >= 500 {
                problems.push(format!("{method} {path} as a viewer: {v}"));
            }
            if has_id {
                let other = call(Some(("bearer", &b_secret))).await;
                if (200..300).contains(&other) || other >= 500 {
                    problems.push(format!("{method} {url} with another tenant's key: {other}"));
                }
            }
            let _ = &b_write;
        }
    }
    assert!(checked > 60, "only {checked} operations found");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    app.stop().await;
}

#[tokio::test]
async fn access_on_sqlite() {
    every_route_checks_who_calls(Backend::Sqlite).await;
}

#[tokio::test]
async fn access_on_postgres() {
    every_route_checks_who_calls(Backend::Postgres).await;
}
