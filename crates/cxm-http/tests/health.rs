//! Account health over HTTP: facts from real events and answers, scores and bands with each
//! signal's contribution, deduplicated alerts, signal edits and the backtest.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

fn days_ago(d: f64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes((d * 24.0 * 60.0) as i64)).to_rfc3339()
}

async fn upkeep(app: &TestApp) -> Value {
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    let r = tokio::task::spawn_blocking(move || {
        cxm_app::health::upkeep(store.as_ref(), &tenant, true).unwrap()
    })
    .await
    .unwrap();
    serde_json::to_value(r).unwrap()
}

async fn health_from_events(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let renewal = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let mut batch = vec![
        json!({"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "arr": 120000, "renewal_date": renewal, "csm": "csm@acme.io"}, "timestamp": days_ago(40.0)}),
        json!({"type": "group", "userId": "u2", "groupId": "globex", "traits": {"name": "Globex", "arr": 30000}, "timestamp": days_ago(40.0)}),
        json!({"type": "group", "userId": "u3", "groupId": "initech", "traits": {"name": "Initech", "arr": 5000}, "timestamp": days_ago(40.0)}),
        // Acme: heavy use the week before last, little last week, a failed payment, three tickets
        json!({"type": "track", "userId": "u1", "event": "Payment Failed", "timestamp": days_ago(3.0)}),
        // Initech went quiet twenty days ago; Globex used the product yesterday
        json!({"type": "track", "userId": "u3", "event": "Feature Used", "timestamp": days_ago(20.0)}),
        json!({"type": "track", "userId": "u2", "event": "Feature Used", "timestamp": days_ago(1.0)}),
    ];
    for i in 0..10 {
        batch.push(json!({"type": "track", "userId": "u1", "event": "Feature Used", "timestamp": days_ago(8.0 + f64::from(i) * 0.5)}));
    }
    for i in 0..2 {
        batch.push(json!({"type": "track", "userId": "u1", "event": "Feature Used", "timestamp": days_ago(1.0 + f64::from(i))}));
    }
    for i in 0..3 {
        batch.push(json!({"type": "track", "userId": "u1", "groupId": "acme", "event": "Ticket Opened", "timestamp": days_ago(2.0 + f64::from(i))}));
    }
    let r = app
        .client
        .post(app.url("/v1/batch?historical=true"))
        .basic_auth(&app.write_key, Some(""))
        .json(&json!({"batch": batch}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answers = json!({"answers": [{"response_id": "g1", "question": "nps", "type": "nps", "value": 2, "identifier": "user_id:u2", "collected_at": days_ago(2.0)}]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &answers)
            .await
            .status(),
        200
    );

    let first = upkeep(&app).await;
    assert_eq!(first["accounts"], 3, "{first}");
    let at_risk = app.get_json("/api/v1/accounts?band=at_risk").await;
    let accounts = at_risk["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{at_risk}");
    let acme = &accounts[0];
    assert_eq!(
        (
            acme["group_id"].as_str(),
            acme["name"].as_str(),
            acme["arr"].as_f64()
        ),
        (Some("acme"), Some("Acme"), Some(120000.0))
    );
    let fired: Vec<&str> = acme["readings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fired"] == true)
        .map(|r| r["signal"].as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        ["tickets_up", "payment_failed", "renewal_usage_drop"],
        "{acme}"
    );
    // 8 of 13 weight lost
    assert_eq!(acme["score"], 38.5);

    // the home brief reads the same figures: the success manager's at-risk list, the
    // leader's money and North Star, and the week's counts
    let home = app.get_json("/api/v1/home").await;
    let alerts = app.get_json("/api/v1/alerts?status=open").await;
    let open = alerts["alerts"].as_array().unwrap().len();
    assert!(open >= 2, "{alerts}");
    assert_eq!(home["at_risk_accounts"][0]["group_id"], "acme", "{home}");
    assert_eq!(home["at_risk_accounts"].as_array().unwrap().len(), 1);
    assert_eq!(home["revenue_at_risk"], at_risk["revenue_at_risk"]);
    assert_eq!(home["week"]["alerts_raised"], open, "every alert is new");
    assert_eq!(home["week"]["alerts_raised_before"], 0);
    assert_eq!(home["week"]["nps"]["overall"]["n"], 1, "{}", home["week"]);
    assert_eq!(home["week"]["nps"]["overall"]["value"], -100.0);
    assert!(home["week"]["nps"]["change"]["previous"].is_null());
    assert_eq!(home["north_star"]["basis"], "evidence");
    let stage = home["north_star"]["stage"].as_str().unwrap();
    assert!(
        ["repair", "elevate", "optimize", "differentiate"].contains(&stage),
        "{stage}"
    );
    assert_eq!(home["north_star"]["kpis"].as_array().unwrap().len(), 2);
    assert!(
        home["journey_moves"].as_array().unwrap().is_empty(),
        "no journeys"
    );
    let all = app.get_json("/api/v1/accounts").await;
    let band_of = |id: &str| {
        all["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["group_id"] == id)
            .unwrap()["band"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (band_of("globex"), band_of("initech")),
        ("healthy".to_string(), "healthy".to_string())
    );
    let initech = all["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["group_id"] == "initech")
        .unwrap();
    assert_eq!(
        initech["readings"][0]["fired"], true,
        "inactive for 20 days: {initech}"
    );

    let alerts = app.get_json("/api/v1/alerts?status=open").await;
    let mut got: Vec<(String, String, String)> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["group_id"].as_str().unwrap().into(),
                a["kind"].as_str().unwrap().into(),
                a["signal"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("acme".into(), "at_risk".into(), "band".into()),
            ("acme".into(), "signal".into(), "payment_failed".into()),
            ("globex".into(), "signal".into(), "unhappy".into())
        ]
    );
    assert_eq!(
        at_risk["revenue_at_risk"], 150000.0,
        "Acme and Globex have open alerts"
    );
    // Acme's alerts are routed to its CSM; Globex names nobody
    let mine = app
        .get_json("/api/v1/alerts?status=open&owner=csm@acme.io")
        .await;
    let mine: Vec<&str> = mine["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["group_id"].as_str().unwrap())
        .collect();
    assert_eq!(mine, ["acme", "acme"]);
    // rescoring does not repeat alerts that are still open
    assert_eq!(upkeep(&app).await["alerts_opened"], 0);
    let id = alerts["alerts"][0]["id"].as_i64().unwrap();
    let r = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{id}"),
            &json!({"status": "acknowledged"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "acknowledged");
    assert_eq!(
        app.send(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{id}"),
            &json!({"status": "done"})
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        app.send(
            reqwest::Method::POST,
            "/api/v1/alerts/999999",
            &json!({"status": "resolved"})
        )
        .await
        .status(),
        404
    );
    let detail = app.get_json("/api/v1/accounts/acme").await;
    assert_eq!(detail["trend"].as_array().unwrap().len(), 1);
    assert!(detail["alerts"].as_array().unwrap().len() >= 2);

    // signals: impossible thresholds are refused; a change rescores at once
    let mut set = app.get_json("/api/v1/signals").await;
    assert_eq!(set["version"], 0, "the defaults");
    set.as_object_mut().unwrap().remove("version");
    let mut bad = set.clone();
    bad["signals"][0]["threshold"] = json!(-3);
    let r = app
        .send(reqwest::Method::PUT, "/api/v1/signals", &bad)
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("signals[0].threshold"));
    set["signals"][0]["threshold"] = json!(30);
    let r = app
        .send(reqwest::Method::PUT, "/api/v1/signals", &set)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 1);
    let all = app.get_json("/api/v1/accounts").await;
    let initech = all["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["group_id"] == "initech")
        .unwrap();
    assert_eq!(
        initech["score"], 100.0,
        "20 days is no longer inactive at a 30-day threshold"
    );

    let from = (chrono::Utc::now() - chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string();
    let to = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let bt = app
        .send(
            reqwest::Method::POST,
            "/api/v1/signals/backtest",
            &json!({"from": from, "to": to}),
        )
        .await;
    assert_eq!(bt.status(), 200);
    let bt: Value = bt.json().await.unwrap();
    assert_eq!(
        bt["rows"].as_array().unwrap().len(),
        6,
        "five signals and the at-risk band: {bt}"
    );
    assert_eq!(bt["churned_accounts"], 0);
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/signals/backtest",
            &json!({"from": to, "to": from}),
        )
        .await;
    assert_eq!(r.status(), 400);
    // the dashboard: accounts by band with what fired, the alerts inbox, resolving from it
    let cookie = app.login("csm@acme.io", cxm_store::Role::Analyst).await;
    let page = |path: String| {
        let c = app
            .client
            .get(app.url(&path))
            .header("cookie", cookie.clone());
        async move { c.send().await.unwrap().text().await.unwrap() }
    };
    let accounts = page("/accounts?band=at_risk".into()).await;
    for want in [
        "Acme",
        "revenue at risk",
        "1 failed payment in 14 days",
        "at risk",
    ] {
        assert!(accounts.contains(want), "{want} missing");
    }
    assert!(!accounts.contains("Initech"), "only the at-risk band");
    assert!(page("/alerts".into())
        .await
        .contains("Acme is at risk (health 38.5)"));
    let routed = page("/alerts?owner=me".into()).await;
    assert!(
        routed.contains("for csm@acme.io") && !routed.contains("Globex"),
        "{routed}"
    );
    // the Globex alert was acknowledged above
    let inbox = page("/alerts?status=acknowledged".into()).await;
    assert!(
        inbox.contains("Globex: 1 detractor or CSAT ≤ 2 answer in 30 days")
            && inbox.contains("Resolve"),
        "{inbox}"
    );
    let globex = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["group_id"] == "globex")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = app
        .client
        .post(app.url(&format!("/alerts/{globex}/resolved")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(page("/alerts?status=resolved".into())
        .await
        .contains("Globex"));
    assert_eq!(
        app.client
            .post(app.url(&format!("/alerts/{globex}/gone")))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    assert_eq!(app.get("/api/v1/accounts?band=doomed").await.status(), 400);
    assert_eq!(app.get("/api/v1/accounts/nobody").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn health_on_sqlite() {
    health_from_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn health_on_postgres() {
    health_from_events(Backend::Postgres).await;
}
