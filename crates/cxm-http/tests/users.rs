//! People over their working life, at the HTTP boundary: an owner offboards a user who left
//! (their sessions end at once and they cannot sign in), re-enables them, sets a password
//! (old sessions end), signs someone out everywhere, and each change is on the audit chain;
//! the rules hold (only owners change owners, nobody disables themselves or the last owner).

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use cxm_store::Role;
use reqwest::Method;
use serde_json::{json, Value};

async fn can_read(app: &TestApp, cookie: &str) -> bool {
    app.client
        .get(app.url("/api/v1/overview"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> u16 {
    app.client
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn id_of(app: &TestApp, email: &str) -> String {
    let users = app.get_json("/api/v1/users").await;
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn offboarding(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let owner = app.login("owner@acme.io", Role::Owner).await;
    let leaver = app.login("leaver@acme.io", Role::Analyst).await;
    let admin = app.login("admin@acme.io", Role::Admin).await;
    assert!(can_read(&app, &leaver).await);
    let users = app.get_json("/api/v1/users").await;
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
    assert!(users.to_string().find("argon2").is_none(), "no hash leaves");
    let leaver_id = id_of(&app, "leaver@acme.io").await;
    let owner_id = id_of(&app, "owner@acme.io").await;

    // disabling ends the session at once and keeps them out
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{leaver_id}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["disabled_at_ms"].is_i64());
    assert!(!can_read(&app, &leaver).await, "the session ended");
    assert_eq!(
        sign_in(&app, "leaver@acme.io", "a-long-password-1").await,
        401
    );
    // and back
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{leaver_id}/enable"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        sign_in(&app, "leaver@acme.io", "a-long-password-1").await,
        303
    );

    // a new password ends every session; the old password no longer works
    let again = app
        .login_existing("leaver@acme.io", "a-long-password-1")
        .await;
    assert!(can_read(&app, &again).await);
    let r = app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{leaver_id}/password"),
            &json!({"password": "short"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{leaver_id}/password"),
            &json!({"password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(!can_read(&app, &again).await);
    assert_eq!(
        sign_in(&app, "leaver@acme.io", "a-long-password-1").await,
        401
    );
    assert_eq!(
        sign_in(&app, "leaver@acme.io", "a-brand-new-password").await,
        303
    );

    // sign out everywhere
    let s1 = app
        .login_existing("leaver@acme.io", "a-brand-new-password")
        .await;
    let r: Value = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{leaver_id}/sessions/revoke"),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(r["revoked"].as_u64().unwrap() >= 1);
    assert!(!can_read(&app, &s1).await);

    // the rules
    let as_admin = |path: String| {
        app.client
            .post(app.url(&path))
            .header("cookie", &admin)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    let r = as_admin(format!("/api/v1/users/{owner_id}/disable"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "an admin cannot disable an owner");
    let admin_id = id_of(&app, "admin@acme.io").await;
    let r = as_admin(format!("/api/v1/users/{admin_id}/disable"))
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "nobody disables themselves");
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{owner_id}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(
        r.status(),
        403,
        "a secret key has an admin's authority, not an owner's"
    );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/users/{owner_id}/disable")))
        .header("cookie", &owner)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "an owner cannot disable themselves");
    let r = app
        .send(Method::POST, "/api/v1/users/usr_nobody/disable", &json!({}))
        .await;
    assert_eq!(r.status(), 404);
    // analysts and viewers do not manage users
    let r = app
        .client
        .get(app.url("/api/v1/users"))
        .header("cookie", &app.login("analyst@acme.io", Role::Analyst).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(can_read(&app, &owner).await);

    // every change is on the audit chain, which still verifies
    let report = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    let (store, tenant) = (app.store.clone(), app.tenant.clone());
    let kinds: Vec<String> = tokio::task::spawn_blocking(move || {
        store
            .audit_entries(&tenant, 0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    })
    .await
    .unwrap();
    for k in [
        "user.disabled",
        "user.enabled",
        "user.password_set",
        "user.sessions_revoked",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn offboarding_on_sqlite() {
    offboarding(Backend::Sqlite).await;
}

#[tokio::test]
async fn offboarding_on_postgres() {
    offboarding(Backend::Postgres).await;
}

/// The dashboard's users page does the same, and anyone changes their own password on
/// their account page with the current one.
#[tokio::test]
async fn users_and_account_pages() {
    let app = TestApp::spawn().await;
    let owner = app.login("owner@acme.io", Role::Owner).await;
    let viewer = app.login("viewer@acme.io", Role::Viewer).await;
    let viewer_id = id_of(&app, "viewer@acme.io").await;
    let page = app
        .client
        .get(app.url("/settings/users"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("viewer@acme.io") && html.contains("Disable viewer@acme.io"));
    let r = app
        .client
        .post(app.url(&format!("/settings/users/{viewer_id}/disable")))
        .header("cookie", &owner)
        .form(&[("x", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("viewer@acme.io is disabled"));
    assert!(!can_read(&app, &viewer).await);
    // the viewer never sees the users page
    let r = app
        .client
        .get(app.url("/settings/users"))
        .header("cookie", &app.login("viewer2@acme.io", Role::Viewer).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // own password: the current one is needed, and the change signs out
    let analyst = app.login("ana@acme.io", Role::Analyst).await;
    let change = |current: &'static str, new: &'static str| {
        app.client
            .post(app.url("/settings/account"))
            .header("cookie", &analyst)
            .form(&[("current", current), ("password", new), ("confirm", new)])
            .send()
    };
    let r = change("not-the-password", "another-long-one")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = change("a-long-password-1", "another-long-one")
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(!can_read(&app, &analyst).await);
    assert_eq!(sign_in(&app, "ana@acme.io", "another-long-one").await, 303);
    app.stop().await;
}

/// A viewer's read of a customer's context leaves no trace on the customer's journey; an
/// agent operator's, a secret key's and an agent key's do. Analysts sign neither messages
/// nor assets as the organisation.
#[tokio::test]
async fn who_reads_and_who_signs() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.batch(json!({"batch": [{"type": "identify", "userId": "ana", "traits": {"email": "ana@example.com"}}]}))
            .await
            .status(),
        200
    );
    let pid = app
        .get_json("/api/v1/customers?identifier=user_id:ana")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let views = || async {
        let ctx = app
            .get_json(&format!("/api/v1/customers/{pid}/context?limit=100"))
            .await;
        ctx["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "Context Viewed")
            .count()
    };
    let read = |cookie: String| {
        let (app, pid) = (&app, &pid);
        async move {
            app.client
                .get(app.url(&format!("/api/v1/customers/{pid}/context?channel=voice")))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        read(app.login("viewer@acme.io", Role::Viewer).await).await,
        200
    );
    assert_eq!(
        read(app.login("analyst@acme.io", Role::Analyst).await).await,
        200
    );
    assert_eq!(views().await, 0, "readers who do not serve leave no trace");
    assert_eq!(
        read(app.login("ops@acme.io", Role::AgentOperator).await).await,
        200
    );
    assert_eq!(views().await, 1);
    assert_eq!(
        app.post(
            "/api/v1/agents",
            &app.secret_key,
            &json!({"name": "voice-bot"})
        )
        .await
        .status(),
        201
    );
    let key: Value = app
        .post("/api/v1/agents/voice-bot/keys", &app.secret_key, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let agent_key = key["key"].as_str().unwrap();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/customers/{pid}/context?channel=chat")))
        .bearer_auth(agent_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "agents read the context they serve with");
    assert_eq!(views().await, 2);

    let analyst = app.login("analyst2@acme.io", Role::Analyst).await;
    let r = app
        .client
        .post(app.url("/api/v1/assets/sign?title=logo"))
        .header("cookie", &analyst)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "analysts do not sign assets as the organisation"
    );
    let r = app
        .client
        .post(app.url("/api/v1/messages/sign"))
        .header("cookie", &analyst)
        .json(&json!({"agent": "voice-bot", "text": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "nor messages");
    app.stop().await;
}
