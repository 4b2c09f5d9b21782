//! The real binary: scriptable setup, import, rebuild, help, and data acknowledged before a
//! `kill -9` surviving the restart.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn cxm(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cxm"));
    c.arg("--data-dir")
        .arg(dir)
        .env_remove("CXM_DATABASE_URL")
        .env_remove("CXM_CONFIG")
        .env("CXM_LOG", "warn");
    c
}

fn run_json(c: &mut Command) -> Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not json ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child, String);

fn serve(dir: &std::path::Path) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        cxm(dir)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rate-limit",
                "0",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        base,
    );
    for _ in 0..200 {
        if reqwest::blocking_get_ok(&format!("{}/readyz", server.1)) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not start");
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

mod reqwest {
    pub use ::reqwest::*;
    /// A tiny readiness probe without pulling in reqwest's blocking client.
    pub fn blocking_get_ok(url: &str) -> bool {
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return false;
        };
        let path = &url[url.find(&addr).unwrap() + addr.len()..];
        let _ = s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200")
    }
}

#[test]
fn tenant_key_and_user_setup_is_scriptable() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    assert!(t["write_key"].as_str().unwrap().starts_with("cxm_wk_"));
    assert!(t["secret_key"].as_str().unwrap().starts_with("cxm_sk_"));
    let k = run_json(cxm(dir.path()).args([
        "key", "create", "--tenant", tenant, "--kind", "write", "--name", "mobile", "--json",
    ]));
    let keys = run_json(cxm(dir.path()).args(["key", "list", "--tenant", tenant, "--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 3);
    assert!(
        keys.to_string().find(k["key"].as_str().unwrap()).is_none(),
        "plaintext keys are never listed"
    );
    let out = cxm(dir.path())
        .args([
            "key",
            "revoke",
            "--tenant",
            tenant,
            k["key_id"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = cxm(dir.path())
        .args([
            "key",
            "revoke",
            "--tenant",
            tenant,
            k["key_id"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "revoking twice reports an error");
    let u = run_json(cxm(dir.path()).args([
        "user",
        "create",
        "--tenant",
        tenant,
        "--email",
        "Lead@Acme.io",
        "--role",
        "admin",
        "--json",
    ]));
    assert_eq!(u["email"], "lead@acme.io");
    assert_eq!(
        u["password"].as_str().unwrap().len(),
        16,
        "a generated password is shown once"
    );
    let bad = cxm(dir.path())
        .args([
            "user",
            "create",
            "--tenant",
            tenant,
            "--email",
            "x@acme.io",
            "--role",
            "boss",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("must be one of owner, admin, analyst, agent-operator, viewer"));

    // offboarding from the shell: disable, enable, a new password, sign out everywhere;
    // the last owner who can sign in cannot be disabled
    let user = |args: &[&str]| {
        let mut c = cxm(dir.path());
        c.arg("user").args(args).args(["--tenant", tenant]);
        c.output().unwrap()
    };
    let out = user(&["disable", "--email", "lead@acme.io"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = run_json(cxm(dir.path()).args(["user", "list", "--tenant", tenant, "--json"]));
    assert!(listed[0]["disabled_at_ms"].is_i64(), "{listed}");
    assert!(user(&["enable", "--email", "lead@acme.io"])
        .status
        .success());
    let out = cxm(dir.path())
        .args([
            "user",
            "passwd",
            "--tenant",
            tenant,
            "--email",
            "lead@acme.io",
        ])
        .env("CXM_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 to 1024 characters"));
    let out = user(&["passwd", "--email", "lead@acme.io"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("password: "),
        "a generated one is shown"
    );
    let out = user(&["revoke-sessions", "--email", "lead@acme.io"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 sessions"));
    let owner = cxm(dir.path())
        .args([
            "user",
            "create",
            "--tenant",
            tenant,
            "--email",
            "boss@acme.io",
            "--role",
            "owner",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(owner.status.success());
    let out = user(&["disable", "--email", "boss@acme.io"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last owner"));
    let out = user(&["disable", "--email", "nobody@acme.io"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody@acme.io"));
}

#[test]
fn serve_help_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_cxm"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for opt in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--config",
        "--path-prefix",
        "--max-request-bytes",
        "--max-event-bytes",
        "--rate-limit",
        "--rate-burst",
        "--trust-timestamps",
        "--dedup-window-hours",
        "--secure-cookies",
        "--max-batch-events",
        "--quarantine-rows-per-day",
        "--quarantine-bytes-per-day",
        "--webhook-allow-network",
        "--public-url",
        "--header-timeout-secs",
        "--body-timeout-secs",
        "--max-connections",
        "CXM_WEBHOOK_ALLOW_NETWORK",
        "CXM_LISTEN",
        "CXM_DATA_DIR",
    ] {
        assert!(help.contains(opt), "serve --help does not mention {opt}");
    }
}

/// What a client types never forges a log line or colours the operator's terminal: the
/// email typed at sign-in is logged with its control characters escaped, and a log that is
/// not a terminal gets no colour codes.
#[tokio::test]
async fn typed_values_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = cxm(dir.path())
        .env("CXM_LOG", "info")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::blocking_get_ok(&format!("{base}/readyz")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let forged = "nobody@example.com\n2026-12-01T00:00:00.000000Z  INFO cxm_http::dashboard: signed in email=admin@example.com\u{1b}[2J";
    let r = reqwest::Client::new()
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("email", forged), ("password", "wrong-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("failed sign-in"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes reach the log: {text:?}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("signed in email=admin") && !l.contains("failed sign-in")),
        "no forged line: {text}"
    );
}

#[test]
fn config_file_is_used_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cxm.toml");
    std::fs::write(&cfg, "dedup_window_hours = 2\n").unwrap();
    let out = cxm(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dedup window must be at least 24 hours"));
    std::fs::write(&cfg, "no_such_setting = 1\n").unwrap();
    let out = cxm(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[test]
fn import_generate_and_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let csv = dir.path().join("history.csv");
    std::fs::write(&csv, "customer,what,when,mail\nc1,Payment Failed,2024-03-01T10:00:00Z,c1@x.io\nc1,Churn Notice,2024-03-05T10:00:00Z,\nc2,Signed Up,2024-03-02T10:00:00Z,c2@x.io\n").unwrap();
    let map = "userId=customer,event=what,timestamp=when,email=mail";
    let bad = cxm(dir.path())
        .args(["import", "events"])
        .arg(&csv)
        .args(["--tenant", tenant, "--map", map])
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "email is not a message field; traits.email is"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("traits.x"));
    let map = "userId=customer,event=what,timestamp=when,traits.email=mail";
    let first = run_json(
        cxm(dir.path())
            .args(["import", "events"])
            .arg(&csv)
            .args(["--tenant", tenant, "--map", map]),
    );
    assert_eq!(
        first,
        json!({"accepted": 3, "duplicates": 0, "quarantined": 0})
    );
    let again = run_json(
        cxm(dir.path())
            .args(["import", "events"])
            .arg(&csv)
            .args(["--tenant", tenant, "--map", map]),
    );
    assert_eq!(
        again["duplicates"], 3,
        "re-importing the same file adds nothing"
    );
    let generated = run_json(cxm(dir.path()).args([
        "generate", "--events", "3000", "--seed", "9", "--tenant", tenant,
    ]));
    assert!(generated["loaded"]["accepted"].as_u64().unwrap() > 2900);
    let rebuilt = run_json(cxm(dir.path()).args(["rebuild", "--tenant", tenant]));
    assert_eq!(
        rebuilt["events"].as_u64().unwrap(),
        3 + generated["loaded"]["accepted"].as_u64().unwrap()
    );
    // the same seed gives the same NDJSON
    let a = cxm(dir.path())
        .args(["generate", "--events", "50", "--seed", "3", "--out", "-"])
        .output()
        .unwrap();
    let b = cxm(dir.path())
        .args(["generate", "--events", "50", "--seed", "3", "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&a.stdout).lines().count(), 50);
    assert_eq!(a.stdout.len(), b.stdout.len());
}

/// Fires concurrent batches, kills the server with SIGKILL mid-stream, restarts it on the
/// same data, and checks that every batch that got a 200 is there in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let (wk, sk) = (
        t["write_key"].as_str().unwrap().to_string(),
        t["secret_key"].as_str().unwrap().to_string(),
    );
    let mut server = serve(dir.path());
    let client = reqwest::Client::new();
    let url = format!("{}/v1/batch", server.1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut tasks = vec![];
    for worker in 0..8usize {
        let (client, url, wk, tx) = (client.clone(), url.clone(), wk.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10_000usize {
                let batch_id = worker * 100_000 + i;
                let events: Vec<Value> = (0..20).map(|e| json!({"type": "track", "event": "Feature Used", "userId": format!("b{batch_id}"), "messageId": format!("{batch_id}-{e}")})).collect();
                match client.post(&url).basic_auth(&wk, Some("")).json(&json!({"batch": events})).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = tx.send(batch_id);
                    }
                    _ => return,
                }
            }
        }));
    }
    drop(tx);
    let mut acked = vec![];
    while let Some(b) = rx.recv().await {
        acked.push(b);
        if acked.len() == 150 {
            server.0.kill().unwrap(); // SIGKILL: no shutdown hook runs
            server.0.wait().unwrap();
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        acked.len() >= 150,
        "only {} batches were acknowledged",
        acked.len()
    );
    let server = serve(dir.path());
    let c = reqwest::Client::new();
    for b in &acked {
        let r = c
            .get(format!(
                "{}/api/v1/customers?identifier=user_id:b{b}",
                server.1
            ))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "acknowledged batch {b} is missing after kill -9"
        );
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["event_count"], 20, "batch {b} is incomplete");
    }
    drop(server);
}

#[test]
fn customer_lookup_ledger_and_unmerge_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let csv = dir.path().join("e.csv");
    std::fs::write(&csv, "uid,anon,what,when,mail\n,tablet,Chat Started,2025-01-01T10:00:00Z,fam@x.io\nu1,,Signed Up,2025-01-02T10:00:00Z,fam@x.io\n").unwrap();
    run_json(cxm(dir.path()).args(["import", "events"]).arg(&csv).args([
        "--tenant",
        tenant,
        "--map",
        "userId=uid,anonymousId=anon,event=what,timestamp=when,traits.email=mail",
    ]));
    let show = run_json(cxm(dir.path()).args([
        "customer",
        "show",
        "--tenant",
        tenant,
        "--identifier",
        "anonymous_id:tablet",
        "--json",
    ]));
    assert_eq!(show["profile"]["event_count"], 2);
    let merges = run_json(cxm(dir.path()).args([
        "customer",
        "merges",
        "--tenant",
        tenant,
        "--identifier",
        "user_id:u1",
        "--json",
    ]));
    assert_eq!(
        merges
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "merge")
            .count(),
        1
    );
    let out = run_json(cxm(dir.path()).args([
        "customer",
        "unmerge",
        "--tenant",
        tenant,
        "--identifier",
        "email:fam@x.io",
        "--reason",
        "family inbox",
    ]));
    assert_eq!(out["events_replayed"], 2);
    let a = run_json(cxm(dir.path()).args([
        "customer",
        "show",
        "--tenant",
        tenant,
        "--identifier",
        "anonymous_id:tablet",
        "--json",
    ]));
    let b = run_json(cxm(dir.path()).args([
        "customer",
        "show",
        "--tenant",
        tenant,
        "--identifier",
        "user_id:u1",
        "--json",
    ]));
    assert_ne!(a["profile"]["id"], b["profile"]["id"]);
    let missing = cxm(dir.path())
        .args([
            "customer",
            "show",
            "--tenant",
            tenant,
            "--identifier",
            "email:fam@x.io",
        ])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no customer has email:fam@x.io"));
}

/// Operators script setup against the same data directory while the server runs: a tenant
/// and key created by the cli work on the running server at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_works_while_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    run_json(cxm(dir.path()).args(["tenant", "create", "First", "--json"]));
    let server = serve(dir.path());
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Second", "--json"]));
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/track", server.1))
        .basic_auth(t["write_key"].as_str().unwrap(), Some(""))
        .json(&json!({"userId": "u1", "event": "Signed Up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = client
        .get(format!(
            "{}/api/v1/customers?identifier=user_id:u1",
            server.1
        ))
        .bearer_auth(t["secret_key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["event_count"], 1);
    drop(server);
}

#[test]
fn survey_answers_import_from_csv_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let csv = dir.path().join("answers.csv");
    std::fs::write(&csv, "response_id,collected_at,score,comment\nr1,2025-03-01T09:00:00Z,10,Great help from the agent\nr2,2025-03-02T09:00:00Z,4,\nr3,2025-03-02T10:00:00Z,11,typo in export\n").unwrap();
    let map = "nps:nps=score,why:text=comment";
    let bad = cxm(dir.path())
        .args(["import", "feedback"])
        .arg(&csv)
        .args(["--tenant", tenant, "--map", map])
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "an out-of-range score stops the import"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("outside 0..=10"));
    std::fs::write(&csv, "response_id,collected_at,score,comment\nr1,2025-03-01T09:00:00Z,10,Great help from the agent\nr2,2025-03-02T09:00:00Z,4,\n").unwrap();
    let first = run_json(
        cxm(dir.path())
            .args(["import", "feedback"])
            .arg(&csv)
            .args(["--tenant", tenant, "--map", map]),
    );
    assert_eq!(first, json!({"accepted": 3, "duplicates": 0}));
    let again = run_json(
        cxm(dir.path())
            .args(["import", "feedback"])
            .arg(&csv)
            .args(["--tenant", tenant, "--map", map]),
    );
    assert_eq!(again, json!({"accepted": 0, "duplicates": 3}));

    // the metrics from the shell: one promoter, one detractor
    let nps = run_json(cxm(dir.path()).args([
        "metrics",
        "nps",
        "--tenant",
        tenant,
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-31",
        "--json",
    ]));
    assert_eq!(
        (
            nps["overall"]["n"].as_u64(),
            nps["overall"]["value"].as_f64()
        ),
        (Some(2), Some(0.0))
    );
    let bad = cxm(dir.path())
        .args(["metrics", "loyalty", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not_found: no metric"));

    // surveys from a definition file; a broken one is explained and not saved
    let def = dir.path().join("survey.json");
    std::fs::write(&def, r#"{"name": "After your ticket", "questions": [{"id": "nps", "type": "nps", "prompt": "Recommend us?"}],
        "targeting": {"events": ["Ticket Resolved"]}}"#).unwrap();
    let saved = run_json(
        cxm(dir.path())
            .args(["survey", "save", "--tenant", tenant, "after-ticket"])
            .arg(&def),
    );
    assert_eq!(saved["version"], 1);
    std::fs::write(&def, r#"{"name": "x", "questions": []}"#).unwrap();
    let broken = cxm(dir.path())
        .args(["survey", "save", "--tenant", tenant, "after-ticket"])
        .arg(&def)
        .output()
        .unwrap();
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("1 to 50 questions"));
    let list = run_json(cxm(dir.path()).args(["survey", "list", "--tenant", tenant, "--json"]));
    assert_eq!(
        (list[0]["survey_id"].as_str(), list[0]["version"].as_i64()),
        (Some("after-ticket"), Some(1))
    );
    let inv =
        run_json(cxm(dir.path()).args(["survey", "invitations", "--tenant", tenant, "--json"]));
    assert_eq!(inv, json!([]));
}

#[test]
fn journeys_apply_from_yaml_and_report_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let csv = dir.path().join("history.csv");
    std::fs::write(&csv, "customer,what,when\nc1,Signed Up,2024-03-01T10:00:00Z\nc1,Trial Converted,2024-03-03T10:00:00Z\nc2,Signed Up,2024-03-02T10:00:00Z\n").unwrap();
    run_json(cxm(dir.path()).args(["import", "events"]).arg(&csv).args([
        "--tenant",
        tenant,
        "--map",
        "userId=customer,event=what,timestamp=when",
    ]));
    let yaml = dir.path().join("trial.yaml");
    let body = "id: trial\nname: Trial\nowner: ada@acme.example\nstages:\n  - id: signup\n    name: Sign-up\n    owner: growth\n    entry: [Signed Up]\n    target_hours: 72\n  - id: convert\n    name: Converted\n    owner: sales\n    entry: [Trial Converted]\n";
    std::fs::write(&yaml, body).unwrap();
    let apply = |file: &std::path::Path| {
        cxm(dir.path())
            .args(["journey", "apply", "--tenant", tenant])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = apply(&yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"journey_id": "trial", "version": 1, "unchanged": false})
    );
    let again: Value = serde_json::from_slice(&apply(&yaml).stdout).unwrap();
    assert_eq!(
        again["unchanged"], true,
        "applying the same file twice is a no-op"
    );
    // "Trial Converted" was sent, so it is known; a typo is not
    std::fs::write(&yaml, body.replace("Trial Converted", "Trial Convrted")).unwrap();
    let bad = apply(&yaml);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("invalid_definition") && err.contains("Trial Convrted"),
        "{err}"
    );
    std::fs::write(&yaml, "id: trial\nname: [").unwrap();
    assert!(String::from_utf8_lossy(&apply(&yaml).stderr).contains("not a journey definition"));

    let m = run_json(
        cxm(dir.path()).args(["journey", "metrics", "trial", "--tenant", tenant, "--json"]),
    );
    assert_eq!(m["stages"][0]["entries"], 2);
    assert_eq!(m["stages"][0]["converted"], 1);
    assert_eq!(m["stages"][0]["time"]["within_target_pct"], 100.0);
    assert_eq!(
        m["score"]["terms"][0]["basis"],
        "1 finished of 2 who started"
    );
    let list = run_json(cxm(dir.path()).args(["journey", "list", "--tenant", tenant, "--json"]));
    assert_eq!(list[0]["journey_id"], "trial");
    let text = cxm(dir.path())
        .args(["journey", "metrics", "trial", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("completion"));
}

#[test]
fn account_health_and_backtest_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    run_json(cxm(dir.path()).args([
        "generate", "--events", "20000", "--seed", "5", "--tenant", tenant,
    ]));
    let list = run_json(cxm(dir.path()).args([
        "accounts", "list", "--tenant", tenant, "--json", "--limit", "1000",
    ]));
    let accounts = list["accounts"].as_array().unwrap();
    assert!(accounts.len() > 50, "{list}");
    let banded: u64 = list["bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["accounts"].as_u64().unwrap())
        .sum();
    assert_eq!(banded as usize, accounts.len());
    assert!(
        accounts
            .windows(2)
            .all(|w| w[0]["score"].as_f64() <= w[1]["score"].as_f64()),
        "lowest first"
    );
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(100)).to_string(),
        (today - chrono::Days::new(10)).to_string(),
    );
    let bt = run_json(cxm(dir.path()).args([
        "signals", "backtest", "--tenant", tenant, "--from", &from, "--to", &to, "--json",
    ]));
    assert!(
        bt["churned_accounts"].as_u64().unwrap() > 0,
        "the generator sends churn notices: {bt}"
    );
    assert_eq!(bt["rows"].as_array().unwrap().len(), 6);
    let text = cxm(dir.path())
        .args([
            "signals", "backtest", "--tenant", tenant, "--from", &from, "--to", &to,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("precision"));

    let file = dir.path().join("signals.yaml");
    let mut set: serde_json::Value =
        run_json(cxm(dir.path()).args(["signals", "show", "--tenant", tenant]));
    set.as_object_mut().unwrap().remove("version");
    set["signals"][2]["threshold"] = json!(0.5);
    std::fs::write(&file, serde_json::to_string(&set).unwrap()).unwrap();
    let bad = cxm(dir.path())
        .args(["signals", "apply", "--tenant", tenant])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("signals[2].threshold"));
    set["signals"][2]["threshold"] = json!(2);
    std::fs::write(&file, serde_json::to_string(&set).unwrap()).unwrap();
    let ok = run_json(
        cxm(dir.path())
            .args(["signals", "apply", "--tenant", tenant])
            .arg(&file),
    );
    assert_eq!(ok["version"], 1);
}

#[test]
fn synthetic_journey_check_runs_against_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let (wk, sk) = (
        t["write_key"].as_str().unwrap(),
        t["secret_key"].as_str().unwrap(),
    );
    let server = serve(dir.path());
    let out = run_json(cxm(dir.path()).args([
        "journey",
        "check",
        "--url",
        &server.1,
        "--write-key",
        wk,
        "--secret-key",
        sk,
    ]));
    assert_eq!(out["passed"], true, "{out}");
    assert_eq!(out["detail"]["found"]["channel_switch"]["from"], "chat");
    assert_eq!(out["detail"]["found"]["channel_switch"]["to"], "voice");
    let runs: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            ::reqwest::Client::new()
                .get(format!("{}/api/v1/journey-checks", server.1))
                .bearer_auth(sk)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
    assert_eq!(
        (
            runs["runs"][0]["name"].as_str(),
            runs["runs"][0]["passed"].as_bool()
        ),
        (Some("chat-then-call"), Some(true)),
        "{runs}"
    );
    // a key that cannot read context: the check cannot run, and says so
    let bad = cxm(dir.path())
        .args([
            "journey",
            "check",
            "--url",
            &server.1,
            "--write-key",
            wk,
            "--secret-key",
            wk,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// Check scripts from files: a directory of them runs in name order, each judged against the
/// real context; a failing one fails the command but not the others; a script with a
/// mistake stops everything before anything is sent.
#[test]
fn journey_check_scripts_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let (wk, sk) = (
        t["write_key"].as_str().unwrap().to_string(),
        t["secret_key"].as_str().unwrap().to_string(),
    );
    let server = serve(dir.path());
    let scripts = dir.path().join("checks");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(
        scripts.join("a-email-then-chat.yaml"),
        "name: email-then-chat\nidentifier: email\nsteps:\n  - {event: Email Received, channel: email, minutes_ago: 30}\n  - {event: Chat Started, channel: chat, properties: {intent: refund}, minutes_ago: 2}\nexpect:\n  timeline: [Email Received, Chat Started]\n",
    )
    .unwrap();
    std::fs::write(
        scripts.join("b-wants-words.json"),
        r#"{"name": "wants-words", "steps": [{"event": "Call Started", "channel": "phone"}], "expect": {"summary_mentions": ["teleportation"]}}"#,
    )
    .unwrap();
    std::fs::write(scripts.join("notes.txt"), "not a script").unwrap();
    let run = |extra: &[&std::path::Path]| {
        let mut c = cxm(dir.path());
        c.args([
            "journey",
            "check",
            "--url",
            &server.1,
            "--write-key",
            &wk,
            "--secret-key",
            &sk,
        ]);
        for p in extra {
            c.arg("--script").arg(p);
        }
        c.output().unwrap()
    };
    let out = run(&[&scripts]);
    assert!(!out.status.success(), "one check fails");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wants-words"));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["name"].as_str(), lines[0]["passed"].as_bool()),
        (Some("email-then-chat"), Some(true)),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["passed"], false);
    assert!(lines[1]["detail"]["failures"][0]
        .as_str()
        .unwrap()
        .contains("teleportation"));

    // a mistake: refused with the file and the field, nothing recorded
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nsteps: [{event: A, channel: pigeon}]\nexpect: {timeline: [A]}\n",
    )
    .unwrap();
    let out = run(&[&bad]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("steps[0].channel"),
        "{err}"
    );
    let runs: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            ::reqwest::Client::new()
                .get(format!("{}/api/v1/journey-checks", server.1))
                .bearer_auth(&sk)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
    let names: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{runs}");
    assert!(names.contains(&"email-then-chat") && names.contains(&"wants-words"));
}

#[test]
fn policies_agents_and_a_tamper_evident_audit_log_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let ok = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // the default matrix is there before anything is applied
    let matrix = ok(cxm(dir.path()).args(["policy", "show", "--tenant", tenant]));
    assert!(
        matrix.contains("refund-50-to-200") && matrix.contains("L2"),
        "{matrix}"
    );
    // a bad file is refused with the problem; a good one becomes version 2
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&bad, "@id(\"x\") permit(principal, action, resource);").unwrap();
    let out = cxm(dir.path())
        .args(["policy", "apply", "--tenant", tenant])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no @level"));
    let good = dir.path().join("good.cedar");
    std::fs::write(
        &good,
        cxm_policy::DEFAULT_POLICIES.replace("< 5000", "< 2500"),
    )
    .unwrap();
    let tested = run_json(
        cxm(dir.path())
            .args(["policy", "test", "--tenant", tenant, "--json"])
            .arg(&good),
    );
    assert_eq!(tested["replayed"], 0);
    let applied = ok(cxm(dir.path())
        .args(["policy", "apply", "--tenant", tenant, "--note", "tighter"])
        .arg(&good));
    assert!(applied.contains("saved version 2 (active)"), "{applied}");
    ok(cxm(dir.path()).args([
        "agent",
        "add",
        "--tenant",
        tenant,
        "billing-bot",
        "--kind",
        "voice",
    ]));
    let key = ok(cxm(dir.path()).args(["agent", "key", "--tenant", tenant, "billing-bot"]));
    assert!(key.trim().starts_with("cxm_ak_"));
    let agents = run_json(cxm(dir.path()).args(["agent", "list", "--tenant", tenant, "--json"]));
    assert_eq!(agents[0]["agent"]["kind"], "voice");

    // policy saved + activated (twice), agent saved, key made: six entries, intact
    let v = run_json(cxm(dir.path()).args(["audit", "verify", "--json"]));
    assert_eq!(v[0]["report"]["ok"], true, "{v}");
    assert_eq!(v[0]["report"]["entries"], 6);

    // an edit behind the store's back is named, and the command fails
    let db = cxm_store::testing::SqlTarget::Sqlite(dir.path().join("cxm.db"));
    cxm_store::testing::execute_sql(
        &db,
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else' WHERE seq = 3;",
    );
    let out = cxm(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("BROKEN at entry 3") && said.contains("altered"),
        "{said}"
    );
    // and so is a deletion
    cxm_store::testing::execute_sql(
        &db,
        "UPDATE audit_log SET actor = 'cli' WHERE seq = 3; DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;",
    );
    let out = cxm(dir.path())
        .args(["audit", "verify", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("entry 2 is missing"), "{said}");
}

#[test]
fn clv_fit_reads_a_summary_and_refuses_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("summary.csv");
    let mut csv = String::from("ID,frequency,recency,T\n");
    for i in 0..300 {
        let x = (i * 7) % 6;
        let t = 39.0;
        let t_x = if x == 0 {
            0.0
        } else {
            t * f64::from((i % 9) + 1) / 10.0
        };
        csv.push_str(&format!("{i},{x},{t_x},{t}\n"));
    }
    std::fs::write(&good, csv).unwrap();
    let fit = run_json(
        cxm(dir.path())
            .args(["clv", "fit", "--json", "--model", "bgnbd", "--input"])
            .arg(&good),
    );
    assert_eq!(fit["customers"], 300);
    for p in ["r", "alpha", "a", "b"] {
        assert!(fit[p].as_f64().unwrap() > 0.0, "{fit}");
    }
    assert!(fit["log_likelihood"].as_f64().unwrap() < 0.0);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "frequency,recency,T\n1,2,1\n").unwrap();
    let out = cxm(dir.path())
        .args(["clv", "fit", "--input"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("recency"));
    std::fs::write(&bad, "frequency,recency\n1,2\n").unwrap();
    let out = cxm(dir.path())
        .args(["clv", "fit", "--input"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no T or t column"));
    let spend = dir.path().join("spend.csv");
    let mut csv = String::from("frequency,monetary_value\n");
    for i in 0..100 {
        csv.push_str(&format!(
            "{},{}\n",
            1 + i % 5,
            10.0 + f64::from((i * 37) % 50)
        ));
    }
    std::fs::write(&spend, csv).unwrap();
    let gg = run_json(
        cxm(dir.path())
            .args(["clv", "fit", "--json", "--model", "gammagamma", "--input"])
            .arg(&spend),
    );
    assert_eq!(gg["repeat_buyers"], 100);
    assert!(
        gg["p"].as_f64().unwrap() > 0.0 && gg["gamma"].as_f64().unwrap() > 0.0,
        "{gg}"
    );
    std::fs::write(&spend, "frequency,monetary_value\n2,-5\n").unwrap();
    let out = cxm(dir.path())
        .args(["clv", "fit", "--model", "gammagamma", "--input"])
        .arg(&spend)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("positive amount"));
    let pareto = run_json(
        cxm(dir.path())
            .args(["clv", "fit", "--json", "--model", "pareto", "--input"])
            .arg(&good),
    );
    for p in ["r", "alpha", "s", "beta"] {
        assert!(pareto[p].as_f64().unwrap() > 0.0, "{pareto}");
    }
    assert!(pareto["log_likelihood"].as_f64().unwrap() < 0.0);
    let out = cxm(dir.path())
        .args(["clv", "fit", "--model", "mbgnbd", "--input"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    // without --json: one line per field
    let out = cxm(dir.path())
        .args(["clv", "fit", "--input"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("alpha ")), "{text}");
}

#[test]
fn stats_ab_and_size_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_json(cxm(dir.path()).args([
        "stats", "ab", "--a", "1000/100", "--b", "1000/120", "--json",
    ]));
    // lift and pooled test as the textbook formulas give them
    assert!((r["relative"]["expected"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    let z = r["z_pooled"]["z"].as_f64().unwrap();
    let p = 220.0 / 2000.0;
    let want = 0.02 / (p * (1.0 - p) * (2.0 / 1000.0f64)).sqrt();
    assert!((z - want).abs() < 1e-12, "{z} {want}");
    assert!(r["bayesian"]["chance_to_win"].as_f64().unwrap() > 0.5);
    assert!(r["srm_p_value"].as_f64().unwrap() > 0.99);
    for bad in [
        ["1000/100", "1000/1200"],
        ["1000", "1000/1"],
        ["x/1", "10/1"],
    ] {
        let out = cxm(dir.path())
            .args(["stats", "ab", "--a", bad[0], "--b", bad[1]])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let size = run_json(cxm(dir.path()).args([
        "stats",
        "size",
        "--baseline",
        "0.1",
        "--mde",
        "0.2",
        "--json",
    ]));
    let n = size["n_per_arm"].as_f64().unwrap();
    // Cohen's h = 2·asin√0.12 − 2·asin√0.10; n ≈ 2((z.975 + z.8)/h)²
    let h = 2.0 * 0.12f64.sqrt().asin() - 2.0 * 0.1f64.sqrt().asin();
    let approx = 2.0 * ((1.959_963_984_540_054 + 0.841_621_233_572_914_3) / h).powi(2);
    assert!((n - approx).abs() < 0.01, "{n} {approx}");
    let out = cxm(dir.path())
        .args(["stats", "size", "--baseline", "1.5", "--mde", "0.2"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("baseline"));
}

#[test]
fn retention_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    run_json(cxm(dir.path()).args([
        "generate", "--events", "2000", "--seed", "3", "--tenant", tenant,
    ]));
    let set = run_json(cxm(dir.path()).args([
        "retention",
        "set",
        "--tenant",
        tenant,
        "--class",
        "events",
        "--days",
        "30",
    ]));
    assert_eq!(set["events"], 30);
    let out = cxm(dir.path())
        .args([
            "retention",
            "set",
            "--tenant",
            tenant,
            "--class",
            "mail",
            "--days",
            "3",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no data class"));
    let purged = run_json(cxm(dir.path()).args(["retention", "purge", "--tenant", tenant]));
    assert!(
        purged["events"].as_u64().unwrap() > 0,
        "the generator spreads events over more than 30 days: {purged}"
    );
    let again = run_json(cxm(dir.path()).args(["retention", "purge", "--tenant", tenant]));
    assert_eq!(again["events"], 0);
    let kept = run_json(cxm(dir.path()).args([
        "retention",
        "set",
        "--tenant",
        tenant,
        "--class",
        "events",
        "--keep",
    ]));
    assert!(kept.get("events").is_none());
    let shown = run_json(cxm(dir.path()).args(["retention", "show", "--tenant", tenant]));
    // quarantine is the one class with a default period
    assert_eq!(shown, json!({"quarantine": 30}));
}

#[test]
fn experiments_and_equity_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let t = run_json(cxm(dir.path()).args(["tenant", "create", "Acme", "--json"]));
    let tenant = t["tenant_id"].as_str().unwrap();
    let def = dir.path().join("exp.json");
    std::fs::write(
        &def,
        r#"{"id": "welcome-mail", "name": "Welcome mail", "owner": "lifecycle", "kind": "journey",
            "arms": [{"key": "control"}, {"key": "mail"}], "metric": {"event": "Activated"}}"#,
    )
    .unwrap();
    let ok = |args: &[&str]| {
        let out = cxm(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let d = def.to_str().unwrap();
    assert!(ok(&["experiment", "create", "--tenant", tenant, d]).contains("created welcome-mail"));
    let out = cxm(dir.path())
        .args(["experiment", "create", "--tenant", tenant, d])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("conflict"));
    assert!(ok(&[
        "experiment",
        "status",
        "--tenant",
        tenant,
        "welcome-mail",
        "running"
    ])
    .contains("running at 100 %"));
    assert!(ok(&[
        "experiment",
        "rollout",
        "--tenant",
        tenant,
        "welcome-mail",
        "20"
    ])
    .contains("rollout 20 %"));
    let out = cxm(dir.path())
        .args([
            "experiment",
            "rollout",
            "--tenant",
            tenant,
            "welcome-mail",
            "101",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 0 and 100"));
    let list = ok(&["experiment", "list", "--tenant", tenant]);
    assert!(
        list.contains("welcome-mail") && list.contains("running"),
        "{list}"
    );
    let r = run_json(cxm(dir.path()).args([
        "experiment",
        "results",
        "--tenant",
        tenant,
        "welcome-mail",
        "--json",
    ]));
    assert_eq!(r["units"], 0);
    assert!(r["warnings"].to_string().contains("no exposures yet"));
    // no purchases: said, not fitted
    let e = ok(&["equity", "show", "--tenant", tenant]);
    assert!(e.contains("no value model yet"), "{e}");
}
