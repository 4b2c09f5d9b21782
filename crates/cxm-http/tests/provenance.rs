//! Signed messages over HTTP: an agent's message is signed only with its disclosure, anyone
//! can verify it (altered text, forged signatures and revoked keys are named), keys rotate
//! without breaking old signatures, and signed checkpoints catch a log cut short.

mod common;

use common::{Backend, TestApp};
use cxm_http::HttpConfig;
use serde_json::{json, Value};

async fn verify(app: &TestApp, body: Value) -> Value {
    // public: no credentials
    let r = app
        .client
        .post(app.url("/api/v1/messages/verify"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn messages_are_signed_and_verifiable(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let sk = app.secret_key.clone();
    let r = app
        .post(
            "/api/v1/agents",
            &sk,
            &json!({"name": "billing-bot", "disclosure": "I'm Acme's automated assistant."}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // no disclosure, no signature
    let r = app
        .post(
            "/api/v1/messages/sign",
            &sk,
            &json!({"agent": "billing-bot", "text": "Your refund is on its way."}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "disclosure_missing");
    assert!(b["detail"]
        .as_str()
        .unwrap()
        .contains("I'm Acme's automated assistant."));
    let r = app
        .post(
            "/api/v1/messages/sign",
            &sk,
            &json!({"agent": "nobody", "text": "hi"}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unknown_agent");

    let text = "Hi Ana, i'm acme's   automated assistant. Your refund of 20.00 USD is on its way.";
    let r = app.post("/api/v1/messages/sign", &sk, &json!({"agent": "billing-bot", "text": text, "customer": "user_id:ana", "channel": "email"})).await;
    assert_eq!(r.status(), 200);
    let signed: Value = r.json().await.unwrap();
    let sig = signed["signature"].as_str().unwrap().to_string();
    assert_eq!(
        signed["disclosure_shown"],
        "I'm Acme's automated assistant."
    );

    let v = verify(&app, json!({"signature": sig, "text": text})).await;
    assert_eq!(
        (v["valid"].as_bool(), v["status"].as_str()),
        (Some(true), Some("valid")),
        "{v}"
    );
    assert_eq!(v["org"], "Acme");
    assert_eq!(v["sender"], "billing-bot");
    assert_eq!(v["sender_kind"], "agent");
    let v = verify(
        &app,
        json!({"signature": sig, "text": text.replace("20.00", "200.00")}),
    )
    .await;
    assert_eq!(
        (v["valid"].as_bool(), v["status"].as_str()),
        (Some(false), Some("altered"))
    );
    // a forged statement under a genuine signature
    let parts: Vec<&str> = sig.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], &parts[2][..10], parts[2]);
    let v = verify(&app, json!({"signature": forged, "text": text})).await;
    assert_eq!(v["valid"], false);
    let v = verify(&app, json!({"signature": "not a signature"})).await;
    assert_eq!(v["status"], "malformed");

    // rotation keeps old signatures valid; revocation does not
    let jwks: Value = app
        .client
        .get(app.url(&format!("/.well-known/cxm/{}/jwks.json", app.tenant)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let old_kid = signed["kid"].as_str().unwrap().to_string();
    assert_eq!(jwks["keys"][0]["kid"], old_kid.as_str());
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let r = app
        .post("/api/v1/signing-keys/rotate", &sk, &json!({}))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        verify(&app, json!({"signature": sig, "text": text})).await["status"],
        "valid"
    );
    let r = app
        .post(
            "/api/v1/messages/sign",
            &sk,
            &json!({"text": "Your invoice is attached."}),
        )
        .await;
    let by_key: Value = r.json().await.unwrap();
    assert_ne!(by_key["kid"], old_kid.as_str());
    assert_eq!(by_key["disclosure_shown"], Value::Null);
    let r = app
        .post(
            &format!("/api/v1/signing-keys/{old_kid}/revoke"),
            &sk,
            &json!({"reason": "the laptop was stolen"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = verify(&app, json!({"signature": sig, "text": text})).await;
    assert_eq!(v["status"], "revoked_key");
    assert!(v["detail"]
        .as_str()
        .unwrap()
        .contains("the laptop was stolen"));
    let jwks: Value = app
        .client
        .get(app.url(&format!("/.well-known/cxm/{}/jwks.json", app.tenant)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let r = app
        .post(
            &format!("/api/v1/signing-keys/{old_kid}/revoke"),
            &sk,
            &json!({"reason": "again"}),
        )
        .await;
    assert_eq!(r.status(), 404);

    // the public page: from the link, then the pasted text
    let page = app
        .client
        .get(app.url(by_key["verify_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-status=\"valid\"") && page.contains("Acme"),
        "{page}"
    );
    let page = app
        .client
        .post(app.url("/verify"))
        .form(&[
            ("signature", by_key["signature"].as_str().unwrap()),
            ("text", "Your invoice is attached!"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-status=\"altered\""), "{page}");

    // the keys page lists the signing keys; an admin rotates there
    let owner = app.login("owner@acme.test", cxm_store::Role::Owner).await;
    let page = app
        .client
        .get(app.url("/settings/keys"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-testid=\"signing-keys\"") && page.contains("the laptop was stolen"),
        "{page}"
    );
    let r = app
        .client
        .post(app.url("/settings/signing-keys/rotate"))
        .header("cookie", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.get_json("/api/v1/signing-keys").await["keys"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // signed checkpoints: the chain's head is signed; cutting the tail off is then named
    let r = app.post("/api/v1/audit/checkpoint", &sk, &json!({})).await;
    let cp: Value = r.json().await.unwrap();
    let seq = cp["seq"].as_i64().unwrap();
    assert!(seq >= 5, "{cp}");
    assert_eq!(app.get_json("/api/v1/audit/verify").await["ok"], true);
    let stmt = match &app.sql {
        cxm_store::testing::SqlTarget::Sqlite(_) => format!("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = {seq};"),
        cxm_store::testing::SqlTarget::Postgres(_) => format!("DROP TRIGGER audit_log_append_only ON audit_log; DELETE FROM audit_log WHERE seq = {seq};"),
    };
    let sql = app.sql.clone();
    tokio::task::spawn_blocking(move || cxm_store::testing::execute_sql(&sql, &stmt))
        .await
        .unwrap();
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["ok"], false);
    assert!(
        v["broken"]["problem"]
            .as_str()
            .unwrap()
            .contains("cut short"),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn provenance_on_sqlite() {
    messages_are_signed_and_verifiable(Backend::Sqlite).await;
}

#[tokio::test]
async fn provenance_on_postgres() {
    messages_are_signed_and_verifiable(Backend::Postgres).await;
}

/// A 1×1 PNG, built by hand.
fn tiny_png() -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend(data);
        out.extend(&c);
        out.extend(crc32(&c).to_be_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff, 0x00, 0x80, 0x00, 0x82, 0x00, 0x81,
        ],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

async fn images_carry_content_credentials(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, HttpConfig::default()).await else {
        return;
    };
    let send = |path: &str, ct: &str, body: Vec<u8>, key: Option<&str>| {
        let mut r = app
            .client
            .post(app.url(path))
            .header("content-type", ct)
            .body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let r = send(
        "/api/v1/assets/sign?title=refund-receipt.png",
        "image/png",
        tiny_png(),
        Some(&app.secret_key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-c2pa-embedded"], "true");
    let signed = r.bytes().await.unwrap().to_vec();
    assert!(signed.len() > tiny_png().len());
    let v: Value = send("/api/v1/assets/verify", "image/png", signed.clone(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "valid", "{v}");
    assert_eq!(v["title"], "refund-receipt.png");
    assert_eq!(v["issuer"], "Acme");
    let mut altered = signed.clone();
    let at = altered.windows(4).position(|w| w == b"IDAT").unwrap() + 10;
    altered[at] ^= 1;
    let v: Value = send("/api/v1/assets/verify", "image/png", altered, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "invalid", "{v}");
    let v: Value = send("/api/v1/assets/verify", "image/png", tiny_png(), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "none");
    // no embedding for plain text: a sidecar manifest comes back
    let r = send(
        "/api/v1/assets/sign?title=terms.txt",
        "text/plain",
        b"our terms".to_vec(),
        Some(&app.secret_key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/c2pa");
    assert!(!r.bytes().await.unwrap().is_empty());
    // bad input
    let r = send(
        "/api/v1/assets/sign",
        "image/png",
        vec![],
        Some(&app.secret_key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = send(
        "/api/v1/assets/sign",
        "image/png",
        b"not a png".to_vec(),
        Some(&app.secret_key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    let r = send("/api/v1/assets/sign", "image/png", tiny_png(), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn content_credentials_on_sqlite() {
    images_carry_content_credentials(Backend::Sqlite).await;
}

#[tokio::test]
async fn content_credentials_on_postgres() {
    images_carry_content_credentials(Backend::Postgres).await;
}
