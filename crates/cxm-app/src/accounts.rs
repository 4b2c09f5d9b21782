//! One account whole (the account 360): its health with each signal's contribution and
//! trend, ARR and renewal, the people in it with their latest answers, its alerts and
//! tickets, CSAT, what it is worth and whether it is spending more.

use std::sync::Arc;

use cxm_store::{Alert, Ticket};
use serde::Serialize;

use crate::blocking;
use crate::equity::ExpansionSignal;
use crate::error::AppResult;
use crate::health::{account_detail, AccountDetail};
use crate::App;

const DAY_MS: i64 = 86_400_000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Person {
    pub profile_id: String,
    /// Name or email from the person's traits, when known.
    pub name: Option<String>,
    pub email: Option<String>,
    /// The person's id in the tenant's own systems (`userId`).
    pub user_id: Option<String>,
    pub last_seen_ms: i64,
    /// The latest NPS and CSAT answers of the last year.
    pub nps: Option<i64>,
    pub csat: Option<i64>,
    pub answered_at_ms: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Account360 {
    #[serde(flatten)]
    pub detail: AccountDetail,
    /// The account's traits as last sent (`group` calls), e.g. plan and renewal date.
    #[schema(value_type = Object)]
    pub traits: serde_json::Value,
    pub renewal: Option<String>,
    pub people: Vec<Person>,
    pub open_alerts: usize,
    #[schema(value_type = Vec<Object>)]
    pub tickets: Vec<Ticket>,
    /// Satisfied (4-5) and all CSAT answers of the last 90 days.
    pub csat_satisfied: u64,
    pub csat_answers: u64,
    /// Summed CLV of the account's customers, and its value tier, when equity is fitted.
    pub clv: Option<f64>,
    pub tier: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub expansion: Option<ExpansionSignal>,
}

fn text(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
        .map(str::to_string)
}

pub async fn account_360(st: &Arc<App>, tenant: &str, id: &str) -> AppResult<Account360> {
    let (t, g) = (tenant.to_string(), id.to_string());
    let now = chrono::Utc::now().timestamp_millis();
    let (detail, traits, people, tickets, (csat_satisfied, csat_answers)) =
        blocking(st, move |s| {
            let detail = account_detail(s, &t, &g)?;
            let traits = s.account_traits(&t, &g)?.unwrap_or_default();
            let mut people = vec![];
            for pid in s.account_profiles(&t, &g, 50)? {
                let Some(p) = s.profile(&t, &pid)? else {
                    continue;
                };
                let answers = s.recent_answers(&t, &pid, now - 365 * DAY_MS, 50)?;
                let latest = |ty: &str| answers.iter().find(|a| a.field_type == ty);
                people.push(Person {
                    name: text(&p.traits, &["name", "full_name", "first_name"]),
                    email: text(&p.traits, &["email"]),
                    user_id: p
                        .identifiers
                        .iter()
                        .find(|i| i.kind == "user_id")
                        .map(|i| i.value.clone()),
                    last_seen_ms: p.last_seen_ms,
                    nps: latest("nps").and_then(|a| a.score),
                    csat: latest("csat").and_then(|a| a.score),
                    answered_at_ms: answers.first().map(|a| a.at_ms),
                    profile_id: p.id,
                });
            }
            people.sort_by_key(|p| std::cmp::Reverse(p.last_seen_ms));
            let tickets: Vec<Ticket> = s
                .list_tickets(&t, None, 1000)?
                .into_iter()
                .filter(|k| {
                    k.impact["accounts"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(g.as_str())))
                })
                .collect();
            let csat = s.csat_of_accounts(&t, std::slice::from_ref(&g), now - 90 * DAY_MS)?;
            Ok((detail, traits, people, tickets, csat))
        })
        .await?;
    let equity = crate::equity::current(st, tenant).await?;
    let values: Vec<f64> = equity
        .by_customer
        .values()
        .filter(|v| v.account.as_deref() == Some(id))
        .map(|v| v.clv)
        .collect();
    let open_alerts = detail
        .alerts
        .iter()
        .filter(|a: &&Alert| a.status != "resolved")
        .count();
    Ok(Account360 {
        renewal: text(
            &traits,
            &["renewal_date", "renewal", "renews_at", "contract_end"],
        ),
        traits,
        people,
        open_alerts,
        tickets,
        csat_satisfied,
        csat_answers,
        clv: (!values.is_empty()).then(|| values.iter().sum()),
        tier: equity.account_tier.get(id).cloned(),
        expansion: equity
            .report
            .expansion
            .iter()
            .find(|e| e.account == id)
            .cloned(),
        detail,
    })
}
