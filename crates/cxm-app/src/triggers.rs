//! Surveys that invite by themselves: a survey's targeting names events (e.g. "Ticket
//! Resolved"); the worker reads each tenant's event log from a stored cursor, finds the
//! customer behind each triggering event, applies the channel and tier filters, the sampling
//! draw and the contact rules, and records an invitation with its link in the outbox. An
//! integration (mailer, chat or voice bot) takes pending invitations from the API and marks
//! them delivered.
//!
//! The cursor starts at the end of the log the first time a tenant is seen, and events older
//! than [`MAX_AGE_MS`] never invite: importing last year's tickets must not survey anyone.

use cxm_domain::survey::SurveyDefinition;
use cxm_domain::Identifier;
use cxm_store::{tier_of, Invitation, SurveyLink, TriggerEvent};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// Events older than this when read never trigger an invitation.
pub const MAX_AGE_MS: i64 = 2 * 86_400_000;
const BATCH: u32 = 500;

/// A survey with targeting, at its latest version.
struct Targeted {
    id: String,
    version: i64,
    def: SurveyDefinition,
}

async fn targeted(st: &App, tenant: &str) -> AppResult<Vec<Targeted>> {
    let t = tenant.to_string();
    let all = st
        .store
        .run(move |s| {
            let mut out = vec![];
            for sum in s.list_surveys(&t)? {
                if let Some((v, d)) = s.survey(&t, &sum.survey_id, None)? {
                    out.push((sum.survey_id, v, d));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(all
        .into_iter()
        .filter_map(|(id, version, d)| {
            let def: SurveyDefinition = serde_json::from_str(&d).ok()?;
            def.targeting.as_ref()?;
            Some(Targeted { id, version, def })
        })
        .collect())
}

/// Who to invite for an event, and their tiers: the customer's email when known (else their
/// user id), the tier (or plan) of their account or profile, and their value tier when the
/// value model has been computed.
async fn customer_of(
    st: &App,
    tenant: &str,
    e: &TriggerEvent,
) -> AppResult<Option<(String, Option<String>, Option<String>)>> {
    let typed = match (&e.user_id, &e.anonymous_id) {
        (Some(u), _) => format!("user_id:{u}"),
        (None, Some(a)) => format!("anonymous_id:{a}"),
        _ => return Ok(None),
    };
    let Some(ident) = Identifier::parse_typed(&typed) else {
        return Ok(None);
    };
    let t = tenant.to_string();
    st.store
        .run(move |s| {
            let Some(pid) = s.profile_for(&t, &ident)? else {
                return Ok(None);
            };
            let Some(p) = s.profile(&t, &pid)? else {
                return Ok(None);
            };
            let who = p
                .identifiers
                .iter()
                .find(|i| i.kind == "email")
                .or_else(|| p.identifiers.iter().find(|i| i.kind == "user_id"))
                .map(|i| format!("{}:{}", i.kind, i.value));
            let Some(who) = who else { return Ok(None) };
            let mut tier = None;
            for acc in &p.accounts {
                if let Some(traits) = s.account_traits(&t, acc)? {
                    tier = tier_of(&traits);
                    if tier.is_some() {
                        break;
                    }
                }
            }
            Ok(Some((who, tier.or_else(|| tier_of(&p.traits)), pid)))
        })
        .await
        .map_err(AppError::from)
        .map(|found: Option<(String, Option<String>, String)>| {
            found.map(|(who, tier, pid)| {
                let value_tier = st
                    .equity
                    .peek(tenant)
                    .and_then(|c| crate::equity::value_of(&c, &pid))
                    .map(|v| v.value.tier);
                (who, tier, value_tier)
            })
        })
}

/// Reads the tenant's new events and records the invitations they trigger. Returns how many
/// invitations were recorded (held ones included).
pub async fn process_tenant(st: &App, tenant: &str) -> AppResult<usize> {
    let t = tenant.to_string();
    let (cursor, upto) = st
        .store
        .run(move |s| Ok((s.trigger_cursor(&t)?, s.max_event_seq()?)))
        .await?;
    let surveys = targeted(st, tenant).await?;
    let Some(mut after) = cursor.filter(|_| !surveys.is_empty()) else {
        // nothing to trigger yet, or a tenant seen for the first time: start from the end
        if cursor != Some(upto) {
            let t = tenant.to_string();
            st.store
                .run(move |s| s.set_trigger_cursor(&t, upto))
                .await?;
        }
        return Ok(0);
    };
    let mut names: Vec<String> = surveys
        .iter()
        .flat_map(|s| s.def.targeting.iter().flat_map(|t| t.events.clone()))
        .collect();
    names.sort();
    names.dedup();
    let now = chrono::Utc::now().timestamp_millis();
    let mut made = 0;
    while after < upto {
        let (t, n) = (tenant.to_string(), names.clone());
        let events = st
            .store
            .run(move |s| s.trigger_events(&t, after, upto, &n, BATCH))
            .await?;
        for e in &events {
            if now - e.ts_ms > MAX_AGE_MS {
                continue;
            }
            let mut customer = None;
            for s in &surveys {
                let Some(tg) = &s.def.targeting else { continue };
                if !tg.events.contains(&e.name) || !tg.sampled(&s.id, &e.message_id) {
                    continue;
                }
                if customer.is_none() {
                    customer = Some(customer_of(st, tenant, e).await?);
                }
                let Some(Some((who, tier, value_tier))) = &customer else {
                    break;
                };
                // a survey may target the account's tier or plan, or the customer's value tier
                if !tg.matches(&e.name, &e.channel, tier.as_deref())
                    && !tg.matches(&e.name, &e.channel, value_tier.as_deref())
                {
                    continue;
                }
                if invite(st, tenant, s, e, who).await? {
                    made += 1;
                }
            }
        }
        after = match (events.len() as u32 == BATCH, events.last()) {
            (true, Some(last)) => last.seq,
            _ => upto,
        };
        let t = tenant.to_string();
        st.store
            .run(move |s| s.set_trigger_cursor(&t, after))
            .await?;
    }
    Ok(made)
}

async fn invite(
    st: &App,
    tenant: &str,
    s: &Targeted,
    e: &TriggerEvent,
    who: &str,
) -> AppResult<bool> {
    let channel = s
        .def
        .targeting
        .as_ref()
        .map_or("email".to_string(), |t| t.deliver_via.clone());
    let mut inv = Invitation {
        id: 0,
        survey_id: s.id.clone(),
        version: s.version,
        identifier: who.to_string(),
        channel: channel.clone(),
        trigger_event: e.name.clone(),
        trigger_message_id: e.message_id.clone(),
        status: "pending".into(),
        detail: String::new(),
        url: None,
        created_at_ms: 0,
        delivered_at_ms: None,
    };
    let link = match crate::surveys::contact_check(st, tenant, &s.id, &s.def, who, &channel).await {
        Ok(()) => {
            let (token, hash) = crate::auth::new_session_token();
            inv.url = Some(format!("/s/{token}"));
            Some((
                hash,
                SurveyLink {
                    tenant_id: tenant.to_string(),
                    survey_id: s.id.clone(),
                    version: s.version,
                    identifier: Some(who.to_string()),
                    channel,
                    displayed_at_ms: None,
                    responded_at_ms: None,
                    follow_ups: 0,
                },
            ))
        }
        Err(e) if e.code == ErrorCode::ContactRule => {
            inv.status = "held".into();
            inv.detail = e.detail;
            None
        }
        Err(e) => return Err(e),
    };
    let t = tenant.to_string();
    let made = st
        .store
        .run(move |s| s.create_invitation(&t, &inv, link.as_ref().map(|(h, l)| (h.as_str(), l))))
        .await?;
    Ok(made)
}
