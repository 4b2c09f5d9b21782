//! A reproducible synthetic cx dataset: accounts with ARR and renewal dates, customers with
//! several identifiers (shared devices and junk ids included), journeys from signup through
//! activation, use and support to renewal or churn, with channel switches. The same seed
//! always gives the same events.
//!
//! Churn is an account's fate, drawn once per account ([`account_fate`]): about one account
//! in five churns on a day in the last ten weeks. In the seven weeks before it, its people
//! use the product less, open more tickets, miss payments and answer surveys as
//! detractors, and for the last three they go quiet, so the default health signals have a
//! real pattern to find (and the backtest a lift to show). Healthy accounts keep using the
//! product to the end.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

pub struct Generator {
    rng: StdRng,
    end: DateTime<Utc>,
    customer: u64,
    accounts: u64,
    seed: u64,
    /// The current account's churn day, when it churns.
    fate: Option<DateTime<Utc>>,
}

/// Whether account `n` (1-based) churns, and when: its own random stream, so the events and
/// the survey answers agree without sharing state.
pub fn account_fate(seed: u64, account: u64, end: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut rng = StdRng::seed_from_u64(seed ^ account.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.gen_bool(0.22)
        .then(|| end - Duration::days(3) - Duration::minutes(rng.gen_range(0..60 * 24 * 67)))
}

/// How long before its churn day an account shows the pattern.
const PRE_CHURN_DAYS: i64 = 50;
/// How long before its churn day an account stops using the product altogether.
const DARK_DAYS: i64 = 21;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Backus",
    "Johnson",
    "Knuth",
];
const PLANS: &[(&str, f64)] = &[
    ("starter", 1_200.0),
    ("growth", 12_000.0),
    ("business", 48_000.0),
    ("enterprise", 180_000.0),
];
const FEATURES: &[&str] = &[
    "Dashboard",
    "Reports",
    "Exports",
    "Integrations",
    "Automations",
    "Billing Settings",
];
const INTENTS: &[&str] = &["billing", "login", "bug", "how-to", "cancellation"];
/// Device ids seen across many people: a kiosk and a family tablet.
const SHARED_DEVICES: &[&str] = &["kiosk-lobby-1", "family-ipad"];
const JUNK_IDS: &[&str] = &["null", "undefined", "0", "guest"];

impl Generator {
    /// `end` is the newest timestamp; history spreads over the 120 days before it.
    pub fn new(seed: u64, end: DateTime<Utc>) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            end,
            customer: 0,
            accounts: 0,
            seed,
            fate: None,
        }
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.rng.gen_range(0..xs.len())]
    }

    fn msg_id(&mut self) -> String {
        format!("gen-{:x}-{:016x}", self.seed, self.rng.gen::<u64>())
    }

    /// The events of the next customer, in time order (about 10–150 events).
    pub fn next_customer(&mut self) -> Vec<Value> {
        self.customer += 1;
        let n = self.customer;
        let account_every = 4;
        if n % account_every == 1 {
            self.accounts += 1;
            self.fate = account_fate(self.seed, self.accounts, self.end);
        }
        let fate = self.fate;
        // the first person of an account gives the notice for it
        let gives_notice = n % account_every == 1;
        let acct = format!("acct-{:05}", self.accounts);
        let plan = PLANS[(self.accounts as usize * 7 + 3) % PLANS.len()];
        let first = *self.pick(FIRST);
        let last = *self.pick(LAST);
        let user = format!("user-{n:06}");
        let email = format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase().replace('-', ""),
            n
        );
        let phone = format!("+1415555{:04}", n % 10_000);
        let device = format!("dev-{n:06}-{}", self.rng.gen_range(100..999));
        let mut start = self.end - Duration::days(120)
            + Duration::minutes(self.rng.gen_range(0..60 * 24 * 100));
        if let Some(day) = fate {
            // everyone at a churning account was there well before the end
            start = start.min(day - Duration::days(PRE_CHURN_DAYS + 20));
        }
        // a leaving account goes quiet three weeks before its notice
        let stop = fate.map_or(self.end, |d| d - Duration::days(DARK_DAYS));
        let mut t = start;
        let mut out = vec![];
        let ctx_web = json!({"userAgent": "Mozilla/5.0", "page": {"path": "/"}});
        let mut push = |g: &mut Generator, t: DateTime<Utc>, mut m: Value| {
            m["messageId"] = json!(g.msg_id());
            m["timestamp"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            out.push(m);
        };

        // anonymous browsing first, sometimes on a shared device or with a junk id
        let anon = match self.rng.gen_range(0..20) {
            0 => (*self.pick(SHARED_DEVICES)).to_string(),
            1 => (*self.pick(JUNK_IDS)).to_string(),
            _ => device.clone(),
        };
        for _ in 0..self.rng.gen_range(1..4) {
            let page = *self.pick(&["Pricing", "Home", "Docs", "Security"]);
            push(
                self,
                t,
                json!({"type": "page", "anonymousId": anon, "name": page, "context": ctx_web}),
            );
            t += Duration::minutes(self.rng.gen_range(1..30));
        }
        push(
            self,
            t,
            json!({"type": "identify", "userId": user, "anonymousId": anon, "traits": {"name": format!("{first} {last}"), "email": email, "plan": plan.0}, "context": ctx_web}),
        );
        push(
            self,
            t,
            json!({"type": "track", "event": "Signed Up", "userId": user, "anonymousId": anon, "properties": {"plan": plan.0}, "context": ctx_web}),
        );
        push(
            self,
            t,
            json!({"type": "group", "userId": user, "groupId": acct, "traits": {"name": format!("Account {}", self.accounts), "plan": plan.0, "arr": plan.1, "renewal_date": (self.end + Duration::days((self.accounts as i64 * 37) % 365)).format("%Y-%m-%d").to_string()}}),
        );
        if self.rng.gen_bool(0.3) {
            push(
                self,
                t,
                json!({"type": "identify", "userId": user, "traits": {"phone": phone}}),
            );
        }
        let activated = self.rng.gen_bool(0.8);
        if activated {
            t += Duration::hours(self.rng.gen_range(1..72));
            push(
                self,
                t,
                json!({"type": "track", "event": "Activated", "userId": user, "groupId": acct}),
            );
        }
        let pre_churn =
            |t: DateTime<Utc>| fate.is_some_and(|d| t >= d - Duration::days(PRE_CHURN_DAYS));
        // people who activated use the product to the end (or until their account leaves);
        // the others look a few times and stop
        let sessions = if activated {
            u32::MAX
        } else {
            self.rng.gen_range(0..4)
        };
        for _ in 0..sessions {
            t += if pre_churn(t) {
                Duration::hours(self.rng.gen_range(96..400))
            } else {
                Duration::hours(self.rng.gen_range(24..168))
            };
            if t > stop {
                break;
            }
            let worn = pre_churn(t);
            let mobile = self.rng.gen_bool(0.3);
            for _ in 0..self.rng.gen_range(1..4) {
                let f = *self.pick(FEATURES);
                let ctx = if mobile {
                    json!({"os": {"name": "iOS"}, "app": {"name": "cxm-demo"}})
                } else {
                    ctx_web.clone()
                };
                push(
                    self,
                    t,
                    json!({"type": "track", "event": "Feature Used", "userId": user, "groupId": acct, "properties": {"feature": f}, "context": ctx}),
                );
                t += Duration::minutes(self.rng.gen_range(1..20));
            }
            // support episodes: a chat, sometimes followed by a call about the same thing
            if self.rng.gen_bool(if worn { 0.5 } else { 0.07 }) {
                let intent = *self.pick(INTENTS);
                let ticket = format!("T-{n}-{}", self.rng.gen_range(1000..9999));
                if (intent == "billing" && self.rng.gen_bool(0.6))
                    || (worn && self.rng.gen_bool(0.25))
                {
                    push(
                        self,
                        t,
                        json!({"type": "track", "event": "Payment Failed", "userId": user, "groupId": acct, "properties": {"amount": plan.1 / 12.0, "currency": "USD"}}),
                    );
                    t += Duration::hours(self.rng.gen_range(1..30));
                }
                push(
                    self,
                    t,
                    json!({"type": "track", "event": "Chat Started", "userId": user, "properties": {"intent": intent, "ticket_id": ticket}}),
                );
                push(
                    self,
                    t,
                    json!({"type": "track", "event": "Ticket Opened", "userId": user, "groupId": acct, "properties": {"intent": intent, "ticket_id": ticket, "zendesk_id": format!("zd-{n}")}, "context": {"traits": {"zendesk_id": format!("zd-{n}")}}}),
                );
                if self.rng.gen_bool(0.35) {
                    t += Duration::hours(self.rng.gen_range(1..20));
                    push(
                        self,
                        t,
                        json!({"type": "track", "event": "Call Started", "userId": user, "properties": {"intent": intent, "ticket_id": ticket}, "context": {"traits": {"phone": phone}}}),
                    );
                    t += Duration::minutes(self.rng.gen_range(3..40));
                    push(
                        self,
                        t,
                        json!({"type": "track", "event": "Call Completed", "userId": user, "properties": {"intent": intent, "ticket_id": ticket}}),
                    );
                }
                if self.rng.gen_bool(0.15) {
                    push(
                        self,
                        t,
                        json!({"type": "track", "event": "Ticket Escalated", "userId": user, "groupId": acct, "properties": {"ticket_id": ticket}}),
                    );
                }
                t += Duration::hours(self.rng.gen_range(1..48));
                push(
                    self,
                    t,
                    json!({"type": "track", "event": "Ticket Resolved", "userId": user, "groupId": acct, "properties": {"ticket_id": ticket, "intent": intent}}),
                );
                if self.rng.gen_bool(0.4) {
                    let score = if worn {
                        self.rng.gen_range(0..7)
                    } else {
                        self.rng.gen_range(6..11)
                    };
                    push(
                        self,
                        t,
                        json!({"type": "track", "event": "Survey Responded", "userId": user, "properties": {"survey": "post-ticket nps", "nps": score}}),
                    );
                }
            }
        }
        match fate {
            Some(day) if gives_notice => {
                let reason = *self.pick(&[
                    "price",
                    "missing feature",
                    "support",
                    "switching to competitor",
                ]);
                push(
                    self,
                    day,
                    json!({"type": "track", "event": "Churn Notice", "userId": user, "groupId": acct, "properties": {"reason": reason}}),
                );
            }
            Some(_) => {}
            None if gives_notice => {
                t = self.end - Duration::days(self.rng.gen_range(1..20));
                push(
                    self,
                    t,
                    json!({"type": "track", "event": "Subscription Renewed", "userId": user, "groupId": acct, "properties": {"arr": plan.1}}),
                );
            }
            None => {}
        }
        out.retain(|m| {
            m["timestamp"]
                .as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                .is_some_and(|ts| ts <= self.end)
        });
        out
    }

    /// Exactly `n` events, customer after customer.
    pub fn events(mut self, n: u64) -> impl Iterator<Item = Value> {
        let mut buf: std::vec::IntoIter<Value> = Vec::new().into_iter();
        let mut left = n;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            loop {
                if let Some(v) = buf.next() {
                    left -= 1;
                    return Some(v);
                }
                buf = self.next_customer().into_iter();
            }
        })
    }
}

/// The demo's comments: `topic<TAB>band<TAB>text`, hundreds of distinct ones over twenty
/// topics, each written for the NPS band (detractor, passive, promoter) that would give it.
const COMMENTS: &str = include_str!("demo_comments.tsv");

/// Topics people at an account about to leave complain about most.
const CHURN_TOPICS: &[&str] = &[
    "billing",
    "outages",
    "slowness",
    "support_quality",
    "wait_times",
    "pricing",
    "missing_features",
    "data_accuracy",
];

fn comments(band: &str) -> Vec<(&'static str, &'static str)> {
    COMMENTS
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, '\t');
            let (topic, b, text) = (p.next()?, p.next()?, p.next()?);
            (b == band).then_some((topic, text))
        })
        .collect()
}

/// Survey answers for the demo: an NPS score and a comment from `customers` of the generated
/// customers (their `user_id`s, so answers link to profiles and accounts), spread over the 90
/// days before `end`. Same seed, same answers.
/// Purchases for customers who signed up (user, account, sign-up time in ms): the story
/// BG/NBD tells, so the value model has something true to find. Each buys at a weekly rate
/// drawn from gamma(0.8, 1/6), may stop after each purchase with a chance drawn from
/// beta(0.7, 3), and spends gamma(6, ν) with ν drawn so the average order is about $80.
/// A separate random stream from the events', so adding purchases changes nothing else.
pub fn purchases(
    seed: u64,
    signups: &[(String, Option<String>, i64)],
    end: DateTime<Utc>,
) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00c1_1e0d);
    let end_ms = end.timestamp_millis();
    let week = 7.0 * 86_400_000.0;
    let mut out = vec![];
    for (n, (user, account, at)) in signups.iter().enumerate() {
        // two in three customers buy at all
        if !rng.gen_bool(0.66) {
            continue;
        }
        let rate = gamma(&mut rng, 0.8) / 6.0;
        let x = gamma(&mut rng, 0.7);
        let drop = x / (x + gamma(&mut rng, 3.0));
        let scale = 80.0 * 3.0 / (6.0 * gamma(&mut rng, 4.0)).max(0.5);
        let mut t = *at + 86_400_000;
        let mut k = 0;
        while t <= end_ms && k < 200 {
            let amount = (gamma(&mut rng, 6.0) * scale * 100.0).round() / 100.0;
            let mut e = json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("order-{seed}-{n}-{k}"),
                "timestamp": DateTime::from_timestamp_millis(t).unwrap_or(end).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "properties": {"order_id": format!("o-{n}-{k}"), "revenue": amount, "currency": "USD"}});
            if let Some(a) = account {
                e["groupId"] = json!(a);
            }
            out.push(e);
            k += 1;
            if rng.gen_bool(drop.clamp(0.0, 1.0)) {
                break;
            }
            // exponential wait at the customer's rate
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += (-u.ln() / rate.max(1e-3) * week) as i64;
        }
    }
    out
}

/// A gamma(shape, 1) draw (Marsaglia and Tsang; boosted for shapes below one).
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // a standard normal by Box-Muller
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen_range(0.0..1.0));
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

pub fn feedback(seed: u64, customers: u64, end: DateTime<Utc>) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_f00d);
    let channels = ["email", "chat", "web", "voice"];
    // each band's comments in a shuffled order, dealt out in turn so answers repeat a
    // comment only once the band's pool is used up
    let mut pools = [
        comments("detractor"),
        comments("passive"),
        comments("promoter"),
    ];
    for p in pools.iter_mut() {
        for i in (1..p.len()).rev() {
            p.swap(i, rng.gen_range(0..=i));
        }
    }
    let mut dealt = [0usize; 3];
    let mut out = vec![];
    for n in 1..=customers {
        // the generator gives every four customers an account, in order
        let fate = account_fate(seed, (n - 1) / 4 + 1, end);
        let roll = rng.gen_range(0..100);
        let band = match fate {
            Some(_) if roll < 70 => 0,
            Some(_) if roll < 93 => 1,
            None if roll < 14 => 0,
            None if roll < 42 => 1,
            _ => 2,
        };
        let score: i64 = match band {
            0 => rng.gen_range(0..=6),
            1 => rng.gen_range(7..=8),
            _ => rng.gen_range(9..=10),
        };
        // people at a leaving account answer in its last weeks, about what drives them away
        let at = match fate {
            Some(day) => {
                day - Duration::days(DARK_DAYS)
                    - Duration::minutes(rng.gen_range(60..60 * 24 * (PRE_CHURN_DAYS - DARK_DAYS)))
            }
            // half a year of answers, so a period and the one before both have some
            None => end - Duration::minutes(rng.gen_range(0..60 * 24 * 180)),
        };
        // people at a leaving account complain about what drives them away
        let pool = &pools[band];
        let comment = loop {
            let c = pool[dealt[band] % pool.len()];
            dealt[band] += 1;
            if fate.is_none() || band != 0 || CHURN_TOPICS.contains(&c.0) {
                break c.1;
            }
        };
        let (response, user) = (format!("demo-{seed}-{n}"), format!("user_id:user-{n:06}"));
        let channel = channels[rng.gen_range(0..channels.len())];
        let common = json!({"response_id": response, "channel": channel, "survey_id": "relationship",
                            "identifier": user, "collected_at": at.to_rfc3339()});
        let mut nps = common.clone();
        nps["question"] = "nps".into();
        nps["type"] = "nps".into();
        nps["value"] = score.into();
        out.push(nps);
        let mut why = common;
        why["question"] = "why".into();
        why["type"] = "text".into();
        why["value"] = comment.into();
        out.push(why);
        // half of them also rated their last support contact: satisfaction 1–5 and effort
        // 1–7 (7 = very hard), worse the unhappier they are
        if rng.gen_bool(0.5) {
            let (csat, ces): (i64, i64) = match band {
                0 => (rng.gen_range(1..=3), rng.gen_range(4..=7)),
                1 => (rng.gen_range(3..=4), rng.gen_range(2..=5)),
                _ => (rng.gen_range(4..=5), rng.gen_range(1..=3)),
            };
            let after = at + Duration::minutes(rng.gen_range(5..600));
            let when = if after > end { at } else { after };
            for (q, v) in [("csat", csat), ("ces", ces)] {
                out.push(json!({"response_id": format!("demo-{seed}-{n}-support"), "channel": channel,
                    "survey_id": "post-support", "identifier": user, "collected_at": when.to_rfc3339(),
                    "question": q, "type": q, "value": v}));
            }
        }
    }
    out
}

/// The demo's journeys, over the generator's events: support from first contact to
/// resolution (with an SLA the slow tickets breach), and the customer lifecycle from sign-up
/// to renewal (its review is overdue, so the flag shows).
pub fn journeys(today: chrono::NaiveDate) -> Vec<String> {
    let overdue = today - chrono::Days::new(3);
    vec![
        format!(
            "id: support
name: Support resolution
owner: head-of-support@demo.cxm
stages:
  - id: contact
    name: First contact
    owner: frontline@demo.cxm
    entry: [Chat Started, Ticket Opened, Call Started]
    target_hours: 2
    sla_hours: 24
    next: [escalated, resolved]
  - id: escalated
    name: Escalated
    owner: tier2@demo.cxm
    entry: [Ticket Escalated]
    target_hours: 24
    sla_hours: 72
    next: [resolved]
  - id: resolved
    name: Resolved
    owner: head-of-support@demo.cxm
    entry: [Ticket Resolved]
    moment_of_truth: true
review:
  every_days: 30
  next: {}
",
            today + chrono::Days::new(12)
        ),
        format!(
            "id: lifecycle
name: Customer lifecycle
owner: vp-cx@demo.cxm
stages:
  - id: signup
    name: Sign-up
    owner: growth@demo.cxm
    entry: [Signed Up]
    target_hours: 72
    sla_hours: 336
  - id: active
    name: Active use
    owner: success@demo.cxm
    entry: [Feature Used]
    moment_of_truth: true
  - id: renewal
    name: Renewal
    owner: account-management@demo.cxm
    entry: [Subscription Renewed]
review:
  every_days: 30
  next: {overdue}
"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_answers_parse_and_repeat() {
        let end = chrono::Utc::now();
        let a = feedback(3, 200, end);
        let nps = a.iter().filter(|x| x["type"] == "nps").count();
        let text = a.iter().filter(|x| x["type"] == "text").count();
        assert_eq!(
            (nps, text),
            (200, 200),
            "a score and a comment per customer"
        );
        let csat: Vec<i64> = a
            .iter()
            .filter(|x| x["type"] == "csat")
            .map(|x| x["value"].as_i64().unwrap())
            .collect();
        let ces = a.iter().filter(|x| x["type"] == "ces").count();
        assert!(
            (60..140).contains(&csat.len()) && ces == csat.len(),
            "about half rate support: {} csat, {ces} ces",
            csat.len()
        );
        assert!(csat.iter().all(|v| (1..=5).contains(v)));
        assert_eq!(a, feedback(3, 200, end));
        for x in &a {
            cxm_domain::feedback::parse_answer(x, end).unwrap();
        }
        let detractors = a
            .iter()
            .filter(|x| x["type"] == "nps" && x["value"].as_i64() < Some(7))
            .count();
        assert!(
            (20..80).contains(&detractors),
            "about a quarter detract: {detractors}"
        );
        let distinct: std::collections::HashSet<&str> =
            a.iter().filter_map(|x| x["value"].as_str()).collect();
        assert!(distinct.len() > 150, "varied comments: {}", distinct.len());
        let topics: std::collections::HashSet<&str> = COMMENTS
            .lines()
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert!((15..=25).contains(&topics.len()), "{topics:?}");
    }

    #[test]
    fn demo_journeys_listen_to_generated_events() {
        let sent: std::collections::HashSet<String> = Generator::new(7, Utc::now())
            .events(3000)
            .filter_map(|e| e["event"].as_str().map(String::from))
            .collect();
        for yaml in journeys(Utc::now().date_naive()) {
            let def = cxm_app::journeys::parse_definition(&yaml).unwrap();
            assert_eq!(def.validate(|e| sent.contains(e)), Ok(()), "{}", def.name);
        }
    }

    #[test]
    fn same_seed_same_events() {
        let end = "2026-11-01T00:00:00Z".parse().unwrap();
        let a: Vec<Value> = Generator::new(7, end).events(500).collect();
        let b: Vec<Value> = Generator::new(7, end).events(500).collect();
        let c: Vec<Value> = Generator::new(8, end).events(500).collect();
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_generated_event_normalises() {
        let end: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let clock = cxm_domain::Clock {
            received_at: end,
            batch_sent_at: None,
        };
        let opts = cxm_domain::IngestOptions {
            trust_timestamps: true,
            ..Default::default()
        };
        let mut junk = 0;
        for m in Generator::new(1, end).events(5000) {
            match cxm_domain::normalize(&m, 100, &clock, &opts) {
                Ok(_) => {}
                Err(e) => {
                    // pages sent from a junk id with no user id are quarantined, as they should be
                    assert_eq!(e.code, "missing_identity", "{m}");
                    junk += 1;
                }
            }
        }
        assert!(junk < 100);
    }
}
