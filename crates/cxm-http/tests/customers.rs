//! Customers, context, merges and unmerge at the HTTP boundary, with snapshots of the shapes
//! integrators depend on.

mod common;

use common::TestApp;
use cxm_store::Role;
use serde_json::{json, Value};

fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

async fn grace(app: &TestApp) -> String {
    let r = app
        .batch(json!({"batch": [
            {"type": "page", "anonymousId": "browser-1", "name": "Pricing", "timestamp": ago(600), "messageId": "e1", "context": {"userAgent": "Mozilla/5.0"}},
            {"type": "identify", "userId": "grace-1", "traits": {"name": "Grace Hopper", "email": "grace@example.com"}, "timestamp": ago(500), "messageId": "e2"},
            {"type": "track", "anonymousId": "browser-1", "event": "Signed Up", "context": {"traits": {"email": "grace@example.com"}}, "timestamp": ago(400), "messageId": "e3"},
            {"type": "track", "userId": "grace-1", "event": "Payment Failed", "timestamp": ago(300), "messageId": "e4"},
            {"type": "track", "userId": "grace-1", "event": "Payment Failed", "timestamp": ago(200), "messageId": "e5"},
            {"type": "track", "userId": "grace-1", "event": "Chat Started", "properties": {"intent": "billing"}, "timestamp": ago(120), "messageId": "e6"},
            {"type": "track", "userId": "grace-1", "event": "Call Started", "properties": {"intent": "billing"}, "timestamp": ago(1), "messageId": "e7"}
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    app.get_json("/api/v1/customers?identifier=user_id:grace-1")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn context_follows_the_customer_across_channels() {
    let app = TestApp::spawn().await;
    let id = grace(&app).await;
    let ctx = app
        .get_json(&format!("/api/v1/customers/{id}/context"))
        .await;
    let summary = ctx["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Billing: payment failed twice since "),
        "{summary}"
    );
    assert!(
        summary.ends_with("; chatted 2h ago; now calling"),
        "{summary}"
    );
    assert_eq!(ctx["channel_switch"]["from"], "chat");
    assert_eq!(ctx["channel_switch"]["to"], "voice");
    assert_eq!(
        ctx["channel_switch"]["previous_channel_events"][0]["name"],
        "Chat Started"
    );
    let names: Vec<&str> = ctx["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("identify"))
        .collect();
    assert_eq!(
        names,
        [
            "Call Started",
            "Chat Started",
            "Payment Failed",
            "Payment Failed",
            "Signed Up",
            "identify",
            "Pricing"
        ]
    );

    // pagination walks the same timeline
    let page1 = app
        .get_json(&format!("/api/v1/customers/{id}/context?limit=4"))
        .await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app
        .get_json(&format!(
            "/api/v1/customers/{id}/context?limit=4&before={cursor}"
        ))
        .await;
    assert_eq!(
        page1["timeline"].as_array().unwrap().len() + page2["timeline"].as_array().unwrap().len(),
        7
    );
    assert_eq!(page2["next_cursor"], Value::Null);

    insta::assert_json_snapshot!("context_shape", ctx, {
        ".profile.id" => "[profile]",
        ".profile.first_seen_ms" => "[ms]",
        ".profile.last_seen_ms" => "[ms]",
        ".summary" => "[summary]",
        ".channel_switch.previous_at" => "[time]",
        ".channel_switch.current_at" => "[time]",
        ".channel_switch.previous_channel_events[].seq" => "[seq]",
        ".channel_switch.previous_channel_events[].timestamp_ms" => "[ms]",
        ".channel_switch.previous_channel_events[].received_at_ms" => "[ms]",
        ".channel_switch.previous_channel_events[].payload.timestamp" => "[time]",
        ".timeline[].seq" => "[seq]",
        ".timeline[].timestamp_ms" => "[ms]",
        ".timeline[].received_at_ms" => "[ms]",
        ".timeline[].payload.timestamp" => "[time]",
    });
    app.stop().await;
}

#[tokio::test]
async fn bad_lookups_are_precise() {
    let app = TestApp::spawn().await;
    grace(&app).await;
    let cases = [
        (
            "/api/v1/customers?identifier=email",
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/customers?identifier=email:not-an-email",
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/customers?identifier=user_id:nobody",
            404,
            "not_found",
        ),
        ("/api/v1/customers/p_999999/context", 404, "not_found"),
        ("/api/v1/customers?limit=abc", 400, "invalid_parameter"),
        (
            "/api/v1/customers/p_1/context?limit=0",
            400,
            "invalid_parameter",
        ),
        (
            "/api/v1/customers/p_1/context?before=garbage",
            400,
            "invalid_parameter",
        ),
        ("/api/v1/nothing-here", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], code, "{path}");
    }
    let r = app
        .client
        .get(app.url("/api/v1/customers?identifier=email"))
        .send()
        .await
        .unwrap();
    let p: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("problem_missing_credentials", p);
    app.stop().await;
}

#[tokio::test]
async fn another_tenant_sees_nothing() {
    let app = TestApp::spawn().await;
    let id = grace(&app).await;
    let (_, _, other_secret) = TestApp::new_tenant(&app.store, "Other").await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/customers/{id}/context")))
        .bearer_auth(&other_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .get(app.url("/api/v1/customers?identifier=user_id:grace-1"))
        .bearer_auth(&other_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .post(
            &format!("/api/v1/customers/{id}/unmerge"),
            &other_secret,
            &json!({"identifier": "anonymous_id:browser-1"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn unmerge_via_api_splits_the_profile_and_is_logged() {
    let app = TestApp::spawn().await;
    let id = grace(&app).await;
    let merges = app
        .get_json(&format!("/api/v1/customers/{id}/merges"))
        .await;
    let merge = merges["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "merge")
        .unwrap();
    assert_eq!(
        merge["message_id"], "e3",
        "the merge names the event that linked the identifiers"
    );

    let bad = app
        .client
        .post(app.url(&format!("/api/v1/customers/{id}/unmerge")))
        .bearer_auth(&app.secret_key)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = app
        .post(
            &format!("/api/v1/customers/{id}/unmerge"),
            &app.secret_key,
            &json!({"identifier": "user_id:someone-else"}),
        )
        .await;
    assert_eq!(
        r.status(),
        400,
        "only an identifier of this customer can be unmerged"
    );

    let r = app
        .post(
            &format!("/api/v1/customers/{id}/unmerge"),
            &app.secret_key,
            &json!({"identifier": "anonymous_id:browser-1", "reason": "shared laptop"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["events_replayed"], 7);
    let ids: Vec<String> = out["profile"]["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ids, ["email:grace@example.com", "user_id:grace-1"]);
    let r = app
        .get("/api/v1/customers?identifier=anonymous_id:browser-1")
        .await;
    assert_eq!(r.status(), 404, "a blocked identifier belongs to no one");
    // events stay in the log: the overview still counts all seven
    assert_eq!(app.get_json("/api/v1/overview").await["total_events"], 7);
    app.stop().await;
}

#[tokio::test]
async fn sessions_and_roles() {
    let app = TestApp::spawn().await;
    let id = grace(&app).await;
    app.add_user("viewer@acme.io", "viewer-password-1", Role::Viewer)
        .await;
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "viewer@acme.io"),
            ("password", "viewer-password-1"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));
    // the session reads the api, but a viewer cannot unmerge or create keys
    let ctx = app
        .client
        .get(app.url(&format!("/api/v1/customers/{id}/context")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ctx.status(), 200);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/customers/{id}/unmerge")))
        .header("cookie", &cookie)
        .json(&json!({"identifier": "anonymous_id:browser-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/api/v1/keys"))
        .header("cookie", &cookie)
        .json(&json!({"kind": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // cross-site form posts are refused
    let r = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("email", "viewer@acme.io"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn keys_api_creates_usable_keys() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/api/v1/keys",
            &app.secret_key,
            &json!({"kind": "write", "name": "mobile app"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let k: Value = r.json().await.unwrap();
    let key = k["key"].as_str().unwrap();
    assert!(
        k["record"].get("hash").is_none(),
        "the hash is never exposed"
    );
    let r = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(key, Some(""))
        .json(&json!({"userId": "u", "event": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .post("/api/v1/keys", &app.secret_key, &json!({"kind": "root"}))
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .delete(app.url("/api/v1/keys/key_nope"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn ops_endpoints_and_openapi() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "sqlite");
    grace(&app).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cxm_ingest_events_total{outcome=\"accepted\"} 7"),
        "{metrics}"
    );
    assert!(metrics.contains("cxm_ingest_request_duration_seconds_count 1"));
    // the one request went through the writer as one commit of its seven events
    assert!(
        metrics.contains("cxm_ingest_commits_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cxm_ingest_commit_events_total 7\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("cxm_ingest_writer_busy_seconds_total 0.000000\n"));
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    paths.sort();
    insta::assert_json_snapshot!("openapi_paths", paths);
    assert!(doc["components"]["schemas"]["CustomerContext"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    app.stop().await;
}

/// Readiness and metrics say how each background worker is doing: the harness runs the
/// theme, trigger and webhook workers.
#[tokio::test]
async fn readiness_and_metrics_report_every_worker() {
    let app = TestApp::spawn().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ready = loop {
        let ready: Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // the webhook worker runs once a second over the whole store
        if ready["workers"]["webhooks"]["passes"].as_u64() > Some(0)
            || std::time::Instant::now() > deadline
        {
            break ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for w in ["themes", "survey_triggers", "webhooks"] {
        assert!(ready["workers"][w].is_object(), "{w}: {ready}");
    }
    assert_eq!(ready["workers"]["themes"]["scope"], "tenant");
    assert_eq!(ready["workers"]["webhooks"]["scope"], "shared");
    assert!(
        ready["workers"]["webhooks"]["passes"].as_u64() > Some(0),
        "{ready}"
    );
    assert_eq!(ready["workers"]["webhooks"]["errors"], 0);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cxm_worker_passes_total{worker=\"webhooks\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("cxm_worker_lag_seconds{worker=\"themes\"}"));
    app.stop().await;
}

#[tokio::test]
async fn customer_lists_count_page_sort_and_export() {
    let app = TestApp::spawn().await;
    // 60 customers; the busiest has 3 events; one calls itself a spreadsheet formula
    let mut batch = vec![];
    for i in 0..60 {
        let name = if i == 7 {
            "=HYPERLINK(\"http://x\")".to_string()
        } else {
            format!("Customer {i:02}")
        };
        batch.push(json!({"type": "identify", "userId": format!("u{i}"), "traits": {"name": name}, "messageId": format!("m{i}")}));
    }
    for k in 0..2 {
        batch.push(json!({"type": "track", "userId": "u42", "event": "Order Completed", "messageId": format!("o{k}")}));
    }
    assert_eq!(app.batch(json!({ "batch": batch })).await.status(), 200);
    let cookie = app.login("lead@acme.io", Role::Owner).await;
    let page = |path: String| {
        let (c, url, cookie) = (app.client.clone(), app.url(&path), cookie.clone());
        async move {
            let r = c.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let ty = r.headers()["content-type"].to_str().unwrap().to_string();
            (ty, r.text().await.unwrap())
        }
    };
    let (_, first) = page("/customers".into()).await;
    assert!(first.contains("1–50 of 60 customers"), "{first}");
    assert!(first.contains("page 1 of 2"));
    let (_, second) = page("/customers?page=2".into()).await;
    assert!(second.contains("51–60 of 60 customers"), "{second}");
    let (_, busiest) = page("/customers?sort=events".into()).await;
    // ties (one event each) come in any order; the one with three events leads
    let first_row = busiest
        .split("<tbody>")
        .nth(1)
        .and_then(|b| b.split("</tr>").next())
        .unwrap();
    assert!(
        first_row.contains("Customer 42"),
        "the busiest customer comes first: {first_row}"
    );
    let (_, by_name) = page("/customers?sort=name".into()).await;
    let first_by_name = by_name
        .split("<tbody>")
        .nth(1)
        .and_then(|b| b.split("</tr>").next())
        .unwrap();
    assert!(
        first_by_name.contains("HYPERLINK"),
        "by name, '=' sorts before letters: {first_by_name}"
    );
    let (ty, csv) = page("/customers.csv".into()).await;
    assert!(ty.starts_with("text/csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "profile_id,name,events,last_seen_utc");
    assert_eq!(lines.len(), 61, "a header and every customer, not one page");
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""),
        "a formula is exported as text: {csv}"
    );
    let (ty, alerts) = page("/alerts.csv?status=open".into()).await;
    assert!(ty.starts_with("text/csv") && alerts.starts_with("id,opened_utc,account_id"));
    let (_, accounts) = page("/accounts.csv".into()).await;
    assert!(accounts.starts_with("account_id,name,health,band,arr,signals_fired"));
}

#[tokio::test]
async fn responses_tickets_and_decisions_lists_filter_page_and_export() {
    let app = TestApp::spawn().await;
    // 60 NPS answers and 3 comments, one of them a formula
    let mut answers: Vec<serde_json::Value> = (0..60)
        .map(|i| json!({"response_id": format!("r{i}"), "question": "nps", "type": "nps", "value": i % 11, "channel": if i % 2 == 0 { "email" } else { "chat" }}))
        .collect();
    answers.push(json!({"response_id": "r1", "question": "why", "type": "text", "value": "Waited forty minutes on hold"}));
    answers.push(
        json!({"response_id": "r2", "question": "why", "type": "text", "value": "100% happy"}),
    );
    answers.push(json!({"response_id": "r3", "question": "why", "type": "text", "value": "=1+1 is what I pay"}));
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({"answers": answers}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cookie = app.login("lead@acme.io", Role::Owner).await;
    let get = |path: &str| {
        let (c, url, cookie) = (app.client.clone(), app.url(path), cookie.clone());
        async move {
            let r = c
                .get(url)
                .header("cookie", cookie)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let rows = |html: &str| html.matches("data-response=").count();

    // responses: a page of 50, the rest behind "Older", filters that combine
    let (s, first) = get("/responses").await;
    assert_eq!(s, 200);
    assert_eq!(rows(&first), 50);
    let older = first
        .split("before=")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .expect("an Older link");
    let (_, rest) = get(&format!("/responses?days=90&before={older}")).await;
    assert_eq!(rows(&rest), 13, "63 answers in all");
    let (_, hold) = get("/responses?q=ON+HOLD").await;
    assert_eq!(rows(&hold), 1);
    assert!(hold.contains("Waited forty minutes on hold"));
    let (_, pct) = get("/responses?q=100%25").await;
    assert_eq!(rows(&pct), 1, "% is a character, not a wildcard");
    let (_, email) = get("/responses?type=nps&channel=email").await;
    assert_eq!(rows(&email), 30);
    for (bad, says) in [
        ("/responses?type=essay", "Type must be one of"),
        ("/responses?before=x", "Before must be an answer id"),
        ("/responses?from=2026-02-30", "From must be a day"),
        ("/responses?days=0", "Days must be a whole number"),
    ] {
        let (s, html) = get(bad).await;
        assert_eq!(s, 400, "{bad}");
        assert!(html.contains(says), "{bad}: {html}");
    }
    let (_, csv) = get("/responses.csv?type=text").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with(
        "response_id,collected_utc,survey,channel,question,type,score,text,cx_sentiment"
    ));
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        csv.contains(",'=1+1 is what I pay,"),
        "a formula is text: {csv}"
    );
    // the comment about waiting carries the CX sentiment, which is negative
    let hold_row = lines.iter().find(|l| l.contains("on hold")).unwrap();
    let sentiment: f64 = hold_row.split(',').nth(8).unwrap().parse().unwrap();
    assert!(sentiment < -0.05, "{hold_row}");
    let (_, all) = get("/responses.csv").await;
    assert_eq!(all.lines().count(), 64, "every answer, not one page");

    // tickets: filters and a CSV of what the board shows
    for (title, owner, severity) in [
        ("Refund delays", "ana@acme.io", "high"),
        ("Slow exports", "bo@acme.io", "low"),
    ] {
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                &json!({"title": title, "owner": owner, "severity": severity, "check": {"kind": "account_health_above", "account": "acme", "score": 75}}),
            )
            .await;
        assert_eq!(r.status(), 201, "{title}");
    }
    let (_, board) = get("/tickets?owner=bo%40acme.io").await;
    assert!(board.contains("Slow exports") && !board.contains("Refund delays"));
    let (_, board) = get("/tickets?q=refund&severity=high").await;
    assert!(board.contains("Refund delays") && !board.contains("Slow exports"));
    assert!(
        board.contains("/tickets.csv?q=refund&amp;severity=high")
            || board.contains("/tickets.csv?q=refund&severity=high"),
        "the CSV keeps the filter"
    );
    let (_, csv) = get("/tickets.csv?severity=low").await;
    assert!(csv.starts_with("ticket_id,title,state,owner,severity,sla,due_utc"));
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("Slow exports"));

    // decisions: the filter form's empty fields are no filter, and the CSV has a header
    let (s, log) = get("/decisions?customer=&agent=&status=").await;
    assert_eq!(s, 200, "{log}");
    let (s, _) = get("/decisions?status=maybe").await;
    assert_eq!(s, 400);
    let (_, csv) = get("/decisions.csv").await;
    assert!(csv.starts_with("decision_id,at_utc,agent,action,customer,outcome"));

    // themes and the voice of the customer take the shared range
    let (s, voc) = get("/voc?days=30").await;
    assert_eq!(s, 200);
    assert!(
        voc.contains("aria-current=\"true\">30 days"),
        "the preset is marked"
    );
    let (s, _) = get("/themes?from=2026-01-01&to=2026-01-31").await;
    assert_eq!(s, 200);
    let (s, _) = get("/themes?from=2026-02-01&to=2026-01-01").await;
    assert_eq!(s, 400);
}
