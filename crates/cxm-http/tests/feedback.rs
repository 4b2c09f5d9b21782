//! Feedback in and metrics out, over HTTP.

mod common;

use common::TestApp;
use serde_json::{json, Value};

fn day(d: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(d))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string()
}

#[tokio::test]
async fn answers_become_metrics_with_intervals_slices_and_change() {
    let app = TestApp::spawn().await;
    let mut answers = vec![];
    // previous 30 days: NPS 0 (1 promoter, 1 detractor per pair); last 30 days: mostly promoters
    for i in 0..40 {
        let score = if i % 2 == 0 { 10 } else { 2 };
        answers.push(json!({"response_id": format!("old{i}"), "question": "nps", "type": "nps", "value": score, "channel": "email", "collected_at": day(45)}));
    }
    for i in 0..40 {
        let (score, channel) = if i < 32 { (9, "email") } else { (4, "chat") };
        answers.push(json!({"response_id": format!("new{i}"), "question": "nps", "type": "nps", "value": score, "channel": channel, "collected_at": day(5)}));
    }
    answers.push(json!({"response_id": "new0", "question": "why", "type": "text", "value": "Third time I call about this!!! I'm switching to your competitor."}));
    answers.push(json!({"response_id": "c1", "question": "csat", "type": "csat", "value": 5}));
    answers.push(json!({"response_id": "c2", "question": "csat", "type": "csat", "value": 2}));
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({"answers": answers}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 83, "duplicates": 0})
    );
    // the same answers again are a no-op
    let again: Value = app
        .post("/api/v1/feedback", &app.secret_key, &json!(answers[..3]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, json!({"accepted": 0, "duplicates": 3}));

    let from = (chrono::Utc::now() - chrono::Duration::days(29))
        .format("%Y-%m-%d")
        .to_string();
    let m = app
        .get_json(&format!("/api/v1/metrics/nps?from={from}&interval=month"))
        .await;
    assert_eq!(m["overall"]["n"], 40);
    assert_eq!(
        m["overall"]["value"], 60.0,
        "32 promoters and 8 detractors of 40"
    );
    assert!(
        m["overall"]["ci_low"].as_f64().unwrap() < 60.0
            && m["overall"]["ci_high"].as_f64().unwrap() > 60.0
    );
    assert_eq!(m["change"]["previous"]["value"], 0.0);
    assert_eq!(m["change"]["delta"], 60.0);
    assert_eq!(m["change"]["significant"], true);
    let by = app
        .get_json(&format!(
            "/api/v1/metrics/nps?from={from}&by=channel&interval=month"
        ))
        .await;
    let groups: Vec<(String, f64)> = by["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["group"].as_str().unwrap().to_string(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        groups.contains(&("chat".into(), -100.0)) && groups.contains(&("email".into(), 100.0)),
        "{groups:?}"
    );
    let csat = app.get_json("/api/v1/metrics/csat").await;
    assert_eq!(csat["overall"]["value"], 50.0);

    for (path, status) in [
        ("/api/v1/metrics/nps?interval=hour", 400),
        ("/api/v1/metrics/nps?from=2026-13-01", 400),
        ("/api/v1/metrics/nps?by=colour", 400),
        ("/api/v1/metrics/happiness", 404),
    ] {
        assert_eq!(app.get(path).await.status().as_u16(), status, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn one_bad_answer_rejects_the_request_and_says_which() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!([
                {"response_id": "r1", "question": "nps", "type": "nps", "value": 9},
                {"response_id": "r2", "question": "nps", "type": "nps", "value": 12},
                {"response_id": "r3", "type": "csat", "value": 4}
            ]),
        )
        .await;
    assert_eq!(r.status(), 400);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "invalid_parameter");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("answers[1].value") && detail.contains("answers[2].question"),
        "{detail}"
    );
    let m = app.get_json("/api/v1/metrics/nps").await;
    assert_eq!(m["overall"], Value::Null, "nothing was stored");
    let r = app
        .client
        .post(app.url("/api/v1/feedback"))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}
