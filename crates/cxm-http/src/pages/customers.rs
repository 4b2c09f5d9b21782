//! One customer whole: search, the profile with its timeline, merges and unmerge, consent
//! and erasure; and the quarantine of refused events.

use super::*;

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    flash: Option<String>,
    /// `last_seen` (default), `events` or `name`.
    sort: Option<String>,
    /// 1-based page of 50.
    page: Option<usize>,
}

const PER_PAGE: usize = 50;
/// A list is sorted and paged over at most this many matches; the page says so beyond it.
const LIST_CAP: u32 = 5000;

/// The matching customers, sorted as asked; the second value is whether the cap was hit.
async fn matching(
    st: &AppState,
    tenant: &str,
    query: &str,
    sort: &str,
) -> Result<(Vec<cxm_store::ProfileSummary>, bool), Response> {
    let (t, q2) = (tenant.to_string(), query.to_string());
    let mut found = st
        .store
        .run(move |s| s.search_profiles(&t, &q2, LIST_CAP + 1))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let capped = found.len() > LIST_CAP as usize;
    found.truncate(LIST_CAP as usize);
    match sort {
        "events" => found.sort_by_key(|c| std::cmp::Reverse(c.event_count)),
        "name" => found.sort_by_key(|c| (c.display.is_empty(), c.display.to_lowercase())),
        _ => {}
    }
    Ok((found, capped))
}

fn sort_of(s: Option<&str>) -> &'static str {
    match s {
        Some("events") => "events",
        Some("name") => "name",
        _ => "last_seen",
    }
}

pub(crate) async fn customers(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let p = match session(&st, &headers, "/customers").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = q.q.unwrap_or_default();
    let sort = sort_of(q.sort.as_deref());
    let (found, capped) = match matching(&st, &p.tenant_id, &query, sort).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let total = found.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let customers: Vec<Value> = found
        .iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .map(|c| serde_json::json!({"id": c.id, "display": c.display, "event_count": c.event_count, "last_seen_ms": c.last_seen_ms}))
        .collect();
    // htmx asks for the results only; a plain GET (no JS) gets the whole page
    let template = if headers.contains_key("hx-request") {
        "customer_results.html"
    } else {
        "customers.html"
    };
    st.pages.render(template, context! { title => "Customers", page => "customers", user => user_ctx(&p), customers => customers, q => query, flash => q.flash,
        total => total, capped => capped, cap => LIST_CAP, sort => sort, page_no => page, pages => pages, first => (page - 1) * PER_PAGE + 1 })
}

/// The customers the list shows (all pages), as CSV.
pub(crate) async fn customers_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let p = match session(&st, &headers, "/customers").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = q.q.unwrap_or_default();
    let (found, _) = match matching(&st, &p.tenant_id, &query, sort_of(q.sort.as_deref())).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.display.clone(),
                c.event_count.to_string(),
                fmt_ms(c.last_seen_ms),
            ]
        })
        .collect();
    super::csv::download(
        "customers",
        &["profile_id", "name", "events", "last_seen_utc"],
        &rows,
    )
}

#[derive(Deserialize)]
pub(crate) struct CustomerQuery {
    before: Option<String>,
    flash: Option<String>,
    /// Only this channel's rows.
    channel: Option<String>,
    /// `events`, `answers`, or `all` (also the identify and group calls, folded by default).
    show: Option<String>,
}

pub(crate) fn event_details(e: &cxm_store::StoredEvent) -> String {
    let props = e
        .payload
        .get("properties")
        .or_else(|| e.payload.get("traits"))
        .and_then(Value::as_object);
    props
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .take(4)
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub(crate) async fn customer(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<CustomerQuery>,
) -> Response {
    let p = match session(&st, &headers, &format!("/customers/{id}")).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let before = match q
        .before
        .as_deref()
        .map(cxm_app::customers::parse_cursor)
        .transpose()
    {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let ctx = match cxm_app::customers::build_context(&st, &p.tenant_id, &id, 100, before).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (t, pid) = (p.tenant_id.clone(), ctx.profile.id.clone());
    let ledger = st
        .store
        .run(move |s| s.ledger(&t, &pid))
        .await
        .unwrap_or_default();
    let (t, pid) = (p.tenant_id.clone(), ctx.profile.id.clone());
    let consent: Vec<Value> = st
        .store
        .run(move |s| s.consents(&t, &pid))
        .await
        .map(|history| {
            cxm_domain::consent::PURPOSES
                .iter()
                .map(|purpose| {
                    let (allowed, by) = cxm_domain::consent::allowed(&history, purpose, "*");
                    let channels: Vec<Value> = history
                        .iter()
                        .filter(|r| r.purpose == *purpose && r.channel != "*")
                        .map(|r| serde_json::json!({"channel": r.channel, "status": r.status.as_str()}))
                        .collect();
                    serde_json::json!({"purpose": purpose, "allowed": allowed, "channels": channels,
                        "since": by.map(|r| serde_json::json!({"status": r.status.as_str(), "at_ms": r.at_ms, "source": r.source}))})
                })
                .collect()
        })
        .unwrap_or_default();
    let name = cxm_store::display_name(
        ctx.profile
            .traits
            .as_object()
            .unwrap_or(&serde_json::Map::new()),
    );
    let name = if name.is_empty() {
        ctx.profile.id.clone()
    } else {
        name
    };
    let c360 = match cxm_app::customers::customer_360(&st.app, &p.tenant_id, &ctx.profile).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let show = q.show.clone().unwrap_or_default();
    let channel = q.channel.clone().filter(|c| !c.is_empty());
    let profile_call = |t: &str| t == "identify" || t == "group" || t == "alias";
    let folded = ctx
        .timeline
        .iter()
        .filter(|e| profile_call(&e.event_type))
        .count();
    // answers sit among the events they happened between: those since the oldest event shown
    let oldest = if ctx.next_cursor.is_some() {
        ctx.timeline.last().map_or(i64::MIN, |e| e.timestamp_ms)
    } else {
        i64::MIN
    };
    let mut rows: Vec<(i64, Value)> = vec![];
    if show != "answers" {
        for e in &ctx.timeline {
            if profile_call(&e.event_type) && show != "all" {
                continue;
            }
            rows.push((e.timestamp_ms, serde_json::json!({"at_ms": e.timestamp_ms, "channel": e.channel, "kind": "event",
                "name": e.name.clone().unwrap_or_else(|| e.event_type.clone()), "details": event_details(e)})));
        }
    }
    if show != "events" && q.before.is_none() {
        for a in c360.answers.iter().filter(|a| a.at_ms >= oldest) {
            rows.push((a.at_ms, serde_json::json!({"at_ms": a.at_ms, "channel": a.channel, "kind": "answer",
                "name": a.question, "field_type": a.field_type, "score": a.score, "text": a.text, "survey": a.survey_id})));
        }
    }
    rows.retain(|(_, r)| channel.as_deref().is_none_or(|c| r["channel"] == c));
    rows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let timeline: Vec<Value> = rows.into_iter().map(|(_, r)| r).collect();
    let channels: Vec<&str> = cxm_domain::Channel::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let switch_events: Vec<Value> = ctx
        .channel_switch
        .as_ref()
        .map(|s| s.previous_channel_events.iter().map(|e| serde_json::json!({"when": e.timestamp_ms, "name": e.name.clone().unwrap_or_else(|| e.event_type.clone())})).collect())
        .unwrap_or_default();
    let ledger: Vec<Value> = ledger
        .iter()
        .map(|l| {
            let what = match l.action.as_str() {
                "merge" => format!("merged {} into this profile", l.other_profile_id.clone().unwrap_or_default()),
                "drop" => "link refused".to_string(),
                "block" => "identifier blocked (unmerge)".to_string(),
                other => other.to_string(),
            };
            let cause = match (&l.message_id, &l.reason) {
                (Some(m), Some(r)) => format!("event {m}: {r}"),
                (Some(m), None) => format!("event {m}"),
                (None, Some(r)) => r.clone(),
                _ => String::new(),
            };
            serde_json::json!({"when": l.at_ms, "what": what, "identifier": l.identifier.as_ref().map(|i| format!("{}:{}", i.kind, i.value)), "cause": cause})
        })
        .collect();
    let traits: BTreeMap<String, String> = ctx
        .profile
        .traits
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    st.pages.render(
        "customer.html",
        context! {
            title => name.clone(), page => "customers", user => user_ctx(&p), name => name,
            timeline => timeline, switch_events => switch_events, ledger => ledger, traits => traits,
            can_admin => p.role.can_administer(), can_edit => p.role != cxm_store::Role::Viewer,
            consent => consent, purposes => cxm_domain::consent::PURPOSES, channels => cxm_domain::consent::CHANNELS,
            flash => q.flash, ctx => ctx, c360 => c360, show => show, channel => channel,
            timeline_channels => channels, folded => folded,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct UnmergeForm {
    identifier: String,
    reason: Option<String>,
}

pub(crate) async fn unmerge(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) =
        match form_post::<UnmergeForm>(&st, req, &format!("/customers/{id}"), false).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let reason = form
        .reason
        .unwrap_or_else(|| "unmerged in the dashboard".into());
    match cxm_app::customers::do_unmerge(&st, &p, &id, &form.identifier, &reason).await {
        Ok(r) => {
            let target = r.profile.map(|p| p.id).unwrap_or(id);
            let flash = format!(
                "Blocked {} and rebuilt identities from {} events.",
                r.blocked, r.events_replayed
            );
            Redirect::to(&format!("/customers/{target}?flash={}", urlencode(&flash)))
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn quarantine(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/quarantine").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let list = match st
        .store
        .run(move |s| cxm_app::customers::quarantine_list(s, &t, 200))
        .await
    {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let entries: Vec<Value> = list.entries.iter().map(|q| serde_json::json!({"when": q.received_at_ms, "code": q.code, "detail": q.detail, "payload": serde_json::to_string_pretty(&q.payload).unwrap_or_default()})).collect();
    let days: Vec<Value> = list
        .days
        .iter()
        .map(|d| serde_json::json!({"day": d.day, "events": d.events, "kept": d.rows_kept, "counted_only": (d.events - d.rows_kept).max(0)}))
        .collect();
    st.pages.render("quarantine.html", context! { title => "Quarantine", page => "quarantine", user => user_ctx(&p), entries => entries, days => days })
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    purpose: String,
    channel: String,
    status: String,
}

pub(crate) async fn record_consent(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) =
        match form_post::<ConsentForm>(&st, req, &format!("/customers/{id}"), false).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    if p.role == cxm_store::Role::Viewer {
        return ApiError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot record consent",
        )
        .into_response();
    }
    let (Some(status), true, true) = (
        cxm_domain::consent::ConsentStatus::parse(&form.status),
        cxm_domain::consent::PURPOSES.contains(&form.purpose.as_str()),
        cxm_domain::consent::CHANNELS.contains(&form.channel.as_str()),
    ) else {
        return ApiError::new(
            ErrorCode::InvalidParameter,
            "unknown purpose, channel or status",
        )
        .into_response();
    };
    let (t, pid, actor) = (p.tenant_id.clone(), id.clone(), p.actor.clone());
    let r = cxm_domain::consent::ConsentRecord {
        purpose: form.purpose,
        channel: form.channel,
        status,
        source: "dashboard".into(),
        actor,
        at_ms: chrono::Utc::now().timestamp_millis(),
    };
    match st.store.run(move |s| s.add_consent(&t, &pid, &r)).await {
        Ok(()) => Redirect::to(&format!(
            "/customers/{id}?flash={}",
            urlencode("Consent recorded.")
        ))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct EraseForm {
    confirm: String,
}

pub(crate) async fn erase_customer(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<EraseForm>(&st, req, &format!("/customers/{id}"), true).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    if form.confirm.trim() != "erase" {
        return ApiError::new(ErrorCode::InvalidParameter, "type erase to confirm").into_response();
    }
    let t = p.tenant_id.clone();
    match cxm_app::blocking(&st, move |s| {
        cxm_app::privacy::erase_customer(s, &t, &id, &p.actor)
    })
    .await
    {
        Ok(e) => {
            let total: u64 = e.removed.values().sum();
            let flash = format!(
                "Erased: {total} records removed or redacted; tombstone {}.",
                e.erasure_id
            );
            Redirect::to(&format!("/customers?flash={}", urlencode(&flash))).into_response()
        }
        Err(e) => e.into_response(),
    }
}
