//! The sign-in benchmark: a flood of wrong passwords from as many addresses, and an unknown email's time beside a known one's.

use super::*;

pub(crate) fn rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(crate) async fn sign_in(a: SignInArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    let r = start(store_args).await?;
    // one account per timed attempt: five failures would make an account back off, and
    // its answers would then come without a verification
    let (store, tenant, n) = (r.store.clone(), r.tenant.clone(), a.timed);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for i in 0..n {
            crate::setup::create_user(
                store.as_ref(),
                &tenant,
                &format!("known-{i}@bench.example"),
                "the-right-password",
                cxm_store::Role::Analyst,
            )?;
        }
        Ok(())
    })
    .await??;
    let url = format!("{}/login", r.base);
    let attempt = |client: reqwest::Client, email: String| {
        let (url, origin) = (url.clone(), r.base.clone());
        async move {
            let t = Instant::now();
            let status = client
                .post(&url)
                .header("origin", origin)
                .form(&[("email", email.as_str()), ("password", "a-wrong-password")])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (t.elapsed(), status)
        }
    };
    // an unknown email against a known one, one at a time, alternating; a fresh client
    // address for each so no backoff starts
    let mut known = vec![];
    let mut unknown = vec![];
    for i in 0..a.timed {
        let from = |n: usize| {
            reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([
                    127,
                    1,
                    (n / 250) as u8,
                    (n % 250 + 1) as u8,
                ]))
                .build()
        };
        let (d, _) = attempt(from(2 * i)?, format!("known-{i}@bench.example")).await;
        known.push(d);
        let (d, _) = attempt(from(2 * i + 1)?, format!("nobody-{i}@bench.example")).await;
        unknown.push(d);
    }
    known.sort();
    unknown.sort();
    let before_mb = rss_mb();
    let mut sends = vec![];
    for i in 0..a.parallel {
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([
                127,
                2,
                (i / 250) as u8,
                (i % 250 + 1) as u8,
            ]))
            .build()?;
        sends.push(tokio::spawn(attempt(
            client,
            format!("flood-{i}@bench.example"),
        )));
    }
    let started = Instant::now();
    let mut lat = vec![];
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for s in sends {
        let (d, status) = s.await?;
        lat.push(d);
        *statuses.entry(status).or_default() += 1;
    }
    let flood_secs = started.elapsed().as_secs_f64();
    lat.sort();
    let metrics = reqwest::get(format!("{}/metrics", r.base))
        .await?
        .text()
        .await?;
    let peak_checks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cxm_password_checks_peak "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let backend = r.store.backend();
    r.stop().await?;
    Ok(json!({
        "bench": "sign-in", "backend": backend,
        "known_email_ms": {"p50": percentile(&known, 0.5), "p90": percentile(&known, 0.9)},
        "unknown_email_ms": {"p50": percentile(&unknown, 0.5), "p90": percentile(&unknown, 0.9)},
        "flood": {"parallel": a.parallel, "seconds": flood_secs, "statuses": statuses,
            "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99), "max_ms": percentile(&lat, 1.0),
            "peak_concurrent_checks": peak_checks},
        "rss_mb": {"before_flood": before_mb, "peak": peak_rss_mb()},
        "machine": machine(),
    }))
}
