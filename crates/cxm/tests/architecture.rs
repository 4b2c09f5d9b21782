//! The architecture invariants that can be read off the source (ARCHITECTURE.md states
//! them): a change that breaks one fails here, with the file and line that broke it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every line of the crate's `src` that contains one of `needles`, outside comments.
fn lines_with(krate: &str, needles: &[&str]) -> Vec<String> {
    let mut files = vec![];
    rust_files(&root().join("crates").join(krate).join("src"), &mut files);
    let mut hits = vec![];
    for f in files {
        for (i, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| code.contains(n)) {
                let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
                hits.push(format!("{rel}:{}: {}", i + 1, code));
            }
        }
    }
    hits
}

fn dependencies(krate: &str) -> String {
    let toml =
        std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    // the [dependencies] table only: dev-dependencies may use anything
    toml.split("[dependencies]")
        .nth(1)
        .unwrap_or("")
        .split("\n[")
        .next()
        .unwrap_or("")
        .to_string()
}

fn depends_on(krate: &str, dep: &str) -> bool {
    dependencies(krate).lines().any(|l| {
        l.trim_start().starts_with(&format!("{dep}."))
            || l.trim_start().starts_with(&format!("{dep} "))
    })
}

#[test]
fn only_the_store_has_sql() {
    for k in [
        "cxm-domain",
        "cxm-analytics",
        "cxm-policy",
        "cxm-provenance",
        "cxm-app",
        "cxm-http",
        "cxm",
    ] {
        for dep in ["rusqlite", "postgres"] {
            assert!(
                !depends_on(k, dep),
                "{k} depends on {dep}: SQL belongs in cxm-store"
            );
        }
    }
    for k in ["cxm-app", "cxm-http"] {
        let hits = lines_with(
            k,
            &["\"SELECT ", "\"INSERT INTO", "\"UPDATE ", "\"DELETE FROM"],
        );
        assert!(
            hits.is_empty(),
            "SQL outside cxm-store:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn the_core_does_no_io() {
    for k in ["cxm-domain", "cxm-analytics", "cxm-policy"] {
        for dep in ["tokio", "reqwest", "axum", "cxm-store"] {
            assert!(
                !depends_on(k, dep),
                "{k} depends on {dep}: the core does no I/O"
            );
        }
        let hits = lines_with(k, &["std::fs::", "std::net::", "std::process::"]);
        assert!(
            hits.is_empty(),
            "I/O in the pure core:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn the_application_knows_no_http_server() {
    for dep in [
        "axum",
        "hyper",
        "hyper-util",
        "tower-service",
        "minijinja",
        "cxm-http",
    ] {
        assert!(!depends_on("cxm-app", dep), "cxm-app depends on {dep}");
    }
}

#[test]
fn only_the_supervisor_starts_long_running_tasks() {
    let hits: Vec<_> = lines_with("cxm-app", &["tokio::spawn(", "std::thread::spawn("])
        .into_iter()
        .filter(|h| !h.starts_with("crates/cxm-app/src/supervisor.rs:"))
        .collect();
    assert!(
        hits.is_empty(),
        "tasks started outside the supervisor:\n{}",
        hits.join("\n")
    );
    // the HTTP crate starts one task per connection and nothing else
    let hits: Vec<_> = lines_with(
        "cxm-http",
        &["tokio::spawn(", "spawn_blocking(", "thread::spawn("],
    )
    .into_iter()
    .filter(|h| !h.starts_with("crates/cxm-http/src/listener.rs:"))
    .collect();
    assert!(
        hits.is_empty(),
        "cxm-http starts tasks:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_cli_uses_the_http_crate_only_to_start_the_server() {
    let hits: Vec<_> = lines_with("cxm", &["cxm_http::"])
        .into_iter()
        .filter(|h| {
            !(h.starts_with("crates/cxm/src/server.rs:")
                || h.starts_with("crates/cxm/src/config.rs:"))
        })
        .collect();
    assert!(
        hits.is_empty(),
        "the CLI reaches into cxm-http:\n{}",
        hits.join("\n")
    );
}

#[test]
fn no_source_file_passes_a_thousand_lines() {
    let mut files = vec![];
    rust_files(&root().join("crates"), &mut files);
    let long: Vec<_> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > 1000).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by what their parts are about:\n{}",
        long.join("\n")
    );
}
