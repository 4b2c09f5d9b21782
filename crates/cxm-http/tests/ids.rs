//! Ids people see say nothing about other tenants: profile ids are keyed hashes, not the
//! sequence of the event that made them; ticket ids are not a counter shared by every
//! tenant. Ids of the old form (profiles made before the change) still resolve.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

async fn ids_are_opaque(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let (_, other_wk, other_sk) = TestApp::new_tenant(&app.store, "Busy").await;
    async fn profile(app: &TestApp, who: &str) -> String {
        app.get_json(&format!("/api/v1/customers?identifier=user_id:{who}"))
            .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
    let send = |key: String, users: Vec<String>| {
        let (client, url) = (app.client.clone(), app.url("/v1/batch"));
        async move {
            let batch: Vec<Value> = users
                .iter()
                .map(|u| json!({"type": "identify", "userId": u}))
                .collect();
            let r = client
                .post(url)
                .basic_auth(key, Some(""))
                .json(&json!({ "batch": batch }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    send(app.write_key.clone(), vec!["ana".into()]).await;
    let before = profile(&app, "ana").await;
    // another tenant is busy in between
    send(
        other_wk.clone(),
        (0..300).map(|i| format!("u{i}")).collect(),
    )
    .await;
    send(app.write_key.clone(), vec!["bo".into()]).await;
    let after = profile(&app, "bo").await;
    for id in [&before, &after] {
        let tail = id.strip_prefix("p_").unwrap();
        assert!(
            tail.len() == 20 && tail.chars().all(|c| c.is_ascii_hexdigit()),
            "{id} is not opaque"
        );
    }
    assert_ne!(before, after);

    // tickets: ids of one tenant's consecutive tickets do not count the other's in between
    let ticket = |sk: String| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/tickets"));
        async move {
            let r = client
                .post(url)
                .bearer_auth(sk)
                .json(&json!({"title": "t", "owner": "o", "severity": "low", "check": {"kind": "account_health_above", "account": "acme", "score": 75}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    };
    let first = ticket(app.secret_key.clone()).await;
    for _ in 0..5 {
        ticket(other_sk.clone()).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let second = ticket(app.secret_key.clone()).await;
    assert!(second > first, "ids still sort by creation");
    assert!(
        second - first > 4096,
        "{first} then {second}: the gap is time, not a count of the tickets between"
    );
    assert!(first > 1 << 32, "not a small counter: {first}");
    assert!(first < 1 << 53, "exact as a JSON number");
    assert_eq!(
        app.get_json(&format!("/api/v1/tickets/{first}")).await["id"],
        first
    );

    // a profile of the old form still resolves: profiles made before the change keep theirs
    cxm_store::testing::execute_sql(
        &app.sql,
        "UPDATE tenants SET legacy_profile_seq = 1000000000",
    );
    send(app.write_key.clone(), vec!["cy".into()]).await;
    let old_form = profile(&app, "cy").await;
    assert!(
        old_form[2..].chars().all(|c| c.is_ascii_digit()),
        "{old_form}"
    );
    let c = app.get_json(&format!("/api/v1/customers/{old_form}")).await;
    assert_eq!(c["id"], old_form);
    app.stop().await;
}

#[tokio::test]
async fn ids_on_sqlite() {
    ids_are_opaque(Backend::Sqlite).await;
}

#[tokio::test]
async fn ids_on_postgres() {
    ids_are_opaque(Backend::Postgres).await;
}
