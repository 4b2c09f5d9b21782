//! What one request keeps of the events it could not accept. Every rejected event is counted
//! by reason, but only a sample is kept whole: a batch of two million junk elements must not
//! become two million rows. The sample is bounded by count and by the request's own size, and
//! when events were left out one summary row says how many and why.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::QuarantineReason;

/// Samples kept whole per request.
pub const MAX_SAMPLES: usize = 100;
/// What a kept sample is charged beyond its own bytes: the row and its index entry.
pub const ROW_OVERHEAD: usize = 128;
/// The smallest sample budget a request gets, whatever its size.
pub const MIN_BUDGET_BYTES: usize = 16 * 1024;
/// The code of the summary row.
pub const SUMMARY_CODE: &str = "quarantine_summary";

#[derive(Debug, Clone)]
pub struct Quarantine {
    /// Kept whole, in arrival order.
    pub samples: Vec<(Value, QuarantineReason)>,
    /// Every rejected event of the request, by reason code.
    pub by_reason: BTreeMap<&'static str, u64>,
    /// Every rejected event of the request.
    pub events: u64,
    max_samples: usize,
    budget_bytes: usize,
    used_bytes: usize,
}

/// Keeps everything: what trusted callers with nothing to refuse start from.
impl Default for Quarantine {
    fn default() -> Self {
        Quarantine::unbounded()
    }
}

impl Quarantine {
    /// Keeps at most `max_samples`, and samples whose bytes (plus [`ROW_OVERHEAD`] each) fit
    /// in `budget_bytes`; callers pass the request's decompressed size, so what quarantine
    /// stores never outgrows what was sent.
    pub fn new(max_samples: usize, budget_bytes: usize) -> Quarantine {
        Quarantine {
            samples: vec![],
            by_reason: BTreeMap::new(),
            events: 0,
            max_samples,
            budget_bytes,
            used_bytes: 0,
        }
    }

    /// Keeps everything (trusted bulk loads, tests).
    pub fn unbounded() -> Quarantine {
        Quarantine::new(usize::MAX, usize::MAX)
    }

    /// Counts a rejected event and keeps it if the sample has room. `bytes` is its size as
    /// received.
    pub fn push(&mut self, payload: Value, bytes: usize, reason: QuarantineReason) {
        self.events += 1;
        *self.by_reason.entry(reason.code).or_default() += 1;
        let cost = bytes.saturating_add(ROW_OVERHEAD);
        if self.samples.len() < self.max_samples
            && self.used_bytes.saturating_add(cost) <= self.budget_bytes
        {
            self.used_bytes += cost;
            self.samples.push((payload, reason));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Rejected events that are not among the samples.
    pub fn left_out(&self) -> u64 {
        self.events - self.samples.len() as u64
    }

    /// One row that stands for the events left out, or None when every one was kept.
    pub fn summary(&self) -> Option<(Value, QuarantineReason)> {
        let left_out = self.left_out();
        if left_out == 0 {
            return None;
        }
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        Some((
            json!({
                "summary": true,
                "quarantined": self.events,
                "kept": self.samples.len(),
                "left_out": left_out,
                "by_reason": self.by_reason,
            }),
            QuarantineReason {
                code: SUMMARY_CODE,
                detail: format!(
                    "{left_out} of this request's {} quarantined events were counted but not kept (by reason: {})",
                    self.events,
                    reasons.join(", ")
                ),
            },
        ))
    }

    /// The samples, then the summary if there is one: the rows to store.
    pub fn rows(&self) -> impl Iterator<Item = (Value, QuarantineReason)> + '_ {
        self.samples.iter().cloned().chain(self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(code: &'static str) -> QuarantineReason {
        QuarantineReason {
            code,
            detail: String::new(),
        }
    }

    #[test]
    fn keeps_a_sample_and_counts_the_rest() {
        let mut q = Quarantine::new(MAX_SAMPLES, 1_000_000);
        for i in 0..2_000u64 {
            q.push(json!(i), 2, reason(if i % 2 == 0 { "a" } else { "b" }));
        }
        assert_eq!(q.samples.len(), MAX_SAMPLES);
        assert_eq!(q.events, 2_000);
        let (payload, r) = q.summary().unwrap();
        assert_eq!(r.code, SUMMARY_CODE);
        assert_eq!(payload["left_out"], 1_900);
        assert_eq!(payload["by_reason"]["a"], 1_000);
        assert!(r.detail.contains("a 1000, b 1000"), "{}", r.detail);
        assert_eq!(q.rows().count(), MAX_SAMPLES + 1);
    }

    #[test]
    fn nothing_left_out_means_no_summary() {
        let mut q = Quarantine::new(MAX_SAMPLES, 10_000);
        q.push(json!(0), 1, reason("a"));
        assert!(q.summary().is_none());
        assert_eq!(q.rows().count(), 1);
    }

    proptest! {
        #[test]
        fn kept_bytes_stay_within_the_budget(sizes in proptest::collection::vec(0usize..5_000, 0..300), budget in 0usize..50_000) {
            let mut q = Quarantine::new(MAX_SAMPLES, budget);
            for s in &sizes {
                q.push(json!(s), *s, reason("x"));
            }
            let kept: usize = q.samples.iter().map(|(v, _)| v.as_u64().unwrap() as usize + ROW_OVERHEAD).sum();
            prop_assert!(q.samples.len() <= MAX_SAMPLES);
            prop_assert!(kept <= budget);
            prop_assert_eq!(q.events as usize, sizes.len());
            prop_assert_eq!(q.summary().is_some(), q.samples.len() < sizes.len());
        }
    }
}
