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
