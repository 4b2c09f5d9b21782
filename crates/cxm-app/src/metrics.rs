//! The counters the use cases keep (ingest outcomes, decisions, sign-ins, ingest latency) and
//! their Prometheus text. Plain atomics: a dozen numbers do not need a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

pub const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

#[derive(Default)]
pub struct Metrics {
    pub ingest_requests_ok: AtomicU64,
    pub ingest_requests_rejected: AtomicU64,
    pub events_accepted: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub events_quarantined: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Decisions answered (and logged) for agents.
    pub decisions: AtomicU64,
    /// Sign-ins refused for a wrong email or password.
    pub logins_failed: AtomicU64,
    /// Sign-ins refused while backing off, or with every verification slot busy.
    pub logins_throttled: AtomicU64,
    /// Password verifications running now, and the most that ever ran at once.
    pub password_checks: AtomicU64,
    pub password_checks_peak: AtomicU64,
    pub latency_buckets: [AtomicU64; BUCKETS_MS.len()],
    pub latency_count: AtomicU64,
    pub latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe_ingest(&self, elapsed: std::time::Duration) {
        let ms = elapsed.as_millis() as u64;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let _ = writeln!(s, "# HELP cxm_ingest_requests_total ingest http requests by outcome\n# TYPE cxm_ingest_requests_total counter");
        let _ = writeln!(
            s,
            "cxm_ingest_requests_total{{outcome=\"ok\"}} {}",
            g(&self.ingest_requests_ok)
        );
        let _ = writeln!(
            s,
            "cxm_ingest_requests_total{{outcome=\"rejected\"}} {}",
            g(&self.ingest_requests_rejected)
        );
        let _ = writeln!(
            s,
            "cxm_ingest_requests_total{{outcome=\"rate_limited\"}} {}",
            g(&self.rate_limited)
        );
        let _ = writeln!(s, "# HELP cxm_decisions_total agent decisions answered and logged\n# TYPE cxm_decisions_total counter\ncxm_decisions_total {}", g(&self.decisions));
        let _ = writeln!(s, "# HELP cxm_sign_ins_refused_total dashboard sign-ins refused, by why\n# TYPE cxm_sign_ins_refused_total counter");
        let _ = writeln!(
            s,
            "cxm_sign_ins_refused_total{{reason=\"wrong_credentials\"}} {}",
            g(&self.logins_failed)
        );
        let _ = writeln!(
            s,
            "cxm_sign_ins_refused_total{{reason=\"throttled\"}} {}",
            g(&self.logins_throttled)
        );
        let _ = writeln!(s, "# HELP cxm_password_checks_peak most password verifications that ran at once\n# TYPE cxm_password_checks_peak gauge\ncxm_password_checks_peak {}", g(&self.password_checks_peak));
        let _ = writeln!(s, "# HELP cxm_ingest_events_total events by what ingest did with them\n# TYPE cxm_ingest_events_total counter");
        let _ = writeln!(
            s,
            "cxm_ingest_events_total{{outcome=\"accepted\"}} {}",
            g(&self.events_accepted)
        );
        let _ = writeln!(
            s,
            "cxm_ingest_events_total{{outcome=\"duplicate\"}} {}",
            g(&self.events_duplicate)
        );
        let _ = writeln!(
            s,
            "cxm_ingest_events_total{{outcome=\"quarantined\"}} {}",
            g(&self.events_quarantined)
        );
        let _ = writeln!(s, "# HELP cxm_ingest_request_duration_seconds time from request to durable acknowledgement\n# TYPE cxm_ingest_request_duration_seconds histogram");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                s,
                "cxm_ingest_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1000.0,
                g(&self.latency_buckets[i])
            );
        }
        let _ = writeln!(
            s,
            "cxm_ingest_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            g(&self.latency_count)
        );
        let _ = writeln!(
            s,
            "cxm_ingest_request_duration_seconds_sum {}",
            g(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "cxm_ingest_request_duration_seconds_count {}",
            g(&self.latency_count)
        );
        s
    }
}

/// The ingest writer's figures: commits, what they carried, and the time it was busy.
pub fn render_writer(s: &cxm_store::committer::WriterStats, out: &mut String) {
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let _ = writeln!(out, "# HELP cxm_ingest_commits_total group commits of the ingest writer\n# TYPE cxm_ingest_commits_total counter\ncxm_ingest_commits_total {}", g(&s.commits));
    let _ = writeln!(out, "# HELP cxm_ingest_commit_requests_total ingest requests the group commits carried\n# TYPE cxm_ingest_commit_requests_total counter\ncxm_ingest_commit_requests_total {}", g(&s.requests));
    let _ = writeln!(out, "# HELP cxm_ingest_commit_events_total events the group commits carried, duplicates included\n# TYPE cxm_ingest_commit_events_total counter\ncxm_ingest_commit_events_total {}", g(&s.events));
    let _ = writeln!(out, "# HELP cxm_ingest_writer_busy_seconds_total time the ingest writer spent in its transactions (the fsync runs beside it); a rate near 1 means it is the limit\n# TYPE cxm_ingest_writer_busy_seconds_total counter\ncxm_ingest_writer_busy_seconds_total {:.6}", g(&s.busy_us) as f64 / 1e6);
}
