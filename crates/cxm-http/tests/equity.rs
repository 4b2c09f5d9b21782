//! Customer equity over HTTP from real order events: too little data is said, not fitted;
//! with enough, every buyer gets a value, a tier and a reason, the tiers split as
//! configured, accounts add up their customers, agents see the tier in the customer's
//! context, and bad settings are refused.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

fn day(d: i64) -> String {
    let t = chrono::Utc::now() - chrono::Duration::days(d);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn equity_from_orders(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    // one customer is no model
    let r = app.batch(json!({"batch": [
        {"type": "identify", "userId": "solo", "traits": {"name": "Solo Buyer"}},
        {"type": "track", "userId": "solo", "event": "Order Completed", "properties": {"revenue": 30}, "timestamp": day(10)}
    ]})).await;
    assert_eq!(r.status(), 200);
    let e = app.get_json("/api/v1/equity").await;
    assert_eq!(e["fitted"], false);
    assert!(
        e["message"].as_str().unwrap().contains("too little data"),
        "{e}"
    );
    let r = app.get("/api/v1/customers/user_id:solo/value").await;
    assert_eq!(r.status(), 404);

    // 120 customers over 40 weeks in 12 accounts: some buy often and recently, some stopped
    let mut batch = vec![];
    let mut spent = std::collections::HashMap::<String, f64>::new();
    for c in 0..120i64 {
        let user = format!("buyer-{c:03}");
        let account = format!("acct-{}", c % 12);
        batch.push(json!({"type": "identify", "userId": user, "traits": {"name": format!("Buyer {c}")}, "timestamp": day(290)}));
        let orders = 1 + c % 6;
        let gap = 3 + c % 5;
        for k in 0..orders {
            let amount = 20.0 + ((c * 7 + k * 3) % 40) as f64;
            *spent.entry(account.clone()).or_default() += amount;
            batch.push(json!({"type": "track", "userId": user, "groupId": account, "event": "Order Completed",
                "properties": {"revenue": amount}, "timestamp": day(280 - c % 30 - k * gap * 7)}));
        }
    }
    // a refund and an order without an amount are left out, and said
    batch.push(json!({"type": "track", "userId": "buyer-001", "event": "Order Completed", "properties": {"revenue": -25}, "timestamp": day(5)}));
    batch.push(json!({"type": "track", "userId": "buyer-002", "event": "Order Completed", "properties": {"note": "free"}, "timestamp": day(5)}));
    for chunk in batch.chunks(400) {
        assert_eq!(app.batch(json!({ "batch": chunk })).await.status(), 200);
    }
    // the old (unfitted) computation is cached for a while; changing settings drops it
    let s = app.get_json("/api/v1/equity/settings").await;
    assert_eq!(s["tiers"].as_array().unwrap().len(), 3);
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/equity/settings",
            &json!({"events": ["Order Completed"], "horizon_months": 12, "monthly_discount": 0.01,
            "tiers": [{"name": "top", "share": 0.2}, {"name": "rest", "share": 0.8}]}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let e = app.get_json("/api/v1/equity").await;
    assert_eq!(e["fitted"], true, "{e}");
    assert_eq!(e["customers"], 121);
    assert_eq!(e["missing_amounts"], 1);
    assert_eq!(e["refunds_left_out"], 1);
    let tiers: Vec<(String, u64)> = e["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["customers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(tiers, [("top".into(), 24), ("rest".into(), 97)]);
    let total: f64 = e["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["clv"].as_f64().unwrap())
        .sum();
    assert!((total - e["total_clv"].as_f64().unwrap()).abs() < 1e-6 * total.max(1.0));
    // accounts are the sum of their customers' value and spend
    let acct = &e["top_accounts"][0];
    let name = acct["account"].as_str().unwrap();
    assert!(
        (acct["total_spend"].as_f64().unwrap() - spent[name]).abs() < 1e-9,
        "{acct}"
    );
    let top = &e["top_customers"][0];
    assert_eq!(top["tier"], "top");
    assert!(
        top["reason"]
            .as_str()
            .unwrap()
            .starts_with("top tier: in the top 20 %"),
        "{top}"
    );

    // one customer's value, and the same in an agent's context
    let v = app
        .get_json("/api/v1/customers/user_id:buyer-005/value")
        .await;
    assert!(v["clv"].as_f64().unwrap() > 0.0);
    assert!(["top", "rest"].contains(&v["tier"].as_str().unwrap()));
    let ctx = app
        .get_json(&format!(
            "/api/v1/customers/{}/context",
            v["profile_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ctx["value"]["tier"], v["tier"], "{}", ctx["value"]);
    let r = app.get("/api/v1/customers/user_id:nobody/value").await;
    assert_eq!(r.status(), 404);

    // a survey that targets the top value tier invites the top customer and not the other
    let customers = e["top_customers"].as_array().unwrap();
    let mut users = vec![];
    for c in [
        &customers[0],
        customers.iter().find(|c| c["tier"] == "rest").unwrap(),
    ] {
        let p = app
            .get_json(&format!(
                "/api/v1/customers/{}",
                c["customer"].as_str().unwrap()
            ))
            .await;
        let id = p["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "user_id")
            .unwrap()["value"]
            .clone();
        users.push(id.as_str().unwrap().to_string());
    }
    let (top_user, rest_user) = (users[0].clone(), users[1].clone());
    let def = json!({"survey_id": "vip-care", "definition": {"name": "A word from our best customers",
        "questions": [{"id": "csat", "type": "csat", "prompt": "How satisfied are you?"}],
        "targeting": {"events": ["Support Call"], "tiers": ["top"]}}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &def)
            .await
            .status(),
        201
    );
    let (s, t) = (app.store.clone(), app.tenant.clone());
    for _ in 0..200 {
        let (s, t) = (s.clone(), t.clone());
        if tokio::task::spawn_blocking(move || s.trigger_cursor(&t).unwrap())
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let calls = json!({"batch": [
        {"type": "track", "userId": top_user, "event": "Support Call"},
        {"type": "track", "userId": rest_user, "event": "Support Call"}
    ]});
    assert_eq!(app.batch(calls).await.status(), 200);
    let mut invited = vec![];
    for _ in 0..200 {
        let l = app.get_json("/api/v1/surveys/invitations").await;
        invited = l["invitations"].as_array().unwrap().clone();
        if !invited.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // give the worker time to (wrongly) invite the second one too
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let invited = app.get_json("/api/v1/surveys/invitations").await["invitations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(
        invited[0]["identifier"],
        format!("user_id:{top_user}"),
        "{invited:?}"
    );

    // a ticket naming a top-tier customer is raised a step, and says why; others are not
    for (user, want) in [(&top_user, "high"), (&rest_user, "medium")] {
        let r = app.post("/api/v1/tickets", &app.secret_key, &json!({"title": "checkout fails", "owner": "web-lead", "severity": "medium",
            "source": {"kind": "manual"}, "check": {"kind": "csat_recovers", "accounts": ["acct-1"], "percent": 80, "days": 30, "min_answers": 1},
            "impact": {"customers": 1, "identifiers": [format!("user_id:{user}")]}})).await;
        assert_eq!(r.status(), 201);
        let t: Value = r.json().await.unwrap();
        assert_eq!(t["severity"], want, "{t}");
        assert_eq!(
            t["description"]
                .as_str()
                .unwrap_or("")
                .contains("raised from medium to high"),
            want == "high",
            "{t}"
        );
    }

    // the large-account detractor rule raises its ticket for a top-tier account, not others
    let accounts = e["top_accounts"].as_array().unwrap();
    let top_acct = accounts[0]["account"].as_str().unwrap().to_string();
    let rest_acct = accounts.iter().find(|a| a["tier"] == "rest").unwrap()["account"]
        .as_str()
        .unwrap()
        .to_string();
    let mut batch = vec![];
    let mut answers = vec![];
    for (i, acct) in [&top_acct, &rest_acct].iter().enumerate() {
        let user = format!("critic-{i}");
        batch.push(json!({"type": "group", "userId": user, "groupId": acct, "traits": {"name": acct, "arr": 90000}}));
        answers.push(json!({"response_id": format!("d-{i}"), "question": "nps", "type": "nps", "value": 1, "identifier": format!("user_id:{user}")}));
    }
    assert_eq!(app.batch(json!({ "batch": batch })).await.status(), 200);
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({ "answers": answers }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rules = json!({"large_account_detractors": {"min_arr": 50000.0, "owner": "cs-lead", "severity": "medium"}});
    assert_eq!(
        app.send(reqwest::Method::PUT, "/api/v1/ticket-rules", &rules)
            .await
            .status(),
        200
    );
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    tokio::task::spawn_blocking(move || {
        let now = chrono::Utc::now().timestamp_millis();
        let value = cxm_app::equity::compute(store.as_ref(), &tenant, now).unwrap();
        cxm_app::health::upkeep_with(store.as_ref(), &tenant, true, Some(&value)).unwrap()
    })
    .await
    .unwrap();
    let list = app.get_json("/api/v1/tickets").await;
    let sev = |acct: &str| {
        list["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| {
                t["title"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Detractor at {acct} "))
            })
            .map(|t| t["severity"].as_str().unwrap().to_string())
    };
    assert_eq!(sev(&top_acct).as_deref(), Some("high"), "{list}");
    assert_eq!(sev(&rest_acct).as_deref(), Some("medium"), "{list}");

    // bad settings
    for bad in [
        json!({"tiers": [{"name": "top", "share": 0.5}]}),
        json!({"horizon_months": 0}),
        json!({"events": []}),
        json!({"model": "magic"}),
    ] {
        let r = app
            .send(reqwest::Method::PUT, "/api/v1/equity/settings", &bad)
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["code"], "invalid_parameter");
    }
    app.stop().await;
}

#[tokio::test]
async fn equity_on_sqlite() {
    equity_from_orders(Backend::Sqlite).await;
}

#[tokio::test]
async fn equity_on_postgres() {
    equity_from_orders(Backend::Postgres).await;
}
