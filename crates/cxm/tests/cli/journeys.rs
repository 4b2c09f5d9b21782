//! Journeys from the command line: definitions from YAML, metrics, and synthetic checks against a live server.

use super::*;

#[test]
pub(crate) fn journeys_apply_from_yaml_and_report_metrics() {
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
pub(crate) fn synthetic_journey_check_runs_against_a_live_server() {
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
pub(crate) fn journey_check_scripts_from_files() {
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
