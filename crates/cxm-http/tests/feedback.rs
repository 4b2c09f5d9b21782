//! Feedback in and metrics out, over HTTP.

mod common;

use common::{Backend, TestApp};
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

#[tokio::test]
async fn hosted_survey_with_follow_up_feeds_the_metrics() {
    let app = TestApp::spawn().await;
    let def = json!({"survey_id": "post-ticket", "definition": {"name": "How did we do?", "questions": [
        {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true},
        {"id": "why", "type": "text", "prompt": "What is the main reason for your score?"}]}});
    let r = app.post("/api/v1/surveys", &app.secret_key, &def).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 1);
    let bad = app
        .post(
            "/api/v1/surveys",
            &app.secret_key,
            &json!({"survey_id": "x", "definition": {"name": "x", "questions": []}}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let link: Value = app
        .post(
            "/api/v1/surveys/post-ticket/links",
            &app.secret_key,
            &json!({"identifier": "user_id:u1", "channel": "email"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = app.url(link["url"].as_str().unwrap());

    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("How likely are you to recommend us?")
            && html.contains(r#"type="radio" name="q_nps" value="10""#)
    );
    // the required score is missing: the form comes back with the reason
    let r = app
        .client
        .post(&url)
        .form(&[("q_why", "fine")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Please answer"));
    // a vague answer gets a follow-up question
    let r = app
        .client
        .post(&url)
        .form(&[("q_nps", "7"), ("q_why", "fine")])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("Could you tell us a bit more?"), "{html}");
    let r = app
        .client
        .post(format!("{url}/more"))
        .form(&[
            ("answer", "The refund took three weeks and two calls"),
            ("n", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Thank you"));
    // answering again does nothing
    let again = app
        .client
        .post(&url)
        .form(&[("q_nps", "0")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("already answered"));

    let m = app.get_json("/api/v1/metrics/nps").await;
    assert_eq!(m["overall"]["n"], 1);
    assert_eq!(m["overall"]["value"], 0.0, "a 7 is a passive");
    let surveys = app.get_json("/api/v1/surveys").await;
    let s = &surveys["surveys"][0];
    assert_eq!(
        (
            s["links"].as_i64(),
            s["displays"].as_i64(),
            s["responses"].as_i64(),
            s["response_rate"].as_f64()
        ),
        (Some(1), Some(1), Some(1), Some(100.0))
    );
    let missing = app
        .client
        .get(app.url("/s/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn branching_asks_detractors_and_promoters_different_things() {
    let app = TestApp::spawn().await;
    let def = json!({"survey_id": "branching", "definition": {"name": "Support", "questions": [
        {"id": "nps", "type": "nps", "prompt": "Recommend us?", "required": true},
        {"id": "fix", "type": "text", "prompt": "What should we fix first?", "required": true, "show_if": {"question": "nps", "at_most": 6}},
        {"id": "praise", "type": "text", "prompt": "What did you like?", "show_if": {"question": "nps", "at_least": 9}}]}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &def)
            .await
            .status(),
        201
    );
    let bad = json!({"survey_id": "b2", "definition": {"name": "x", "questions": [
        {"id": "a", "type": "text", "prompt": "A?", "show_if": {"question": "later", "any_of": ["x"]}},
        {"id": "later", "type": "text", "prompt": "B?"}]}});
    let r = app.post("/api/v1/surveys", &app.secret_key, &bad).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("earlier question"));

    let mut urls = vec![];
    for who in ["user_id:d1", "user_id:p1"] {
        let link: Value = app
            .post(
                "/api/v1/surveys/branching/links",
                &app.secret_key,
                &json!({"identifier": who}),
            )
            .await
            .json()
            .await
            .unwrap();
        urls.push(app.url(link["url"].as_str().unwrap()));
    }
    let first = app
        .client
        .get(&urls[0])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(first.contains("Recommend us?") && !first.contains("What should we fix first?"));
    assert!(first.contains(">Next<"));
    // a detractor is asked what to fix, not what they liked; the score rides along hidden
    let page2 = app
        .client
        .post(&urls[0])
        .form(&[("step", "0"), ("q_nps", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(page2.status(), 200);
    let html = page2.text().await.unwrap();
    assert!(
        html.contains("What should we fix first?") && !html.contains("What did you like?"),
        "{html}"
    );
    assert!(html.contains(r#"type="hidden" name="q_nps" value="3""#));
    assert_eq!(
        app.get_json("/api/v1/metrics/nps").await["overall"],
        Value::Null,
        "nothing stored before the last page"
    );
    // the required branch question is enforced
    let r = app
        .client
        .post(&urls[0])
        .form(&[("step", "1"), ("q_nps", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .client
        .post(&urls[0])
        .form(&[
            ("step", "1"),
            ("q_nps", "3"),
            ("q_fix", "billing takes three calls to sort out"),
            ("q_praise", "smuggled"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // a promoter sees the other branch
    let html = app
        .client
        .post(&urls[1])
        .form(&[("step", "0"), ("q_nps", "10")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("What did you like?") && !html.contains("What should we fix first?"));
    app.client
        .post(&urls[1])
        .form(&[
            ("step", "1"),
            ("q_nps", "10"),
            ("q_praise", "quick and friendly chat agent"),
        ])
        .send()
        .await
        .unwrap();

    let m = app.get_json("/api/v1/metrics/nps").await;
    assert_eq!(m["overall"]["n"], 2);
    let texts: Vec<String> = tokio::task::spawn_blocking({
        let (s, t) = (app.store.clone(), app.tenant.clone());
        move || {
            s.text_answers(&t, 0, i64::MAX, 10)
                .unwrap()
                .into_iter()
                .map(|a| a.text)
                .collect()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        texts.len(),
        2,
        "a hidden question's smuggled answer is not stored: {texts:?}"
    );
    assert!(!texts.iter().any(|t| t == "smuggled"));
    app.stop().await;
}

#[tokio::test]
async fn bots_ask_what_the_branching_and_follow_ups_say() {
    let app = TestApp::spawn().await;
    let def = json!({"survey_id": "bot", "definition": {"name": "Chat survey", "questions": [
        {"id": "nps", "type": "nps", "prompt": "Recommend us?", "required": true},
        {"id": "fix", "type": "text", "prompt": "What should we fix first?", "show_if": {"question": "nps", "at_most": 6}},
        {"id": "praise", "type": "text", "prompt": "What did you like?", "show_if": {"question": "nps", "at_least": 9}}]}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &def)
            .await
            .status(),
        201
    );
    let next = |body: Value| {
        let app = &app;
        async move {
            let r = app
                .post("/api/v1/surveys/bot/next", &app.secret_key, &body)
                .await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let ids = |v: &Value| -> Vec<String> {
        v["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = next(json!({})).await;
    assert_eq!((s.as_u16(), ids(&v)), (200, vec!["nps".to_string()]));
    let (_, v) = next(json!({"answers": {"nps": 3}})).await;
    assert_eq!(ids(&v), ["fix"]);
    let (_, v) = next(json!({"answers": {"nps": "10"}})).await;
    assert_eq!(ids(&v), ["praise"]);
    // every question answered: a vague answer gets a follow-up, until the limit
    let (_, v) = next(json!({"answers": {"nps": 3, "fix": "fine"}})).await;
    assert_eq!(
        (v["done"].as_bool(), v["follow_up"]["reason"].as_str()),
        (Some(false), Some("vague"))
    );
    let (_, v) = next(json!({"answers": {"nps": 3, "fix": "fine"}, "follow_ups_asked": 2})).await;
    assert_eq!(
        (v["done"].as_bool(), v["follow_up"].is_null()),
        (Some(true), true)
    );
    let (_, v) = next(json!({"answers": {"nps": 9, "praise": "The agent on chat solved my billing question quickly"}})).await;
    assert_eq!(v["done"], true);
    for (body, status) in [
        (json!({"answers": {"nope": 1}}), 400),
        (json!({"answers": {"nps": 11}}), 400),
        (json!({"answers": {"nps": [1]}}), 400),
        (json!({"answers": {}, "extra": 1}), 400),
        (json!({"version": 9}), 404),
    ] {
        assert_eq!(next(body.clone()).await.0.as_u16(), status, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn contact_rules_keep_customers_from_being_over_surveyed() {
    let app = TestApp::spawn().await;
    let q = json!([{"id": "nps", "type": "nps", "prompt": "Recommend us?"}]);
    app.post(
        "/api/v1/surveys",
        &app.secret_key,
        &json!({"survey_id": "a", "definition": {"name": "A", "questions": q}}),
    )
    .await;
    app.post(
        "/api/v1/surveys",
        &app.secret_key,
        &json!({"survey_id": "b", "definition": {"name": "B", "questions": q,
        "contact_rules": {"max_per_period": 5, "period_days": 30, "min_days_between": 0}}}),
    )
    .await;
    let first = app
        .post(
            "/api/v1/surveys/a/links",
            &app.secret_key,
            &json!({"identifier": "user_id:u1"}),
        )
        .await;
    assert_eq!(first.status(), 201);
    // the tenant-wide minimum gap (14 days) holds the second invitation back
    let second = app
        .post(
            "/api/v1/surveys/a/links",
            &app.secret_key,
            &json!({"identifier": "user_id:u1"}),
        )
        .await;
    assert_eq!(second.status(), 409);
    let p: Value = second.json().await.unwrap();
    assert_eq!(p["code"], "contact_rule");
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("minimum gap is 14 days"));
    // another customer, an anonymous link, and a survey with its own rules still go out
    assert_eq!(
        app.post(
            "/api/v1/surveys/a/links",
            &app.secret_key,
            &json!({"identifier": "user_id:u2"})
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        app.post("/api/v1/surveys/a/links", &app.secret_key, &json!({}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post(
            "/api/v1/surveys/b/links",
            &app.secret_key,
            &json!({"identifier": "user_id:u1"})
        )
        .await
        .status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn the_widget_can_post_from_other_origins() {
    let app = TestApp::spawn().await;
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/feedback"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let r = app.post("/api/v1/feedback", &app.write_key, &json!([{"response_id": "w1", "question": "nps", "type": "nps", "value": 9, "channel": "web"}])).await;
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let bad = app
        .post("/api/v1/feedback", "cxm_wk_nope", &json!([]))
        .await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.headers()["access-control-allow-origin"],
        "*",
        "errors are readable by the widget too"
    );
    let js = app
        .client
        .get(app.url("/assets/cxm-survey.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript");
    assert!(js.text().await.unwrap().contains("/api/v1/feedback"));
    app.stop().await;
}

async fn wait_for<T>(mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..150 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the background worker did not get there");
}

async fn events_trigger_invitations(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, cxm_http::HttpConfig::default()).await else {
        return;
    };
    let def = json!({"survey_id": "after-ticket", "definition": {"name": "How did we do?",
        "questions": [{"id": "csat", "type": "csat", "prompt": "How satisfied are you?", "required": true}],
        "targeting": {"events": ["Ticket Resolved"], "channels": ["chat"], "tiers": ["enterprise"]}}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &def)
            .await
            .status(),
        201
    );
    let bad = json!({"survey_id": "x", "definition": {"name": "x", "questions": [{"id": "a", "type": "nps", "prompt": "?"}],
        "targeting": {"events": ["Ticket Resolved"], "sample_percent": 0}}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &bad)
            .await
            .status(),
        400
    );
    // the worker has seen the tenant (its cursor starts at the end of the log)
    let (s, t) = (app.store.clone(), app.tenant.clone());
    wait_for(async || {
        let (s, t) = (s.clone(), t.clone());
        tokio::task::spawn_blocking(move || s.trigger_cursor(&t).unwrap())
            .await
            .unwrap()
    })
    .await;
    let old = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let batch = json!({"batch": [
        {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}, "messageId": "i1"},
        {"type": "group", "userId": "u1", "groupId": "acct-1", "traits": {"plan": "enterprise"}, "messageId": "g1"},
        {"type": "identify", "userId": "u2", "traits": {"email": "bob@example.com"}, "messageId": "i2"},
        {"type": "group", "userId": "u2", "groupId": "acct-2", "traits": {"plan": "starter"}, "messageId": "g2"},
        {"type": "track", "userId": "u1", "event": "Ticket Resolved", "context": {"channel": "chat"}, "messageId": "t1"},
        {"type": "track", "userId": "u1", "event": "Ticket Resolved", "context": {"channel": "chat"}, "messageId": "t2"},
        {"type": "track", "userId": "u2", "event": "Ticket Resolved", "context": {"channel": "chat"}, "messageId": "t3"},
        {"type": "track", "userId": "u1", "event": "Ticket Opened", "context": {"channel": "chat"}, "messageId": "t4"},
        {"type": "track", "userId": "u1", "event": "Ticket Resolved", "properties": {"channel": "email"}, "messageId": "t5"},
        {"type": "track", "userId": "u1", "event": "Ticket Resolved", "context": {"channel": "chat"}, "timestamp": old, "messageId": "t6"}
    ]});
    assert_eq!(app.batch(batch).await.status(), 200);
    let list = wait_for(async || {
        let l = app.get_json("/api/v1/surveys/invitations").await;
        (l["invitations"].as_array().unwrap().len() >= 2).then_some(l)
    })
    .await;
    let invs = list["invitations"].as_array().unwrap();
    assert_eq!(
        invs.len(),
        2,
        "only u1's chat tickets in the enterprise tier, recent ones: {list:#}"
    );
    assert_eq!(
        (
            invs[0]["status"].as_str(),
            invs[0]["identifier"].as_str(),
            invs[0]["trigger_message_id"].as_str()
        ),
        (Some("pending"), Some("email:ada@example.com"), Some("t1"))
    );
    assert_eq!(
        invs[1]["status"], "held",
        "the contact rules hold the second invitation back"
    );
    assert!(invs[1]["url"].is_null());
    assert!(invs[1]["detail"].as_str().unwrap().contains("minimum gap"));

    // the link works and counts as a display; the mailer marks the invitation delivered
    let url = app.url(invs[0]["url"].as_str().unwrap());
    assert!(app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("How satisfied are you?"));
    let id = invs[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/surveys/invitations/{id}");
    let r = app
        .post(
            &path,
            &app.secret_key,
            &json!({"status": "delivered", "detail": "smtp 250"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post(&path, &app.secret_key, &json!({"status": "delivered"}))
            .await
            .status(),
        200,
        "repeating is a no-op"
    );
    assert_eq!(
        app.post(&path, &app.secret_key, &json!({"status": "failed"}))
            .await
            .status(),
        409
    );
    assert_eq!(
        app.post(&path, &app.secret_key, &json!({"status": "sent"}))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.post(
            "/api/v1/surveys/invitations/999999",
            &app.secret_key,
            &json!({"status": "delivered"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.post(
            "/api/v1/surveys/invitations/abc",
            &app.secret_key,
            &json!({"status": "delivered"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/surveys/invitations?status=odd")
            .await
            .status(),
        400
    );
    let pending = app
        .get_json("/api/v1/surveys/invitations?status=pending")
        .await;
    assert_eq!(pending["invitations"].as_array().unwrap().len(), 0);
    let surveys = app.get_json("/api/v1/surveys").await;
    assert_eq!(
        (
            surveys["surveys"][0]["links"].as_i64(),
            surveys["surveys"][0]["displays"].as_i64()
        ),
        (Some(1), Some(1))
    );
    app.stop().await;
}

#[tokio::test]
async fn events_trigger_invitations_sqlite() {
    events_trigger_invitations(Backend::Sqlite).await;
}

#[tokio::test]
async fn events_trigger_invitations_postgres() {
    events_trigger_invitations(Backend::Postgres).await;
}

/// A stand-in for an OpenAI-compatible chat endpoint (we cannot run a model in tests): it
/// records the request and answers with a fixed completion.
async fn chat_endpoint(
    reply: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let seen = s2.clone();
            async move {
                seen.lock().unwrap().push(body);
                axum::Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn follow_up_prompt(reply: &'static str) -> (String, Vec<Value>) {
    let (url, seen) = chat_endpoint(reply).await;
    let config = cxm_http::HttpConfig {
        llm: Some(
            cxm_app::phrasing::LlmConfig::parse(&url, "small-model", Some("sk-test".into()))
                .unwrap(),
        ),
        ..Default::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    let def = json!({"survey_id": "s", "definition": {"name": "How did we do?", "avoid_topics": ["pricing"], "questions": [
        {"id": "nps", "type": "nps", "prompt": "Recommend us?", "required": true},
        {"id": "why", "type": "text", "prompt": "Why that score?"}]}});
    app.post("/api/v1/surveys", &app.secret_key, &def).await;
    let link: Value = app
        .post("/api/v1/surveys/s/links", &app.secret_key, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = app.url(link["url"].as_str().unwrap());
    let html = app
        .client
        .post(&url)
        .form(&[("q_nps", "7"), ("q_why", "fine")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    app.stop().await;
    let requests = seen.lock().unwrap().clone();
    (html, requests)
}

#[tokio::test]
async fn a_configured_model_words_the_follow_up_and_a_bad_answer_is_ignored() {
    let (html, requests) = follow_up_prompt("What would have made it a 10 for you?").await;
    assert!(
        html.contains("What would have made it a 10 for you?"),
        "{html}"
    );
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["model"], "small-model");
    let user = requests[0]["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Why that score?") && user.contains("fine") && user.contains("Vague"));
    assert!(requests[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Never mention: pricing"));
    // a reply that is not a single question falls back to the engine's own wording
    let (html, _) = follow_up_prompt("Sure! Here is a question: tell us about pricing").await;
    assert!(html.contains("Could you tell us a bit more?"), "{html}");
}

#[tokio::test]
async fn multiple_choice_and_unknown_survey_versions() {
    let app = TestApp::spawn().await;
    let def = json!({"survey_id": "why", "definition": {"name": "Why", "questions": [
        {"id": "topics", "type": "choice", "prompt": "What was it about?", "choices": ["billing", "delivery", "app"], "multiple": true, "required": true},
        {"id": "bill", "type": "text", "prompt": "What went wrong with billing?", "show_if": {"question": "topics", "any_of": ["billing"]}}]}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &def)
            .await
            .status(),
        201
    );
    let bad = json!({"survey_id": "x", "definition": {"name": "x", "questions": [{"id": "a", "type": "text", "prompt": "A?", "multiple": true}]}});
    assert_eq!(
        app.post("/api/v1/surveys", &app.secret_key, &bad)
            .await
            .status(),
        400
    );

    // the hosted page: checkboxes; two ticked boxes are two answers, and "billing" opens the branch
    let link: Value = app
        .post("/api/v1/surveys/why/links", &app.secret_key, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = app.url(link["url"].as_str().unwrap());
    let html = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"type="checkbox" name="q_topics" value="billing""#));
    let page2 = app
        .client
        .post(&url)
        .form(&[("step", "0"), ("q_topics", "billing"), ("q_topics", "app")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page2.contains("What went wrong with billing?"), "{page2}");
    assert!(
        page2.contains(r#"type="hidden" name="q_topics" value="billing""#)
            && page2.contains(r#"type="hidden" name="q_topics" value="app""#)
    );
    let done = app
        .client
        .post(&url)
        .form(&[
            ("step", "1"),
            ("q_topics", "billing"),
            ("q_topics", "app"),
            ("q_bill", "charged twice for one order"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let bogus = app
        .client
        .post(&url)
        .form(&[("q_topics", "pizza")])
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 200, "answered already: a no-op");

    // the API takes the options as an array; re-sending is a no-op
    let answers = json!([{"response_id": "r9", "question": "topics", "type": "choice", "value": ["delivery", "app"], "survey_id": "why", "survey_version": 1}]);
    let r: Value = app
        .post("/api/v1/feedback", &app.write_key, &answers)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    let r: Value = app
        .post("/api/v1/feedback", &app.write_key, &answers)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    // a version cxm does not hold of a survey it knows is refused; unknown surveys are imports
    let wrong = json!([{"response_id": "r10", "question": "topics", "type": "choice", "value": "app", "survey_id": "why", "survey_version": 7}]);
    let r = app.post("/api/v1/feedback", &app.write_key, &wrong).await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("has no version 7 (the latest is 1)"));
    let external = json!([{"response_id": "r11", "question": "q1", "type": "nps", "value": 9, "survey_id": "SV_qualtrics", "survey_version": 3}]);
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &external)
            .await
            .status(),
        200
    );

    // bots send a multiple choice as an array
    let r: Value = app
        .post(
            "/api/v1/surveys/why/next",
            &app.secret_key,
            &json!({"answers": {"topics": ["billing", "app"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["questions"][0]["id"], "bill");
    app.stop().await;
}
