//! A real server on 127.0.0.1:0 over a real store, per test (the zero-to-production
//! `spawn_app` pattern).
#![allow(dead_code)]

use std::sync::Arc;

use cxm_http::{AppState, HttpConfig};
use cxm_store::committer::Committer;
use cxm_store::testing::{pg_admin_url, SqlTarget, TestDb};
use cxm_store::{KeyKind, Role, Store, StoreSettings, User};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub tenant: String,
    pub write_key: String,
    pub secret_key: String,
    /// The database behind the store, for tests that tamper with it.
    pub sql: SqlTarget,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _guard: Box<dyn std::any::Any + Send>,
}

pub enum Backend {
    Sqlite,
    Postgres,
}

/// Settings for tests whose webhook receivers listen on this machine: like an operator
/// with an internal receiver, they allow the loopback network (cxm refuses it otherwise).
pub fn loopback_webhooks() -> HttpConfig {
    HttpConfig {
        webhook_allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..HttpConfig::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Backend::Sqlite, HttpConfig::default())
            .await
            .unwrap()
    }

    /// `None` when PostgreSQL is not configured (the caller skips).
    pub async fn spawn_with(backend: Backend, config: HttpConfig) -> Option<TestApp> {
        let (store, guard, sql): (Arc<dyn Store>, Box<dyn std::any::Any + Send>, SqlTarget) =
            match backend {
                Backend::Sqlite => {
                    let dir = tempfile::tempdir().unwrap();
                    let s = cxm_store::SqliteStore::open_dir(dir.path(), StoreSettings::default())
                        .unwrap();
                    let sql = SqlTarget::Sqlite(dir.path().join("cxm.db"));
                    (Arc::new(s), Box::new(dir), sql)
                }
                Backend::Postgres => {
                    let Some(admin) = pg_admin_url() else {
                        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
                        return None;
                    };
                    let db = tokio::task::spawn_blocking(move || TestDb::create(&admin))
                        .await
                        .unwrap();
                    let url = db.url.clone();
                    let s = tokio::task::spawn_blocking(move || {
                        cxm_store::PgStore::connect(&url, StoreSettings::default()).unwrap()
                    })
                    .await
                    .unwrap();
                    let sql = SqlTarget::Postgres(db.url.clone());
                    (Arc::new(s), Box::new(db), sql)
                }
            };
        let (tenant, write_key, secret_key) = Self::new_tenant(&store, "Acme").await;
        let (committer, writer) = Committer::spawn(store.clone());
        let state = AppState::new(store.clone(), committer, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // the workers the tests lean on; the rest run on a schedule too slow for a test
        let workers: Vec<Box<dyn cxm_app::supervisor::Worker>> = vec![
            Box::new(cxm_app::workers::Themes::default()),
            Box::new(cxm_app::workers::Triggers),
            Box::new(cxm_app::workers::Webhooks),
        ];
        let supervisor = cxm_app::supervisor::Supervisor::start(
            state.app.clone(),
            workers,
            Arc::new(cxm_app::supervisor::Everything),
        );
        let _ = state.workers.set(supervisor.roster());
        let server = tokio::spawn(async move {
            cxm_http::serve(listener, state, async {
                rx.await.ok();
            })
            .await
            .unwrap();
            supervisor.stop(std::time::Duration::from_secs(10)).await;
            writer.await.unwrap();
        });
        // like a browser on the dashboard's own pages, every request says where it came
        // from; tests of cross-site requests set another Origin
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", base.parse().unwrap());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Some(TestApp {
            base,
            client,
            store,
            tenant,
            write_key,
            secret_key,
            sql,
            stop: Some(tx),
            server: Some(server),
            _guard: guard,
        })
    }

    pub async fn new_tenant(store: &Arc<dyn Store>, name: &str) -> (String, String, String) {
        let (store, name) = (store.clone(), name.to_string());
        tokio::task::spawn_blocking(move || {
            let t = store.create_tenant(&name).unwrap();
            let (wk, w) = cxm_app::auth::generate_key(&t.id, KeyKind::Write, "w");
            let (sk, s) = cxm_app::auth::generate_key(&t.id, KeyKind::Secret, "s");
            store.insert_key(&w).unwrap();
            store.insert_key(&s).unwrap();
            (t.id, wk, sk)
        })
        .await
        .unwrap()
    }

    /// Registers a key with a chosen plaintext (the fixtures carry their own write keys).
    pub async fn add_key(&self, plain: &str, kind: KeyKind) {
        let (store, tenant, plain) = (self.store.clone(), self.tenant.clone(), plain.to_string());
        tokio::task::spawn_blocking(move || {
            let (_, mut k) = cxm_app::auth::generate_key(&tenant, kind, "fixture");
            k.hash = cxm_app::auth::sha256_hex(&plain);
            store.insert_key(&k).unwrap();
        })
        .await
        .unwrap();
    }

    pub async fn add_user(&self, email: &str, password: &str, role: Role) {
        let (store, tenant) = (self.store.clone(), self.tenant.clone());
        let u = User {
            id: format!("usr_{}", uuid_like(email)),
            tenant_id: tenant,
            email: email.into(),
            password_hash: cxm_app::auth::hash_password(password).unwrap(),
            role,
            created_at_ms: 0,
            disabled_at_ms: None,
        };
        tokio::task::spawn_blocking(move || store.insert_user(&u).unwrap())
            .await
            .unwrap();
    }

    /// Adds a dashboard user and signs in; returns the session cookie.
    #[allow(dead_code)]
    pub async fn login(&self, email: &str, role: Role) -> String {
        self.add_user(email, "a-long-password-1", role).await;
        let r = self
            .client
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", "a-long-password-1"),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// Signs in as an existing user; returns the session cookie.
    pub async fn login_existing(&self, email: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-in as {email}");
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn batch(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/batch"))
            .basic_auth(&self.write_key, Some(""))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs JSON with a bearer key.
    pub async fn post(
        &self,
        path: &str,
        bearer: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends JSON with any method and the secret key.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.secret_key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap();
        }
    }
}

fn uuid_like(s: &str) -> String {
    cxm_app::auth::sha256_hex(s)[..16].to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
