//! Journeys over HTTP: definitions in, bad definitions refused, events and answers walked
//! through the stages, metrics and the JPS out.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

/// Times relative to one instant: stage durations the test checks (exactly 1 h, say) must
/// not pick up the microseconds between two calls to the clock.
fn ago(hours: f64) -> String {
    static NOW: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(chrono::Utc::now);
    (now - chrono::Duration::minutes((hours * 60.0) as i64)).to_rfc3339()
}

fn onboarding() -> Value {
    json!({
        "id": "onboarding", "name": "Onboarding", "owner": "ada@acme.example",
        "stages": [
            {"id": "signup", "name": "Sign-up", "owner": "growth", "entry": ["Signed Up"], "target_hours": 24, "sla_hours": 48},
            {"id": "activate", "name": "Activation", "owner": "success", "entry": ["Feature Used"], "moment_of_truth": true},
            {"id": "pay", "name": "First payment", "owner": "billing", "entry": ["Payment Succeeded"]}
        ],
        "review": {"every_days": 30, "next": "2026-01-05"}
    })
}

async fn walk(app: &TestApp) {
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    tokio::task::spawn_blocking(move || {
        cxm_app::journeys::catch_up(store.as_ref(), &tenant, 100).unwrap()
    })
    .await
    .unwrap();
}

/// Sends historical events through the Segment batch route, a hundred per request.
async fn send_events(app: &TestApp, events: &[Value]) {
    for chunk in events.chunks(100) {
        let r = app
            .client
            .post(app.url("/v1/batch?historical=true"))
            .basic_auth(&app.write_key, Some(""))
            .json(&json!({ "batch": chunk }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

async fn journeys_measure_real_events(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };

    // mistakes are named, and nothing is saved
    let mut typo = onboarding();
    typo["stages"][1]["entry"] = json!(["Featur Used"]);
    let mut circle = onboarding();
    circle["stages"][2]["next"] = json!(["signup"]);
    let mut ownerless = onboarding();
    ownerless["stages"][0]["owner"] = json!("");
    for (body, says) in [
        (typo, "\"Featur Used\""),
        (circle, "signup -> activate -> pay -> signup"),
        (ownerless, "stages[0].owner"),
    ] {
        let r = app
            .send(reqwest::Method::POST, "/api/v1/journeys", &body)
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "invalid_definition");
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/journeys",
            &json!({"name": "x", "owner": "y", "stages": [], "colour": 1}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post("/api/v1/journeys", &app.write_key, &onboarding())
        .await;
    assert_eq!(r.status(), 403, "a write key cannot define journeys");
    assert_eq!(
        app.get_json("/api/v1/journeys").await["journeys"],
        json!([])
    );

    let r = app
        .send(reqwest::Method::POST, "/api/v1/journeys", &onboarding())
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"journey_id": "onboarding", "version": 1, "unchanged": false})
    );
    let r = app
        .send(reqwest::Method::POST, "/api/v1/journeys", &onboarding())
        .await;
    assert_eq!(r.status(), 200, "the same definition again saves nothing");
    assert_eq!(r.json::<Value>().await.unwrap()["unchanged"], true);

    // five customers, starting 120 hours ago
    let t0 = 120.0;
    let track = |user: &str, event: &str, hours_ago: f64, channel: &str| json!({"type": "track", "event": event, "userId": user, "timestamp": ago(hours_ago), "messageId": format!("{user}-{event}-{hours_ago}"), "context": {"channel": channel}});
    let batch = json!({"batch": [
        // c1 goes all the way: activation 2 h after sign-up, payment a day later
        track("c1", "Signed Up", t0, "web"), track("c1", "Feature Used", t0 - 2.0, "web"), track("c1", "Payment Succeeded", t0 - 30.0, "web"),
        // c2 activates late (50 h: past target and SLA), goes back to sign-up, then activates again
        track("c2", "Signed Up", t0, "web"), track("c2", "Feature Used", t0 - 50.0, "web"),
        track("c2", "Signed Up", t0 - 60.0, "web"), track("c2", "Feature Used", t0 - 61.0, "web"),
        // c3 signed up ten days ago and stopped; c4 an hour ago; c5 signed up twice (a repeat contact)
        track("c3", "Signed Up", 240.0, "web"), track("c4", "Signed Up", 1.0, "web"),
        track("c5", "Signed Up", t0, "web"), track("c5", "Signed Up", t0 - 1.0, "chat"),
    ]});
    send_events(&app, batch["batch"].as_array().unwrap()).await;
    // c1 loved activation, c2 did not; a third answer names its stage itself
    let answers = json!({"answers": [
        {"response_id": "a1", "question": "nps", "type": "nps", "value": 10, "identifier": "user_id:c1", "collected_at": ago(t0 - 3.0)},
        {"response_id": "a2", "question": "nps", "type": "nps", "value": 2, "identifier": "user_id:c2", "collected_at": ago(t0 - 55.0)},
        {"response_id": "a3", "question": "ces", "type": "ces", "value": 6, "journey": "onboarding", "stage": "pay"},
    ]});
    assert_eq!(
        app.post("/api/v1/feedback", &app.write_key, &answers)
            .await
            .status(),
        200
    );
    walk(&app).await;

    let m = app.get_json("/api/v1/journeys/onboarding/metrics").await;
    assert_eq!(m["processed_seq"], m["head_seq"], "{m}");
    let signup = &m["stages"][0];
    assert_eq!(
        [
            &signup["entries"],
            &signup["came_back"],
            &signup["converted"],
            &signup["looped"],
            &signup["in_progress"],
            &signup["dropped_off"]
        ],
        [
            &json!(6),
            &json!(1),
            &json!(3),
            &json!(0),
            &json!(1),
            &json!(2)
        ],
        "{signup}"
    );
    assert_eq!(signup["time"]["within_target_pct"], 66.7);
    assert_eq!(signup["ended_over_sla"], 1);
    assert_eq!(signup["breaching_now"], 2);
    assert_eq!(
        signup["conversion_pct"], 60.0,
        "3 converted of 3 ended + 2 dropped"
    );
    let activate = &m["stages"][1];
    assert_eq!(
        [
            &activate["entries"],
            &activate["converted"],
            &activate["looped"],
            &activate["in_progress"]
        ],
        [&json!(3), &json!(1), &json!(1), &json!(1)]
    );
    assert_eq!(activate["feedback"]["nps"], 0.0);
    let sentiment = activate["score"]["terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sentiment")
        .unwrap();
    assert_eq!(
        sentiment["value"], 33.3,
        "a detractor weighs twice a promoter"
    );
    assert_eq!(m["stages"][2]["feedback"]["ces"], 6.0);
    let completion = &m["score"]["terms"][0];
    assert_eq!(
        (completion["name"].as_str(), completion["value"].as_f64()),
        (Some("completion"), Some(20.0)),
        "{m}"
    );
    assert!(m["score"]["jps"].as_f64().unwrap() > 0.0);
    assert!(m["formula"].as_str().unwrap().contains("0.4 × completion"));
    let kinds: Vec<&str> = m["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["review_overdue", "sla_breach"]);
    insta::assert_json_snapshot!("journey_metrics", m, {
        ".head_seq" => "[seq]", ".processed_seq" => "[seq]", ".answers_through" => "[id]",
        ".review.overdue_days" => "[days]", ".flags[0].detail" => "[detail]",
    });

    // a rename keeps the measurements; the review moves the next date and clears the flag
    let mut renamed = onboarding();
    renamed["name"] = json!("Onboarding (self-serve)");
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/journeys/onboarding",
            &renamed,
        )
        .await;
    let saved: Value = r.json().await.unwrap();
    assert_eq!(saved["version"], 2, "{saved}");
    assert_eq!(
        app.get_json("/api/v1/journeys/onboarding/metrics").await["stages"][0]["entries"],
        6
    );
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/journeys/onboarding/review",
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let listed = app.get_json("/api/v1/journeys").await;
    let j = &listed["journeys"][0];
    assert_eq!(
        (j["version"].as_i64(), j["name"].as_str()),
        (Some(3), Some("Onboarding (self-serve)"))
    );
    assert_eq!(
        j["flags"].as_array().unwrap().len(),
        1,
        "only the SLA breach is left: {j}"
    );
    let detail = app.get_json("/api/v1/journeys/onboarding").await;
    assert_eq!(detail["history"].as_array().unwrap().len(), 3);
    assert_eq!(detail["history"][2]["name"], "Onboarding");

    // a changed stage is a new measurement, rebuilt from the log
    let mut changed = renamed.clone();
    changed["stages"][0]["target_hours"] = json!(1);
    app.send(
        reqwest::Method::PUT,
        "/api/v1/journeys/onboarding",
        &changed,
    )
    .await;
    // measured at once from the whole log, before the worker has walked the new version
    let m = app.get_json("/api/v1/journeys/onboarding/metrics").await;
    assert_eq!(
        (m["source"].as_str(), m["stages"][0]["entries"].as_u64()),
        (Some("scan"), Some(6))
    );
    assert_eq!(m["stages"][0]["time"]["within_target_pct"], 33.3);
    walk(&app).await;
    let m = app.get_json("/api/v1/journeys/onboarding/metrics").await;
    assert_eq!(m["source"], "tallies");
    assert_eq!(m["stages"][0]["entries"], 6);
    assert_eq!(m["stages"][0]["time"]["within_target_pct"], 33.3);

    // the dashboard: the list, the journey page, the editor that keeps what was typed
    let analyst = app.login("analyst@acme.io", cxm_store::Role::Analyst).await;
    let page = |path: &'static str, cookie: String| {
        let c = app.client.get(app.url(path)).header("cookie", cookie);
        async move { c.send().await.unwrap() }
    };
    let list = page("/journeys", analyst.clone())
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("Onboarding (self-serve)") && list.contains("data-testid=\"journey-editor\""),
        "{list}"
    );
    let one = page("/journeys/onboarding", analyst.clone())
        .await
        .text()
        .await
        .unwrap();
    for want in [
        "Journey Performance Score",
        "Sign-up",
        "moment of truth",
        "0.4 × completion",
        "longer than its 48 h SLA",
        "Save new version",
    ] {
        assert!(one.contains(want), "{want} missing");
    }
    let typo = "id: onboarding\nname: Onboarding\nowner: ada\nstages:\n  - {id: a, name: A, owner: x, entry: [Signd Up]}\n";
    let r = app
        .client
        .post(app.url("/journeys"))
        .header("cookie", &analyst)
        .form(&[("definition", typo), ("from", "onboarding")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Signd Up") && body.contains("was not saved"),
        "{body}"
    );
    let r = app
        .client
        .post(app.url("/journeys"))
        .header("cookie", &analyst)
        .form(&[("definition", "stages: [")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let fresh = "id: renewal\nname: Renewal\nowner: cs\nstages:\n  - {id: due, name: Due, owner: cs, entry: [Signed Up]}\n";
    let r = app
        .client
        .post(app.url("/journeys"))
        .header("cookie", &analyst)
        .form(&[("definition", fresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (303, "/journeys/renewal")
    );
    let viewer = app.login("viewer@acme.io", cxm_store::Role::Viewer).await;
    let r = app
        .client
        .post(app.url("/journeys"))
        .header("cookie", &viewer)
        .form(&[("definition", fresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!page("/journeys/onboarding", viewer)
        .await
        .text()
        .await
        .unwrap()
        .contains("Save new version"));

    let r = app
        .send(reqwest::Method::PUT, "/api/v1/journeys/other", &changed)
        .await;
    assert_eq!(r.status(), 422, "the body's id must match the path");
    assert_eq!(app.get("/api/v1/journeys/nope/metrics").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn journeys_on_sqlite() {
    journeys_measure_real_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn journeys_on_postgres() {
    journeys_measure_real_events(Backend::Postgres).await;
}

/// The cold walk over the columnar log and the worker's row-by-row walk are two readings
/// of the same state machine: on a messy log (cross-channel repeats, loops, customers known
/// first by an anonymous id and identified later, events no journey reads, answers) they
/// must agree to the count, and a journey whose first pass was the scan must go on agreeing
/// as new events arrive.
async fn scan_and_row_walk_agree(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let support = |id: &str| {
        json!({
            "id": id, "name": format!("Support {id}"), "owner": "ops@acme.example",
            "stages": [
                {"id": "ask", "name": "Ask", "owner": "support", "entry": ["Chat Started", "Call Started", "Ticket Opened"], "target_hours": 2, "sla_hours": 8},
                {"id": "fix", "name": "Fix", "owner": "support", "entry": ["Ticket Escalated"], "exit": ["Ticket Resolved"], "sla_hours": 48},
                {"id": "done", "name": "Resolved", "owner": "support", "entry": ["Ticket Resolved"], "moment_of_truth": true}
            ]
        })
    };
    for id in ["rows", "scan", "acct-rows", "acct-scan"] {
        let mut def = support(id);
        if id.starts_with("acct") {
            def["unit"] = json!("account");
        }
        let r = app
            .send(reqwest::Method::POST, "/api/v1/journeys", &def)
            .await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    // a deterministic random log
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let names = [
        "Chat Started",
        "Call Started",
        "Ticket Opened",
        "Ticket Escalated",
        "Ticket Resolved",
        "Page Viewed",
        "Context Viewed",
    ];
    let channels = ["chat", "voice", "email", "web"];
    let mut log = vec![];
    for i in 0..1_800 {
        let c = next(150);
        let hours = 24.0 * 40.0 - i as f64 * 0.5 + next(6) as f64;
        let mut m = json!({"type": "track", "event": names[next(7) as usize], "timestamp": ago(hours),
            "messageId": format!("m{i}"), "context": {"channel": channels[next(4) as usize]}});
        // a third of the customers browse anonymously before they are known
        if c % 3 == 0 && i < 600 {
            m["anonymousId"] = json!(format!("anon-{c}"));
        } else {
            m["userId"] = json!(format!("c{c}"));
        }
        log.push(m);
        if i == 600 {
            for k in (0..150).step_by(3) {
                log.push(json!({"type": "identify", "userId": format!("c{k}"), "anonymousId": format!("anon-{k}"), "timestamp": ago(hours), "messageId": format!("id{k}")}));
            }
        }
    }
    // customers belong to twenty accounts; every seventh to none
    for k in (0..150).filter(|k| k % 7 != 0) {
        log.insert(0, json!({"type": "group", "userId": format!("c{k}"), "groupId": format!("acct-{}", k % 20), "messageId": format!("g{k}"), "timestamp": ago(24.0 * 41.0)}));
    }
    let later = log.split_off(1_400);
    send_events(&app, &log).await;
    // most of the log in blocks (small ones, to have several), the rest read as rows
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    let blocks = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        while store.compact_events(&tenant, 50).unwrap() > 0 {
            n += 1;
        }
        n
    })
    .await
    .unwrap();
    assert!(blocks > 16, "more blocks than one read holds: {blocks}");
    send_events(&app, &later).await;
    let answers: Vec<Value> = (0..40)
        .map(|k| json!({"response_id": format!("r{k}"), "question": "csat", "type": "csat", "value": 1 + k % 5,
            "identifier": format!("user_id:c{}", k * 3 + 1), "collected_at": ago(24.0 * 20.0 - k as f64)}))
        .collect();
    let r = app
        .post(
            "/api/v1/feedback",
            &app.write_key,
            &json!({ "answers": answers }),
        )
        .await;
    assert_eq!(r.status(), 200);

    let stages = |m: &Value| m["stages"].clone();
    let scanned = app.get_json("/api/v1/journeys/rows/metrics").await;
    assert_eq!(
        scanned["source"], "scan",
        "never walked: measured from the log"
    );
    assert_eq!(scanned["processed_seq"], scanned["head_seq"]);
    let entries: u64 = scanned["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entries"].as_u64().unwrap())
        .sum();
    assert!(entries > 300, "{scanned}");

    // the worker's row walk of one journey, the scan-first pass of the other
    let acct_scanned = app.get_json("/api/v1/journeys/acct-rows/metrics").await;
    assert_eq!(acct_scanned["source"], "scan");
    assert_eq!(acct_scanned["unit"], "account");
    let listed = app.get_json("/api/v1/journeys").await;
    let units: Vec<(&str, &str)> = listed["journeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["journey_id"].as_str().unwrap(),
                j["unit"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        units.contains(&("acct-scan", "account")) && units.contains(&("rows", "customer")),
        "{units:?}"
    );
    let acct_entries = acct_scanned["stages"][0]["entries"].as_u64().unwrap();
    assert!(
        acct_entries > 0 && acct_entries < scanned["stages"][0]["entries"].as_u64().unwrap(),
        "an account's people enter together: {acct_scanned}"
    );
    let walk_rows = || {
        let (store, tenant) = (app.store.clone(), app.tenant.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                for id in ["rows", "acct-rows"] {
                    let j = store.journey(&tenant, id, None).unwrap().unwrap();
                    let mut cache = cxm_app::journeys::Positions::default();
                    while cxm_app::journeys::advance(store.as_ref(), &tenant, &j, &mut cache)
                        .unwrap()
                        > 0
                    {}
                }
            })
            .await
            .unwrap()
        }
    };
    walk_rows().await;
    walk(&app).await;
    let rows = app.get_json("/api/v1/journeys/rows/metrics").await;
    let scan = app.get_json("/api/v1/journeys/scan/metrics").await;
    assert_eq!(rows["source"], "tallies");
    assert_eq!(scan["source"], "tallies");
    assert_eq!(
        stages(&rows),
        stages(&scanned),
        "scan and row walk disagree"
    );
    assert_eq!(stages(&scan), stages(&rows), "the saved first pass differs");
    assert_eq!(rows["score"], scanned["score"]);
    let acct_rows = app.get_json("/api/v1/journeys/acct-rows/metrics").await;
    let acct_scan = app.get_json("/api/v1/journeys/acct-scan/metrics").await;
    assert_eq!(
        stages(&acct_rows),
        stages(&acct_scanned),
        "accounts: scan and row walk disagree"
    );
    assert_eq!(
        stages(&acct_scan),
        stages(&acct_rows),
        "accounts: the saved first pass differs"
    );

    // new events: the scanned journey goes on from its saved positions
    let more: Vec<Value> = (0..300)
        .map(|i| json!({"type": "track", "event": names[i % 5], "userId": format!("c{}", (i * 7) % 150),
            "timestamp": ago(10.0 - i as f64 * 0.01), "messageId": format!("more{i}"), "context": {"channel": channels[i % 4]}}))
        .collect();
    send_events(&app, &more).await;
    walk_rows().await;
    walk(&app).await;
    let rows = app.get_json("/api/v1/journeys/rows/metrics").await;
    let scan = app.get_json("/api/v1/journeys/scan/metrics").await;
    assert_eq!(stages(&scan), stages(&rows), "after new events");
    assert_eq!(
        stages(&app.get_json("/api/v1/journeys/acct-scan/metrics").await),
        stages(&app.get_json("/api/v1/journeys/acct-rows/metrics").await),
        "accounts, after new events"
    );
    assert_eq!(scan["processed_seq"], scan["head_seq"]);

    // a window holding the whole log is the tallies, stage by stage
    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| {
        (today - chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    };
    for id in ["rows", "acct-rows"] {
        let all = app
            .get_json(&format!("/api/v1/journeys/{id}/metrics"))
            .await;
        let w = app
            .get_json(&format!(
                "/api/v1/journeys/{id}/metrics?from={}&to={}",
                day(3000),
                day(0)
            ))
            .await;
        assert_eq!(w["source"], "window");
        assert!(w["window"]["from_ms"].as_i64().unwrap() < w["window"]["to_ms"].as_i64().unwrap());
        assert_eq!(stages(&w), stages(&all), "{id}: a window over everything");
        // two windows that split the log share out its entries, ends and answers
        let (a, b) = (
            app.get_json(&format!(
                "/api/v1/journeys/{id}/metrics?from={}&to={}",
                day(3000),
                day(21)
            ))
            .await,
            app.get_json(&format!("/api/v1/journeys/{id}/metrics?from={}", day(20)))
                .await,
        );
        for (i, s) in all["stages"].as_array().unwrap().iter().enumerate() {
            for field in ["entries", "converted", "looped"] {
                let (x, y) = (
                    a["stages"][i][field].as_u64().unwrap(),
                    b["stages"][i][field].as_u64().unwrap(),
                );
                assert_eq!(
                    x + y,
                    s[field].as_u64().unwrap(),
                    "{id} {field} of stage {i}"
                );
            }
            let answers = |m: &Value| m["stages"][i]["feedback"]["answers"].as_u64().unwrap();
            assert_eq!(
                answers(&a) + answers(&b),
                answers(&all),
                "{id}: answers of stage {i}"
            );
        }
        assert!(
            a["stages"][0]["entries"].as_u64().unwrap() > 0
                && b["stages"][0]["entries"].as_u64().unwrap() > 0,
            "both halves hold entries: {a} {b}"
        );
    }
    let list = app
        .get_json(&format!("/api/v1/journeys?from={}", day(20)))
        .await;
    assert_eq!(list["journeys"].as_array().unwrap().len(), 4);
    for bad in [
        "from=2026-02-30",
        "from=2026-03-01&to=2026-02-01",
        "to=soon",
    ] {
        let r = app
            .get(&format!("/api/v1/journeys/rows/metrics?{bad}"))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "invalid_parameter", "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn scan_agrees_with_rows_on_sqlite() {
    scan_and_row_walk_agree(Backend::Sqlite).await;
}

#[tokio::test]
async fn scan_agrees_with_rows_on_postgres() {
    scan_and_row_walk_agree(Backend::Postgres).await;
}

/// A switch of channel is a re-explanation only when nobody on the new channel read the
/// customer's context: the context API, asked with the reader's channel, logs the read.
async fn context_read_on_the_new_channel_is_no_re_explanation(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let def = json!({"id": "support", "name": "Support", "owner": "ops@acme.example", "stages": [
        {"id": "ask", "name": "Ask", "owner": "support", "entry": ["Chat Started", "Call Started"]},
        {"id": "fix", "name": "Fix", "owner": "support", "entry": ["Ticket Escalated"]}]});
    assert_eq!(
        app.send(reqwest::Method::POST, "/api/v1/journeys", &def)
            .await
            .status(),
        201
    );
    let track = |user: &str, event: &str, minutes_ago: i64, channel: &str| {
        json!({"type": "track", "event": event, "userId": user,
        "timestamp": (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339(), "context": {"channel": channel}})
    };
    send_events(
        &app,
        &[
            track("c1", "Chat Started", 120, "chat"),
            track("c1", "Call Started", 10, "voice"),
            track("c2", "Chat Started", 120, "chat"),
            track("c2", "Call Started", 10, "voice"),
        ],
    )
    .await;
    // c1's agent reads the context on the call; c2's does not
    let c1 = app
        .get_json("/api/v1/customers?identifier=user_id:c1")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .get(&format!("/api/v1/customers/{c1}/context?channel=pigeon"))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "invalid_parameter"
    );
    let ctx = app
        .get_json(&format!("/api/v1/customers/{c1}/context?channel=phone"))
        .await;
    assert_eq!(ctx["channel_switch"]["to"], "voice");
    let timeline = app
        .get_json(&format!("/api/v1/customers/{c1}/context"))
        .await;
    let read = &timeline["timeline"][0];
    assert_eq!(
        (read["name"].as_str(), read["channel"].as_str()),
        (Some("Context Viewed"), Some("voice")),
        "{read}"
    );
    assert!(read.to_string().contains("viewer"), "{read}");
    send_events(
        &app,
        &[
            track("c1", "Ticket Escalated", 0, "support"),
            track("c2", "Ticket Escalated", 0, "support"),
        ],
    )
    .await;
    walk(&app).await;
    let m = app.get_json("/api/v1/journeys/support/metrics").await;
    let ask = &m["stages"][0];
    assert_eq!(
        (
            ask["repeat_contacts"].as_u64(),
            ask["re_explanations"].as_u64()
        ),
        (Some(2), Some(1)),
        "both called again; only c2 had to explain again: {ask}"
    );
    app.stop().await;
}

#[tokio::test]
async fn context_reads_on_sqlite() {
    context_read_on_the_new_channel_is_no_re_explanation(Backend::Sqlite).await;
}

#[tokio::test]
async fn context_reads_on_postgres() {
    context_read_on_the_new_channel_is_no_re_explanation(Backend::Postgres).await;
}

/// A damaged block of the columnar log costs speed, not answers: the metrics fall back to the
/// tallies and the worker walks the rows.
async fn a_damaged_block_falls_back_to_the_rows(backend: Backend) {
    let damage = match backend {
        Backend::Sqlite => "UPDATE event_blocks SET body = X'01ff'",
        Backend::Postgres => "UPDATE event_blocks SET body = '\\x01ff'::bytea",
    };
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let r = app
        .send(reqwest::Method::POST, "/api/v1/journeys", &onboarding())
        .await;
    assert_eq!(r.status(), 201);
    let batch: Vec<Value> = (0..6)
        .map(|i| json!({"type": "track", "userId": format!("c{i}"), "event": "Signed Up", "timestamp": ago(10.0 - i as f64)}))
        .collect();
    send_events(&app, &batch).await;
    let (store, tenant, sql) = (app.store.clone(), app.tenant.clone(), app.sql.clone());
    tokio::task::spawn_blocking(move || {
        while store.compact_events(&tenant, 2).unwrap() > 0 {}
        cxm_store::testing::execute_sql(&sql, damage);
    })
    .await
    .unwrap();
    let m = app.get_json("/api/v1/journeys/onboarding/metrics").await;
    assert_eq!(m["source"], "tallies", "{m}");
    walk(&app).await;
    let m = app.get_json("/api/v1/journeys/onboarding/metrics").await;
    assert_eq!(m["stages"][0]["entries"], 6, "walked by rows: {m}");
    assert_eq!(m["processed_seq"], m["head_seq"]);
    app.stop().await;
}

#[tokio::test]
async fn damaged_block_on_sqlite() {
    a_damaged_block_falls_back_to_the_rows(Backend::Sqlite).await;
}

#[tokio::test]
async fn damaged_block_on_postgres() {
    a_damaged_block_falls_back_to_the_rows(Backend::Postgres).await;
}
