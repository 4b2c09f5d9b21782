//! The decision benchmark: agents asking in parallel, answered only once logged, then the audit chain verified end to end.

use super::*;

/// One ask of the bench mix: mostly routine, some reviewed, some escalated.
pub(crate) fn bench_ask(i: usize) -> Value {
    let customer = format!("user_id:user-{:06}", (i * 7919) % 10_000);
    match i % 10 {
        0..=4 => {
            json!({"action": "refund", "customer": customer, "resource": format!("order-{i}"), "context": {"amount": (i % 45) as f64 + 1.5, "currency": "USD"}})
        }
        5 | 6 => {
            json!({"action": "refund", "customer": customer, "context": {"amount": 120, "currency": "USD", "reason": "the parcel arrived late"}})
        }
        7 => json!({"action": "password_reset", "customer": customer}),
        8 => {
            json!({"action": "address_update", "customer": customer, "context": {"channel": "chat"}})
        }
        _ => {
            json!({"action": "refund", "customer": customer, "context": {"amount": 900, "currency": "USD", "message": "this is the third time, I want my money back"}})
        }
    }
}

pub(crate) async fn decisions(a: DecisionArgs, store_args: &StoreArgs) -> anyhow::Result<Value> {
    use cxm_policy::{Ask, CustomerFacts, Facts, Policies};
    // 1. the policy decision alone, in process
    let p = Policies::compile(cxm_policy::DEFAULT_POLICIES)?;
    let customer = CustomerFacts::default();
    let mut lat = Vec::with_capacity(100_000);
    for i in 0..100_000usize {
        let facts = Facts {
            amount_cents: Some(((i * 37) % 60_000) as i64),
            legal_threat: i % 50 == 0,
            sentiment: Some(-((i % 100) as i64)),
            ..Facts::default()
        };
        let action = ["refund", "password_reset", "contact_change", "credit"][i % 4];
        let t = Instant::now();
        let v = p.authorize(&Ask {
            agent: "bench-bot",
            agent_kind: "bot",
            action,
            customer: "c",
            customer_facts: &customer,
            facts: &facts,
        })?;
        lat.push(t.elapsed());
        std::hint::black_box(v);
    }
    lat.sort();
    let in_process = json!({"asks": lat.len(), "p50_us": percentile(&lat, 0.5) * 1000.0, "p99_us": percentile(&lat, 0.99) * 1000.0, "max_us": percentile(&lat, 1.0) * 1000.0});

    // signature verification: parse the JWS, check Ed25519, compare the text's hash
    let (secret, public) = cxm_provenance::generate_key();
    let signed: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            let text =
                format!("I'm an automated assistant. Your refund of {i}.00 USD is on its way.");
            let st = cxm_provenance::Statement {
                iss: "ten_bench".into(),
                org: "Bench".into(),
                jti: format!("msg_{i}"),
                sender: "bench-bot".into(),
                sender_kind: "agent".into(),
                sub: Some(format!("user_id:user-{i:06}")),
                channel: Some("email".into()),
                iat: 1_790_000_000 + i,
                sha256: cxm_provenance::sha256_hex(&text),
                disclosure: Some("I'm an automated assistant.".into()),
            };
            cxm_provenance::sign(&secret, "k_bench", &st).map(|jws| (jws, text))
        })
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let mut valid = 0usize;
    let rounds = 5;
    for _ in 0..rounds {
        for (jws, text) in &signed {
            let ok = cxm_provenance::parse(jws)?.check(&public, Some(text))?
                == cxm_provenance::Check::Valid;
            valid += usize::from(ok);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        valid == signed.len() * rounds,
        "a genuine signature failed to verify"
    );
    let signatures = json!({"verified": valid, "per_second_one_core": valid as f64 / secs});

    // 2. over HTTP, against a store with customers in it
    let r = start(store_args).await?;
    let (store, tenant, events) = (r.store.clone(), r.tenant.clone(), a.events);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        crate::load::load(
            store.as_ref(),
            &tenant,
            "bench",
            Generator::new(11, chrono::Utc::now()).events(events),
            true,
        )?;
        cxm_app::agents::register(
            store.as_ref(),
            &tenant,
            "bench",
            &cxm_app::agents::NewAgent {
                name: "bench-bot".into(),
                kind: None,
                description: String::new(),
                disclosure: None,
                disabled: false,
            },
        )
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        Ok(())
    })
    .await??;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/decisions", r.base);
    let per = a.requests.div_ceil(a.concurrency.max(1));
    let started = Instant::now();
    let mut workers = vec![];
    for w in 0..a.concurrency.max(1) {
        let (client, url, key) = (client.clone(), url.clone(), r.secret_key.clone());
        workers.push(tokio::spawn(async move {
            let mut out = vec![];
            let mut failed = 0usize;
            for j in 0..per {
                let mut body = bench_ask(w * per + j);
                body["agent"] = json!("bench-bot");
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                out.push(t.elapsed());
                failed += usize::from(!ok);
            }
            (out, failed)
        }));
    }
    let mut lat = vec![];
    let mut failed = 0;
    for w in workers {
        let (l, f) = w.await?;
        lat.extend(l);
        failed += f;
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let http = json!({"requests": lat.len(), "failed": failed, "concurrency": a.concurrency, "decisions_per_second": lat.len() as f64 / secs,
        "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99)});

    // 3. the audit chain: topped up with logged decisions, then verified end to end
    let (store, tenant, target) = (r.store.clone(), r.tenant.clone(), a.audit_entries);
    let audit = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        let have = store.audit_entries(&tenant, 0, u32::MAX)?.len();
        let mut n = have;
        while n < target {
            let batch: Vec<cxm_store::NewDecision> = (n..target.min(n + 5_000))
                .map(|i| cxm_store::NewDecision {
                    tenant_id: tenant.clone(),
                    actor: "agent:bench-bot".into(),
                    record: cxm_domain::decision::DecisionRecord {
                        id: format!("dec_bench_{i}"), agent: "bench-bot".into(), action: "refund".into(),
                        customer: format!("user_id:user-{:06}", i % 10_000), resource: None,
                        request: json!({"amount": 20}), facts: json!({"amount_cents": 2000}), used: json!({"profile": null}),
                        policy_version: 1, outcome: "allow".into(), level: "L1".into(),
                        policy_ids: vec!["refund-under-50".into()], reasons: vec!["refunds under 50 are within an agent's own authority".into()],
                        at_ms: chrono::Utc::now().timestamp_millis(),
                    },
                    review_due_at_ms: None,
                })
                .collect();
            n += batch.len();
            store.record_decisions(&batch)?;
        }
        let report = cxm_app::audit::verify_chain(store.as_ref(), &tenant).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        Ok(json!({"entries": report.entries, "decisions": report.decisions, "ok": report.ok, "verify_seconds": report.millis as f64 / 1000.0}))
    })
    .await??;
    let backend = r.store.backend();
    r.stop().await?;
    Ok(
        json!({"bench": "decisions", "backend": backend, "policy_in_process": in_process, "signature_verification": signatures, "http": http, "audit_verify": audit,
        "peak_rss_mb": peak_rss_mb(), "machine": machine()}),
    )
}
