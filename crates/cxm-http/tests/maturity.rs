//! Maturity and ROI over HTTP: the evidence starts at the bottom for an empty tenant and
//! rises with what is built; a half-answered assessment is refused with the missing
//! questions named; an over-confident one shows its gaps; the ROI follows its stated
//! formula and picks up ARR and contact volume from real events.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.send(reqwest::Method::PUT, path, &body).await;
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn maturity_and_roi(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let m = app.get_json("/api/v1/maturity").await;
    assert_eq!(m["assessment"], Value::Null);
    assert_eq!(m["evidence"]["stage"], "repair");
    assert_eq!(m["evidence"]["score"], 0.0);
    assert_eq!(m["questions"].as_array().unwrap().len(), 5);

    let (s, b) = put(
        &app,
        "/api/v1/maturity",
        json!({"answers": {"c_suite": 3, "ai": 2, "journeys": 2}}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{b}"
    );
    assert!(
        b["detail"].as_str().unwrap().contains("alignment, trust"),
        "{b}"
    );
    let (s, _) = put(
        &app,
        "/api/v1/maturity",
        json!({"answers": {"c_suite": 3, "ai": 2, "journeys": 2, "alignment": 2, "trust": 9}}),
    )
    .await;
    assert_eq!(s, 400);

    // an agent is evidence of some AI maturity
    assert_eq!(
        app.post(
            "/api/v1/agents",
            &app.secret_key,
            &json!({"name": "helper"})
        )
        .await
        .status(),
        201
    );
    let (s, m) = put(
        &app,
        "/api/v1/maturity",
        json!({"answers": {"c_suite": 4, "ai": 4, "journeys": 4, "alignment": 4, "trust": 4}}),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["assessment"]["stage"], "differentiate");
    assert_eq!(
        m["assessment"]["north_star"],
        "ROX and the Journey Performance Score"
    );
    let ai = m["evidence_detail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["question"] == "ai")
        .unwrap()
        .clone();
    assert_eq!(ai["level"], 2, "{ai}");
    assert_eq!(m["gaps"].as_array().unwrap().len(), 5, "{}", m["gaps"]);
    assert!(m["gaps"][0]["note"]
        .as_str()
        .unwrap()
        .contains("the data shows level"));

    // the calculator as stated
    let roi = app.get_json("/api/v1/roi").await;
    assert_eq!(roi["result"]["total"], 1_740_000.0);
    assert_eq!(
        roi["measured"].as_array().unwrap().len(),
        0,
        "{}",
        roi["measured"]
    );
    let mut a = roi["assumptions"].clone();
    a["annual_churn_pct"] = json!(140);
    let (s, b) = put(&app, "/api/v1/roi", a.clone()).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_parameter")));
    a["annual_churn_pct"] = json!(10);
    a["arr"] = json!(2_000_000);
    let (s, b) = put(&app, "/api/v1/roi", a).await;
    assert_eq!(s, 200);
    // 2M × 10 % × 25 % + 100k × 2 % × 50 % × 1,200 + 100k × 40 % × 6
    assert_eq!(b["result"]["total"], 50_000.0 + 1_200_000.0 + 240_000.0);

    // real accounts and contacts
    let mut batch = vec![];
    for i in 0..4 {
        batch.push(json!({"type": "group", "userId": format!("u{i}"), "groupId": format!("acct-{i}"), "traits": {"name": format!("Acct {i}"), "arr": 25_000 * (i + 1)}}));
        batch.push(json!({"type": "track", "userId": format!("u{i}"), "event": "Ticket Opened", "properties": {"intent": "billing"}}));
    }
    batch.push(
        json!({"type": "track", "userId": "u0", "groupId": "acct-0", "event": "Churn Notice"}),
    );
    assert_eq!(app.batch(json!({ "batch": batch })).await.status(), 200);
    // account health is a projection the worker keeps; bring it up to date
    let store = app.store.clone();
    let tenant = app.tenant.clone();
    tokio::task::spawn_blocking(move || {
        cxm_app::health::upkeep(store.as_ref(), &tenant, true).unwrap()
    })
    .await
    .unwrap();
    let roi = app.get_json("/api/v1/roi").await;
    let measured: std::collections::HashMap<String, f64> = roi["measured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["field"].as_str().unwrap().to_string(),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(measured.get("arr"), Some(&250_000.0), "{}", roi["measured"]);
    assert_eq!(
        measured.get("annual_churn_pct"),
        Some(&25.0),
        "{}",
        roi["measured"]
    );
    assert!(
        measured.get("contacts_per_year").is_some_and(|v| *v >= 4.0),
        "{}",
        roi["measured"]
    );
    assert_eq!(roi["with_data"]["arr"], 250_000.0);
    app.stop().await;
}

#[tokio::test]
async fn maturity_on_sqlite() {
    maturity_and_roi(Backend::Sqlite).await;
}

#[tokio::test]
async fn maturity_on_postgres() {
    maturity_and_roi(Backend::Postgres).await;
}
