//! Checking a password without becoming an oracle or a lever: repeated failures for one
//! account or from one client back off (429 with `Retry-After`, and the right password does
//! not help while it lasts), an unknown email costs the same argon2 work as a known one, and
//! at most about one verification per core runs at once, so a flood of sign-ins queues
//! briefly and is then told to retry instead of taking a gigabyte of memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cxm_store::User;

use crate::logsafe::Field;
use crate::App;

/// Failures allowed before an account backs off.
pub const ACCOUNT_FREE_FAILURES: u32 = 5;
/// Failures allowed from one client address (across accounts) before it backs off.
pub const CLIENT_FREE_FAILURES: u32 = 20;
/// The longest a backoff lasts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a sign-in waits for a verification slot before being told to retry.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum Refused {
    /// Wrong email or password (the same answer for both).
    Wrong,
    /// Backing off; retry after this long.
    Throttled(Duration),
    /// Every verification slot is busy.
    Busy,
    Store(cxm_store::StoreError),
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    until: Option<Instant>,
}

/// Failures per account (normalised email) and per client address.
#[derive(Default)]
pub struct Throttle {
    accounts: Mutex<HashMap<String, Failures>>,
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

/// 1 s after the free failures are spent, doubling with each further failure, capped.
fn backoff(count: u32, free: u32) -> Option<Duration> {
    (count >= free).then(|| {
        let steps = (count - free).min(20);
        Duration::from_secs(1u64 << steps).min(MAX_BACKOFF)
    })
}

fn wait_of<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Failures>>,
    k: &K,
    now: Instant,
) -> Option<Duration> {
    let m = map.lock().unwrap_or_else(|p| p.into_inner());
    m.get(k)
        .and_then(|f| f.until)
        .and_then(|u| u.checked_duration_since(now))
        .filter(|d| !d.is_zero())
}

fn fail<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Failures>>, k: K, free: u32, now: Instant) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() > 100_000 {
        // a spray of addresses or emails cannot grow this without bound
        m.retain(|_, f| now.duration_since(f.last) < WINDOW);
    }
    let f = m.entry(k).or_insert(Failures {
        count: 0,
        last: now,
        until: None,
    });
    if now.duration_since(f.last) >= WINDOW {
        f.count = 0;
    }
    f.count += 1;
    f.last = now;
    f.until = backoff(f.count, free).map(|d| now + d);
}

impl Throttle {
    /// How long this account or client must wait, if at all.
    pub fn wait(&self, email: &str, client: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let a = wait_of(&self.accounts, &email.to_string(), now);
        let c = client.and_then(|ip| wait_of(&self.clients, &ip, now));
        a.max(c)
    }

    pub fn failed(&self, email: &str, client: Option<IpAddr>) {
        let now = Instant::now();
        fail(
            &self.accounts,
            email.to_string(),
            ACCOUNT_FREE_FAILURES,
            now,
        );
        if let Some(ip) = client {
            fail(&self.clients, ip, CLIENT_FREE_FAILURES, now);
        }
    }

    /// A correct password clears the account's failures (not the client's: one valid
    /// account must not reset a guesser's address).
    pub fn succeeded(&self, email: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(email);
    }
}

/// A hash of a password nobody has, verified when the email is unknown so that the answer
/// takes as long as for a known email.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        crate::auth::hash_password("cxm: no such user; this hash only costs time")
            .unwrap_or_default()
    })
}

/// Verification slots: about one per core.
pub fn slots() -> tokio::sync::Semaphore {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.max(1))
}

/// Checks an email and password; `client` is the caller's address when known.
pub async fn attempt(
    st: &App,
    email: &str,
    password: String,
    client: Option<IpAddr>,
) -> Result<User, Refused> {
    if let Some(wait) = st.sign_ins.wait(email, client) {
        st.metrics.logins_throttled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(email = %Field(email), wait_secs = wait.as_secs(), "sign-in refused while backing off");
        return Err(Refused::Throttled(wait));
    }
    let permit = match tokio::time::timeout(QUEUE_WAIT, st.sign_in_slots.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            st.metrics.logins_throttled.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Busy);
        }
    };
    let e2 = email.to_string();
    let user = st
        .store
        .run(move |s| s.user_by_email(&e2))
        .await
        .map_err(Refused::Store)?;
    // verify on the blocking pool (argon2 is deliberately slow), against a dummy hash when
    // there is no such user, so both take the same time
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let running = st.metrics.password_checks.fetch_add(1, Ordering::SeqCst) + 1;
    st.metrics
        .password_checks_peak
        .fetch_max(running, Ordering::SeqCst);
    let ok = tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    st.metrics.password_checks.fetch_sub(1, Ordering::SeqCst);
    drop(permit);
    match user {
        Some(u) if ok && u.disabled_at_ms.is_none() => {
            st.sign_ins.succeeded(email);
            Ok(u)
        }
        _ => {
            st.sign_ins.failed(email, client);
            st.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(email = %Field(email), client = ?client, "failed sign-in");
            Err(Refused::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_per_account_and_client() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..ACCOUNT_FREE_FAILURES - 1 {
            t.failed("ana@acme.io", Some(ip));
            assert!(t.wait("ana@acme.io", Some(ip)).is_none());
        }
        t.failed("ana@acme.io", Some(ip));
        let w = t.wait("ana@acme.io", Some(ip)).unwrap();
        assert!(w <= Duration::from_secs(1) && !w.is_zero());
        t.failed("ana@acme.io", Some(ip));
        assert!(t.wait("ana@acme.io", None).unwrap() > Duration::from_secs(1));
        assert!(
            t.wait("bo@acme.io", Some(ip)).is_none(),
            "another account from the same client"
        );
        // the client backs off after spraying many accounts
        for i in 0..CLIENT_FREE_FAILURES {
            t.failed(&format!("u{i}@acme.io"), Some(ip));
        }
        assert!(t.wait("new@acme.io", Some(ip)).is_some());
        assert!(t
            .wait("new@acme.io", Some("192.0.2.8".parse().unwrap()))
            .is_none());
        t.succeeded("ana@acme.io");
        assert!(t.wait("ana@acme.io", None).is_none());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(4, 5), None);
        assert_eq!(backoff(5, 5), Some(Duration::from_secs(1)));
        assert_eq!(backoff(8, 5), Some(Duration::from_secs(8)));
        assert_eq!(backoff(60, 5), Some(MAX_BACKOFF));
    }
}
