//! Value from the command line: CLV fits, A/B statistics, experiments and equity.

use super::*;

#[test]
pub(crate) fn clv_fit_reads_a_summary_and_refuses_bad_rows() {
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
pub(crate) fn stats_ab_and_size_from_the_cli() {
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
pub(crate) fn experiments_and_equity_from_the_cli() {
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
