//! The deterministic identity graph: which identifiers a message carries, and how linking
//! them changes profiles. `resolve` is pure; the store feeds it what it found and applies
//! what it returns, so the rules live in one place for every backend.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    UserId,
    Email,
    Phone,
    /// An id from another system, e.g. `external:zendesk_id`.
    External(String),
    AnonymousId,
}

impl IdentifierKind {
    pub fn as_string(&self) -> String {
        match self {
            IdentifierKind::UserId => "user_id".into(),
            IdentifierKind::Email => "email".into(),
            IdentifierKind::Phone => "phone".into(),
            IdentifierKind::AnonymousId => "anonymous_id".into(),
            IdentifierKind::External(s) => s.clone(),
        }
    }

    pub fn parse(s: &str) -> Option<IdentifierKind> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "user_id" | "userid" => IdentifierKind::UserId,
            "email" => IdentifierKind::Email,
            "phone" => IdentifierKind::Phone,
            "anonymous_id" | "anonymousid" => IdentifierKind::AnonymousId,
            "" => return None,
            other if other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                IdentifierKind::External(other.to_string())
            }
            _ => return None,
        })
    }
}

/// One identifier, normalised. Construct with [`Identifier::parse`] so the value is always
/// in canonical form (emails lower-cased, phones as digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

/// Values that appear in real data as placeholders and would glue strangers together.
const BLOCKED_VALUES: &[&str] = &[
    "",
    "null",
    "undefined",
    "0",
    "-1",
    "guest",
    "anonymous",
    "anon",
    "none",
    "nil",
    "n/a",
    "na",
    "unknown",
    "test",
    "user",
    "[object object]",
    "nan",
    "false",
    "true",
    "00000000-0000-0000-0000-000000000000",
    "noreply@example.com",
    "test@test.com",
];

pub fn is_blocked_value(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    BLOCKED_VALUES.contains(&t.as_str())
}

fn normalize_email(v: &str) -> Option<String> {
    let e = v.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !domain.starts_with('.') && e.len() <= 254)
        .then_some(e)
}

fn normalize_phone(v: &str) -> Option<String> {
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    Some(
        if v.trim_start().starts_with('+') || v.trim_start().starts_with("00") {
            format!("+{}", digits.trim_start_matches("00"))
        } else {
            digits
        },
    )
}

impl Identifier {
    /// Parses and normalises; `None` for junk values and malformed emails/phones.
    pub fn parse(kind: IdentifierKind, raw: &str) -> Option<Identifier> {
        if is_blocked_value(raw) || raw.len() > 512 {
            return None;
        }
        let value = match kind {
            IdentifierKind::Email => normalize_email(raw)?,
            IdentifierKind::Phone => normalize_phone(raw)?,
            _ => raw.trim().to_string(),
        };
        if is_blocked_value(&value) {
            return None;
        }
        Some(Identifier { kind, value })
    }

    /// `type:value`, as the API accepts it in `?identifier=`.
    pub fn parse_typed(s: &str) -> Option<Identifier> {
        let (k, v) = s.split_once(':')?;
        Identifier::parse(IdentifierKind::parse(k)?, v)
    }

    pub fn kind_str(&self) -> String {
        self.kind.as_string()
    }
}

/// Trait keys that carry ids from well-known systems.
const EXTERNAL_TRAIT_KEYS: &[&str] = &[
    "zendesk_id",
    "intercom_id",
    "hubspot_id",
    "salesforce_id",
    "stripe_customer_id",
    "freshdesk_id",
    "chargebee_id",
    "crm_id",
];

/// Collects the identifiers a message carries, normalised and de-duplicated.
pub fn extract(
    msg: &Value,
    user_id: Option<&str>,
    anonymous_id: Option<&str>,
    previous_id: Option<&str>,
    traits: &Map<String, Value>,
) -> Vec<Identifier> {
    let mut out = BTreeSet::new();
    let mut add = |kind: IdentifierKind, v: &str| {
        if let Some(id) = Identifier::parse(kind, v) {
            out.insert(id);
        }
    };
    if let Some(u) = user_id {
        add(IdentifierKind::UserId, u);
    }
    if let Some(a) = anonymous_id {
        add(IdentifierKind::AnonymousId, a);
    }
    if let Some(p) = previous_id {
        // alias: previousId is usually the anonymous id, sometimes an older user id; both
        // cases link the same way and user-id conflicts are still caught by the rules
        add(IdentifierKind::AnonymousId, p);
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    for (k, v) in traits {
        let Some(v) = text(v) else { continue };
        match k.as_str() {
            "email" => add(IdentifierKind::Email, &v),
            "phone" => add(IdentifierKind::Phone, &v),
            k if EXTERNAL_TRAIT_KEYS.contains(&k) => add(IdentifierKind::External(k.into()), &v),
            _ => {}
        }
    }
    if let Some(Value::Object(p)) = msg.get("properties") {
        if let Some(v) = p.get("email").and_then(text) {
            add(IdentifierKind::Email, &v);
        }
    }
    if let Some(Value::Array(ext)) = msg.get("context").and_then(|c| c.get("externalIds")) {
        for e in ext {
            let (Some(id), Some(ty)) = (
                e.get("id").and_then(text),
                e.get("type").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Some(kind) = IdentifierKind::parse(ty) {
                add(kind, &id);
            }
        }
    }
    out.into_iter().collect()
}

/// Tunable rules of the graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityRules {
    pub max_user_ids: usize,
    pub max_emails: usize,
    pub max_phones: usize,
    pub max_anonymous_ids: usize,
    pub max_external_per_type: usize,
    /// A profile that absorbed this many others takes no more merges: a runaway merger is
    /// almost always a shared device or a junk id nobody blocked yet.
    pub max_merges_per_profile: u32,
}

impl Default for IdentityRules {
    fn default() -> Self {
        IdentityRules {
            max_user_ids: 1,
            max_emails: 5,
            max_phones: 5,
            max_anonymous_ids: 200,
            max_external_per_type: 5,
            max_merges_per_profile: 50,
        }
    }
}

impl IdentityRules {
    fn limit(&self, kind: &IdentifierKind) -> usize {
        match kind {
            IdentifierKind::UserId => self.max_user_ids,
            IdentifierKind::Email => self.max_emails,
            IdentifierKind::Phone => self.max_phones,
            IdentifierKind::AnonymousId => self.max_anonymous_ids,
            IdentifierKind::External(_) => self.max_external_per_type,
        }
    }
}

/// Higher wins when choosing which profile an event belongs to and which link to keep.
pub fn priority(kind: &IdentifierKind) -> u8 {
    match kind {
        IdentifierKind::UserId => 100,
        IdentifierKind::Email => 80,
        IdentifierKind::Phone => 70,
        IdentifierKind::External(_) => 60,
        IdentifierKind::AnonymousId => 10,
    }
}

/// What the store knows about a profile an identifier already belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileView {
    pub id: String,
    pub identifiers: Vec<Identifier>,
    pub merge_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Existing(String),
    New,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merge {
    pub from: String,
    /// The event identifier that linked the two profiles.
    pub via: Identifier,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedLink {
    pub identifier: Identifier,
    /// Stable reason code: `conflicting_user_id`, `limit_exceeded`, `merge_cap_reached`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub target: Target,
    /// Identifiers that belonged to no profile and now belong to the target.
    pub attach: Vec<Identifier>,
    /// Profiles folded into the target, in order.
    pub merges: Vec<Merge>,
    /// Links the rules refused, with why.
    pub dropped: Vec<DroppedLink>,
}

fn counts(ids: &[Identifier]) -> BTreeMap<&IdentifierKind, usize> {
    let mut m = BTreeMap::new();
    for i in ids {
        *m.entry(&i.kind).or_insert(0) += 1;
    }
    m
}

fn user_id_of(ids: &[Identifier]) -> Option<&str> {
    ids.iter()
        .find(|i| i.kind == IdentifierKind::UserId)
        .map(|i| i.value.as_str())
}

/// Decides how one event's identifiers change the graph.
///
/// `owners` maps each of the event's identifiers that already belongs to a profile to that
/// profile; `profiles` describes those profiles. The event belongs to the owner of its
/// highest-priority identifier (a new profile if that one is unknown); every other owner is
/// merged in unless a rule forbids it, in which case the link through the lower-priority
/// identifier is dropped and recorded.
pub fn resolve(
    event_ids: &[Identifier],
    owners: &BTreeMap<Identifier, String>,
    profiles: &BTreeMap<String, ProfileView>,
    blocked: &BTreeSet<Identifier>,
    rules: &IdentityRules,
) -> Resolution {
    let mut ids: Vec<&Identifier> = event_ids.iter().filter(|i| !blocked.contains(i)).collect();
    // highest priority first; ties in value order keep it deterministic
    ids.sort_by(|a, b| priority(&b.kind).cmp(&priority(&a.kind)).then(a.cmp(b)));

    let mut res = Resolution {
        target: Target::New,
        attach: vec![],
        merges: vec![],
        dropped: vec![],
    };
    let Some(first) = ids.first() else {
        return res;
    };
    let mut working: Vec<Identifier> = vec![];
    let mut merge_count = 0u32;
    match owners.get(*first).and_then(|p| profiles.get(p)) {
        Some(p) => {
            res.target = Target::Existing(p.id.clone());
            working.extend(p.identifiers.iter().cloned());
            merge_count = p.merge_count;
        }
        None => {
            working.push((*first).clone());
            res.attach.push((*first).clone());
        }
    }
    let target_id = match &res.target {
        Target::Existing(id) => Some(id.clone()),
        Target::New => None,
    };
    let mut absorbed: BTreeSet<String> = target_id.iter().cloned().collect();

    for id in ids.iter().skip(1) {
        match owners.get(*id).and_then(|p| profiles.get(p)) {
            Some(p) if absorbed.contains(&p.id) => {}
            Some(p) => {
                let reason = if let (Some(a), Some(b)) =
                    (user_id_of(&working), user_id_of(&p.identifiers))
                {
                    (a != b).then_some("conflicting_user_id")
                } else {
                    None
                }
                .or_else(|| {
                    (merge_count + 1 + p.merge_count > rules.max_merges_per_profile)
                        .then_some("merge_cap_reached")
                })
                .or_else(|| {
                    let mut union = working.clone();
                    union.extend(p.identifiers.iter().cloned());
                    counts(&union)
                        .iter()
                        .any(|(k, n)| *n > rules.limit(k))
                        .then_some("limit_exceeded")
                });
                match reason {
                    Some(reason) => res.dropped.push(DroppedLink {
                        identifier: (*id).clone(),
                        reason,
                    }),
                    None => {
                        working.extend(p.identifiers.iter().cloned());
                        merge_count += 1 + p.merge_count;
                        absorbed.insert(p.id.clone());
                        res.merges.push(Merge {
                            from: p.id.clone(),
                            via: (*id).clone(),
                        });
                    }
                }
            }
            None => {
                if working.contains(id) {
                    continue;
                }
                let reason = if id.kind == IdentifierKind::UserId && user_id_of(&working).is_some()
                {
                    Some("conflicting_user_id")
                } else {
                    let n = working.iter().filter(|w| w.kind == id.kind).count();
                    (n + 1 > rules.limit(&id.kind)).then_some("limit_exceeded")
                };
                match reason {
                    Some(reason) => res.dropped.push(DroppedLink {
                        identifier: (*id).clone(),
                        reason,
                    }),
                    None => {
                        working.push((*id).clone());
                        res.attach.push((*id).clone());
                    }
                }
            }
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(k: IdentifierKind, v: &str) -> Identifier {
        Identifier::parse(k, v).unwrap()
    }

    #[test]
    fn normalises_and_blocks() {
        assert_eq!(
            id(IdentifierKind::Email, " Ada@Example.COM").value,
            "ada@example.com"
        );
        assert_eq!(
            id(IdentifierKind::Phone, "+44 (20) 7946-0018").value,
            "+442079460018"
        );
        assert!(Identifier::parse(IdentifierKind::UserId, "undefined").is_none());
        assert!(Identifier::parse(IdentifierKind::Email, "not-an-email").is_none());
        assert_eq!(
            Identifier::parse_typed("email:A@b.co").unwrap().value,
            "a@b.co"
        );
        assert!(Identifier::parse_typed("bad kind:x").is_none());
    }

    fn view(pid: &str, ids: Vec<Identifier>) -> ProfileView {
        ProfileView {
            id: pid.into(),
            identifiers: ids,
            merge_count: 0,
        }
    }

    #[test]
    fn never_merges_two_user_ids() {
        let u1 = id(IdentifierKind::UserId, "u1");
        let u2 = id(IdentifierKind::UserId, "u2");
        let a = id(IdentifierKind::AnonymousId, "device");
        let owners = BTreeMap::from([
            (u1.clone(), "p1".to_string()),
            (a.clone(), "p2".to_string()),
        ]);
        let profiles = BTreeMap::from([
            ("p1".to_string(), view("p1", vec![u1.clone()])),
            ("p2".to_string(), view("p2", vec![u2.clone(), a.clone()])),
        ]);
        let r = resolve(
            &[u1, a.clone()],
            &owners,
            &profiles,
            &BTreeSet::new(),
            &IdentityRules::default(),
        );
        assert_eq!(r.target, Target::Existing("p1".into()));
        assert!(r.merges.is_empty());
        assert_eq!(
            r.dropped,
            vec![DroppedLink {
                identifier: a,
                reason: "conflicting_user_id"
            }]
        );
    }

    #[test]
    fn anonymous_history_merges_into_known_user() {
        let u = id(IdentifierKind::UserId, "u1");
        let a = id(IdentifierKind::AnonymousId, "anon-7");
        let owners = BTreeMap::from([(a.clone(), "p-anon".to_string())]);
        let profiles = BTreeMap::from([("p-anon".to_string(), view("p-anon", vec![a.clone()]))]);
        let r = resolve(
            &[u.clone(), a.clone()],
            &owners,
            &profiles,
            &BTreeSet::new(),
            &IdentityRules::default(),
        );
        assert_eq!(r.target, Target::New);
        assert_eq!(r.attach, vec![u]);
        assert_eq!(
            r.merges,
            vec![Merge {
                from: "p-anon".into(),
                via: a
            }]
        );
    }

    #[test]
    fn blocked_identifiers_do_not_link() {
        let u = id(IdentifierKind::UserId, "u1");
        let a = id(IdentifierKind::AnonymousId, "shared-kiosk");
        let owners = BTreeMap::from([(a.clone(), "p2".to_string())]);
        let profiles = BTreeMap::from([("p2".to_string(), view("p2", vec![a.clone()]))]);
        let blocked = BTreeSet::from([a.clone()]);
        let r = resolve(
            &[u.clone(), a],
            &owners,
            &profiles,
            &blocked,
            &IdentityRules::default(),
        );
        assert!(r.merges.is_empty());
        assert_eq!(r.attach, vec![u]);
    }

    #[test]
    fn limits_drop_the_extra_link() {
        let rules = IdentityRules {
            max_emails: 1,
            ..Default::default()
        };
        let u = id(IdentifierKind::UserId, "u1");
        let e1 = id(IdentifierKind::Email, "a@x.io");
        let e2 = id(IdentifierKind::Email, "b@x.io");
        let owners = BTreeMap::from([(u.clone(), "p1".to_string())]);
        let profiles = BTreeMap::from([("p1".to_string(), view("p1", vec![u.clone(), e1]))]);
        let r = resolve(
            &[u, e2.clone()],
            &owners,
            &profiles,
            &BTreeSet::new(),
            &rules,
        );
        assert_eq!(
            r.dropped,
            vec![DroppedLink {
                identifier: e2,
                reason: "limit_exceeded"
            }]
        );
    }

    fn arb_id() -> impl Strategy<Value = Identifier> {
        (0..4u8, 0..6u8).prop_map(|(k, v)| {
            let kind = match k {
                0 => IdentifierKind::UserId,
                1 => IdentifierKind::Email,
                2 => IdentifierKind::Phone,
                _ => IdentifierKind::AnonymousId,
            };
            let raw = match kind {
                IdentifierKind::Email => format!("p{v}@x.io"),
                IdentifierKind::Phone => format!("+4420794600{v:02}"),
                _ => format!("v{v}"),
            };
            Identifier::parse(kind, &raw).unwrap()
        })
    }

    proptest! {
        /// Replaying random events through `resolve` with an in-memory graph never puts two
        /// user ids in one profile and never exceeds a per-type limit.
        #[test]
        fn graph_invariants_hold(events in proptest::collection::vec(proptest::collection::vec(arb_id(), 1..4), 1..40)) {
            let rules = IdentityRules { max_emails: 2, max_anonymous_ids: 3, ..Default::default() };
            let mut owners: BTreeMap<Identifier, String> = BTreeMap::new();
            let mut profiles: BTreeMap<String, ProfileView> = BTreeMap::new();
            for (n, ev) in events.iter().enumerate() {
                let mine: BTreeMap<_, _> = ev.iter().filter_map(|i| owners.get(i).map(|p| (i.clone(), p.clone()))).collect();
                let r = resolve(ev, &mine, &profiles, &BTreeSet::new(), &rules);
                let target = match r.target { Target::Existing(p) => p, Target::New => {
                    let p = format!("p{n}");
                    profiles.insert(p.clone(), ProfileView { id: p.clone(), identifiers: vec![], merge_count: 0 });
                    p
                }};
                for m in &r.merges {
                    let from = profiles.remove(&m.from).unwrap();
                    for i in &from.identifiers { owners.insert(i.clone(), target.clone()); }
                    let t = profiles.get_mut(&target).unwrap();
                    t.identifiers.extend(from.identifiers);
                    t.merge_count += 1 + from.merge_count;
                }
                for i in &r.attach {
                    owners.insert(i.clone(), target.clone());
                    profiles.get_mut(&target).unwrap().identifiers.push(i.clone());
                }
                for p in profiles.values() {
                    let c = counts(&p.identifiers);
                    prop_assert!(c.get(&IdentifierKind::UserId).copied().unwrap_or(0) <= 1);
                    for (k, n) in c { prop_assert!(n <= rules.limit(k)); }
                    let uniq: BTreeSet<_> = p.identifiers.iter().collect();
                    prop_assert_eq!(uniq.len(), p.identifiers.len());
                }
            }
        }
    }
}
