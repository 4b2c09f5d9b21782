//! What the session cookie can and cannot be made to do by another site: cross-site writes
//! to the API and the dashboard are refused, requests for a host this server does not answer
//! to get nothing, sign-in never sends anyone off the site, and every page carries the
//! headers that keep it from being framed, sniffed or cached.

mod common;

use common::TestApp;
use cxm_store::Role;
use serde_json::{json, Value};

/// A client that adds no Origin of its own, as a page on another site would not.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn keys(app: &TestApp) -> usize {
    app.get_json("/api/v1/keys").await["keys"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn the_api_refuses_cross_site_writes_with_the_cookie() {
    let app = TestApp::spawn().await;
    let cookie = app.login("owner@acme.io", Role::Owner).await;
    let before = keys(&app).await;
    let c = bare();
    // a page served from another port of the same host
    let other_port = "http://127.0.0.1:1";
    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "a page on another port, as a form would send it",
            c.post(app.url("/api/v1/keys"))
                .header("cookie", &cookie)
                .header("origin", other_port)
                .header("content-type", "text/plain")
                .body(r#"{"kind":"secret"}"#),
        ),
        (
            "a page on another port, with json",
            c.post(app.url("/api/v1/keys"))
                .header("cookie", &cookie)
                .header("origin", other_port)
                .json(&json!({"kind": "secret"})),
        ),
        (
            "a browser that says cross-site",
            c.post(app.url("/api/v1/webhooks"))
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"url": "https://8.8.8.8/hook"})),
        ),
        (
            "a same-site sibling",
            c.post(app.url("/api/v1/keys"))
                .header("cookie", &cookie)
                .header("sec-fetch-site", "same-site")
                .json(&json!({"kind": "secret"})),
        ),
        (
            "no Origin and no Sec-Fetch-Site",
            c.post(app.url("/api/v1/keys"))
                .header("cookie", &cookie)
                .json(&json!({"kind": "secret"})),
        ),
        (
            "our own origin but a form's content type",
            c.post(app.url("/api/v1/keys"))
                .header("cookie", &cookie)
                .header("origin", &app.base)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("kind=secret"),
        ),
    ];
    for (what, req) in attempts {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{what}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "forbidden", "{what}");
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }
    assert_eq!(keys(&app).await, before, "no key was made");
    assert!(app.get_json("/api/v1/webhooks").await["webhooks"]
        .as_array()
        .unwrap()
        .is_empty());

    // from our own pages it works, and bearer keys are not affected by any Origin
    let r = c
        .post(app.url("/api/v1/keys"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"kind": "write", "name": "site"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(app.url("/api/v1/keys"))
        .bearer_auth(&app.secret_key)
        .header("origin", "https://anywhere.example")
        .json(&json!({"kind": "write", "name": "server"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // reads with the cookie need no Origin
    let r = c
        .get(app.url("/api/v1/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn dashboard_forms_refuse_other_sites_and_other_hosts() {
    let app = TestApp::spawn().await;
    let cookie = app.login("owner@acme.io", Role::Owner).await;
    let c = bare();
    let r = c
        .post(app.url("/settings/keys"))
        .header("cookie", &cookie)
        .form(&[("kind", "secret"), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a form post that proves nothing");
    let r = c
        .post(app.url("/settings/keys"))
        .header("cookie", &cookie)
        .header("origin", "http://127.0.0.1:1")
        .form(&[("kind", "secret"), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // a name rebound to this address: the Host is not one this server answers to
    let port = app.base.rsplit(':').next().unwrap();
    for (method, path) in [("GET", "/customers"), ("POST", "/login")] {
        let r = c
            .request(method.parse().unwrap(), app.url(path))
            .header("host", format!("rebound.evil.example:{port}"))
            .header("cookie", &cookie)
            .header("origin", format!("http://rebound.evil.example:{port}"))
            .form(&[
                ("email", "owner@acme.io"),
                ("password", "a-long-password-1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let p: Value = r.json().await.unwrap();
        assert!(
            p["detail"].as_str().unwrap().contains("--public-url"),
            "{p}"
        );
    }
    // localhost is this server too
    let r = c
        .get(format!("http://localhost:{port}/customers"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn signing_in_never_leaves_the_site() {
    let app = TestApp::spawn().await;
    app.add_user("ana@acme.io", "a-long-password-1", Role::Analyst)
        .await;
    for next in [
        "/\t/evil.example",
        "/%09/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/\n/evil.example",
    ] {
        let r = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("email", "ana@acme.io"),
                ("password", "a-long-password-1"),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], "/", "{next:?}");
    }
    let page = app
        .client
        .get(app.url("/login?next=/%09/evil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "the form carries / instead");
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "ana@acme.io"),
            ("password", "a-long-password-1"),
            ("next", "/themes?days=30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/themes?days=30");
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let config = cxm_http::HttpConfig {
        secure_cookies: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(common::Backend::Sqlite, config)
        .await
        .unwrap();
    let login = app.client.get(app.url("/login")).send().await.unwrap();
    let h = login.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    // signed-in pages and api answers are not cached; assets are
    let cookie = app.login("owner@acme.io", Role::Owner).await;
    let page = app
        .client
        .get(app.url("/customers"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.headers().contains_key("content-security-policy"));
    let api = app.get("/api/v1/overview").await;
    assert_eq!(api.headers()["cache-control"], "no-store");
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    let css = app
        .client
        .get(app.url("/assets/app.css"))
        .send()
        .await
        .unwrap();
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    // a hosted survey page may be framed by the customer's site
    let r = app.post("/api/v1/surveys", &app.secret_key, &json!({"survey_id": "csat", "definition": {"name": "CSAT", "questions": [{"id": "q", "type": "csat", "prompt": "How did we do?"}]}})).await;
    assert!(r.status().is_success());
    let link: Value = app
        .post("/api/v1/surveys/csat/links", &app.secret_key, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let path = url.find("/s/").map(|i| &url[i..]).unwrap();
    let survey = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(survey.status(), 200);
    let csp = survey.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert!(!survey.headers().contains_key("x-frame-options"));
    app.stop().await;
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap()
}

/// Five wrong passwords and the account backs off: a 429 with Retry-After, during which the
/// right password does not get in either.
#[tokio::test]
async fn wrong_passwords_back_off() {
    let app = TestApp::spawn().await;
    app.add_user("ana@acme.io", "a-long-password-1", Role::Owner)
        .await;
    for _ in 0..5 {
        assert_eq!(sign_in(&app, "ana@acme.io", "guess").await.status(), 401);
    }
    let r = sign_in(&app, "ana@acme.io", "guess").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    let r = sign_in(&app, "ana@acme.io", "a-long-password-1").await;
    assert_eq!(r.status(), 429, "the right password waits too");
    assert!(!r.headers().contains_key("set-cookie"));
    // other accounts are not held back by ana's
    app.add_user("bo@acme.io", "a-long-password-2", Role::Viewer)
        .await;
    assert_eq!(
        sign_in(&app, "bo@acme.io", "a-long-password-2")
            .await
            .status(),
        303
    );
    // after the backoff, the right password works and clears the failures
    tokio::time::sleep(std::time::Duration::from_secs(retry + 1)).await;
    assert_eq!(
        sign_in(&app, "ana@acme.io", "a-long-password-1")
            .await
            .status(),
        303
    );
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
        metrics.contains("cxm_sign_ins_refused_total{reason=\"wrong_credentials\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cxm_sign_ins_refused_total{reason=\"throttled\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}

/// An unknown email costs a password verification too, so the answer's timing does not say
/// which emails have accounts; and verifications run at most about one per core at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_does_not_tell_who_exists_or_run_unbounded() {
    let app = TestApp::spawn().await;
    app.add_user("ana@acme.io", "a-long-password-1", Role::Owner)
        .await;
    let time = |email: String| {
        let app = &app;
        async move {
            let t = std::time::Instant::now();
            assert_eq!(sign_in(app, &email, "wrong-password").await.status(), 401);
            t.elapsed()
        }
    };
    // warm up (the dummy hash is made on first use)
    time("nobody-0@acme.io".into()).await;
    let (mut known, mut unknown) = (vec![], vec![]);
    for i in 0..4 {
        known.push(time("ana@acme.io".into()).await);
        unknown.push(time(format!("nobody-{i}@acme.io")).await);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2].as_secs_f64(), unknown[2].as_secs_f64());
    assert!(
        u > k * 0.5,
        "an unknown email answered in {u:.4} s, a known one in {k:.4} s"
    );

    let mut sends = vec![];
    for i in 0..12 {
        let (client, url) = (app.client.clone(), app.url("/login"));
        sends.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&[
                    ("email", format!("crowd-{i}@acme.io")),
                    ("password", "x".into()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for s in sends {
        assert!([401, 429].contains(&s.await.unwrap()));
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let peak: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cxm_password_checks_peak "))
        .unwrap()
        .parse()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(
        peak >= 1 && peak <= cores,
        "{peak} checks ran at once on {cores} cores"
    );
    app.stop().await;
}
