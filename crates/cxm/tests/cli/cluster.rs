//! Two `cxm serve` nodes on one PostgreSQL share the partitions; a third process with a node
//! id already running is refused; `cxm cluster status` shows who owns what; a node that
//! stops cleanly hands its partitions over at once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cxm_store::testing::{pg_admin_url, TestDb};
use serde_json::Value;

use super::{free_port, reqwest::blocking_get_ok, Server};

fn node(url: &str, id: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cxm"));
    c.args(["--database-url", url])
        .env_remove("CXM_DATA_DIR")
        .env_remove("CXM_CONFIG")
        .env("CXM_LOG", "warn");
    if !id.is_empty() {
        c.args(["serve", "--node-id", id, "--partitions", "8"]);
    }
    c
}

fn start(url: &str, id: &str) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = node(url, id)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child, base);
    for _ in 0..200 {
        if blocking_get_ok(&format!("{}/readyz", server.1)) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("node {id} did not start");
}

fn status(url: &str) -> Value {
    let out = node(url, "")
        .args(["cluster", "status", "--partitions", "8", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn owners(s: &Value) -> Vec<String> {
    s["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["expired"] == false)
        .map(|l| l["owner"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nodes_share_partitions_and_refuse_a_twin() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let db = TestDb::create(&admin);
    let mut first = start(&db.url, "node-1");
    let second = start(&db.url, "node-2");
    // node-1 took everything while alone; the next rounds (every 5 s) even it out
    let started = Instant::now();
    loop {
        let s = status(&db.url);
        let o = owners(&s);
        let ones = o.iter().filter(|x| *x == "node-1").count();
        if s["nodes"].as_array().unwrap().len() == 2 && o.len() == 8 && ones == 4 {
            assert!(s["unowned"].as_array().unwrap().is_empty());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "not balanced: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // the node says what it holds on /readyz and /metrics, and owners read the cluster
    let out = node(&db.url, "")
        .args(["tenant", "create", "Acme", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = super::reqwest::Client::new();
        let ready: Value = http
            .get(format!("{}/readyz", second.1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["cluster"]["node"], "node-2", "{ready}");
        assert_eq!(
            ready["cluster"]["held"].as_array().unwrap().len(),
            4,
            "{ready}"
        );
        let metrics = http
            .get(format!("{}/metrics", second.1))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("cxm_cluster_partitions_held 4"),
            "{metrics}"
        );
        let view: Value = http
            .get(format!("{}/api/v1/cluster", second.1))
            .bearer_auth(t["secret_key"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["this_node"]["node"], "node-2", "{view}");
        assert_eq!(view["nodes"].as_array().unwrap().len(), 2, "{view}");
        assert_eq!(view["leases"].as_array().unwrap().len(), 8);
    });
    // the same node id again, while node-1 is alive: refused before it serves anything
    let twin = node(&db.url, "node-1")
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!twin.status.success());
    assert!(
        String::from_utf8_lossy(&twin.stderr).contains("in use by another running process"),
        "{}",
        String::from_utf8_lossy(&twin.stderr)
    );
    // SQLite has no cluster: said plainly
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cxm"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--node-id",
            "x",
        ])
        .env_remove("CXM_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --database-url"));
    // a clean stop (SIGTERM) leaves at once: node-2 owns every partition on its next round
    let pid = first.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    first.0.wait().unwrap();
    let started = Instant::now();
    loop {
        let o = owners(&status(&db.url));
        if o.len() == 8 && o.iter().all(|x| x == "node-2") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no handover: {o:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(second);
}

/// A NATS server of the test's own (JetStream on, its own port and directory), killed on drop.
struct Nats(std::process::Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server() -> Option<&'static str> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

fn start_nats(bin: &str, port: u16, dir: &std::path::Path) -> Nats {
    let nats = Nats(
        Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nats;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nats-server did not start");
}

fn nats_node(url: &str, nats: &str, partitions: &str, port: u16) -> Command {
    let mut c = node(url, "");
    c.args([
        "serve",
        "--node-id",
        "n-1",
        "--partitions",
        partitions,
        "--nats-url",
        nats,
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    c
}

/// Ingest through a real NATS JetStream server: the answer comes once the stream has the
/// events, the partition's owner applies them once (a resent batch is not stored twice); with
/// NATS gone the node says so on /readyz and answers ingest 503 with Retry-After, and it
/// recovers by itself when NATS is back. NATS unreachable at start, and a stream made for
/// another partition count, stop the node with a sentence that says why.
#[test]
fn ingest_goes_through_nats_and_survives_losing_it() {
    let Some(admin) = pg_admin_url() else {
        eprintln!("skipping postgres: set CXM_TEST_DATABASE_URL");
        return;
    };
    let Some(bin) = nats_server() else {
        eprintln!("skipping nats: no nats-server");
        return;
    };
    let db = TestDb::create(&admin);
    let nats_dir = tempfile::tempdir().unwrap();
    let nats_port = free_port();
    let nats_url = format!("nats://127.0.0.1:{nats_port}");

    // nothing listens there yet
    let out = nats_node(&db.url, &nats_url, "8", free_port())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach NATS at"), "{err}");

    let mut nats = start_nats(bin, nats_port, nats_dir.path());
    let t: Value = serde_json::from_slice(
        &node(&db.url, "")
            .args(["tenant", "create", "Acme", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wk = t["write_key"].as_str().unwrap().to_string();
    let sk = t["secret_key"].as_str().unwrap().to_string();
    let port = free_port();
    let server = Server(
        nats_node(&db.url, &nats_url, "8", port)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        format!("http://127.0.0.1:{port}"),
    );
    let ready = Instant::now();
    while !blocking_get_ok(&format!("{}/readyz", server.1)) {
        assert!(ready.elapsed() < Duration::from_secs(20), "node not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let batch = |ids: std::ops::Range<u32>| {
        let msgs: Vec<Value> = ids
            .map(|i| serde_json::json!({"type": "track", "event": "Signed In", "userId": format!("u{}", i % 7), "messageId": format!("m{i}")}))
            .collect();
        serde_json::json!({"batch": msgs})
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = super::reqwest::Client::new();
    let post = |body: Value| {
        let r = rt.block_on(
            http.post(format!("{}/v1/batch", server.1))
                .basic_auth(&wk, Some(""))
                .json(&body)
                .send(),
        );
        r.unwrap()
    };
    // what the store holds, as the owner applied it
    let stored = || -> i64 {
        let o: Value = rt
            .block_on(async {
                http.get(format!("{}/api/v1/overview", server.1))
                    .bearer_auth(&sk)
                    .send()
                    .await?
                    .json()
                    .await
            })
            .unwrap();
        o["total_events"].as_i64().unwrap()
    };
    let wait_stored = |n: i64| {
        let started = Instant::now();
        loop {
            let s = stored();
            if s == n {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{s} of {n} stored"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(post(batch(0..50)).status(), 200);
    wait_stored(50);
    // the same batch again, and one that overlaps it: the new ids only
    assert_eq!(post(batch(0..50)).status(), 200);
    assert_eq!(post(batch(40..60)).status(), 200);
    wait_stored(60);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stored(), 60, "a resend is not stored twice");
    let ready: Value = rt
        .block_on(async {
            http.get(format!("{}/readyz", server.1))
                .send()
                .await?
                .json()
                .await
        })
        .unwrap();
    assert_eq!(ready["ingest_log"]["connected"], true, "{ready}");
    assert_eq!(ready["ingest_log"]["published"], 120, "{ready}");

    // NATS gone: not ready, and ingest says come back
    drop(nats);
    let gone = Instant::now();
    while blocking_get_ok(&format!("{}/readyz", server.1)) {
        assert!(gone.elapsed() < Duration::from_secs(10), "still ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = post(batch(60..70));
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let problem: Value = rt.block_on(r.json()).unwrap();
    assert_eq!(problem["code"], "log_unavailable", "{problem}");

    // back by itself once NATS is
    nats = start_nats(bin, nats_port, nats_dir.path());
    let back = Instant::now();
    while !blocking_get_ok(&format!("{}/readyz", server.1)) {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "did not reconnect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(post(batch(60..70)).status(), 200);
    wait_stored(70);
    drop(server);

    // streams made for 8 partitions do not fit 4: said before anything is served
    let out = nats_node(&db.url, &nats_url, "4", free_port())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was made with other settings"), "{err}");
    drop(nats);
}
