//! The dashboard: server-rendered pages (minijinja templates compiled into the binary, htmx
//! for live search, Pico CSS), signed in with a session cookie. Assets are vendored; the
//! pages load nothing from anywhere but this server.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{self, Principal, SESSION_COOKIE};
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::logsafe::Field;
use crate::AppState;

const PICO: &[u8] = include_bytes!("../assets/vendor/pico.min.css");
const HTMX: &[u8] = include_bytes!("../assets/vendor/htmx.min.js");
const APP_CSS: &[u8] = include_bytes!("../assets/app.css");
const WIDGET: &[u8] = include_bytes!("../assets/cxm-survey.js");
const JS_YAML: &[u8] = include_bytes!("../assets/vendor/js-yaml.min.js");
const JOURNEY_EDITOR: &[u8] = include_bytes!("../assets/journey-editor.js");
const FAVICON: &[u8] = include_bytes!("../assets/favicon.svg");

pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("../templates/base.html")),
            ("public.html", include_str!("../templates/public.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("overview.html", include_str!("../templates/overview.html")),
            (
                "customers.html",
                include_str!("../templates/customers.html"),
            ),
            (
                "customer_results.html",
                include_str!("../templates/customer_results.html"),
            ),
            ("customer.html", include_str!("../templates/customer.html")),
            (
                "quarantine.html",
                include_str!("../templates/quarantine.html"),
            ),
            ("voc.html", include_str!("../templates/voc.html")),
            ("survey.html", include_str!("../templates/survey.html")),
            ("surveys.html", include_str!("../templates/surveys.html")),
            ("themes.html", include_str!("../templates/themes.html")),
            (
                "survey_builder.html",
                include_str!("../templates/survey_builder.html"),
            ),
            ("keys.html", include_str!("../templates/keys.html")),
            ("users.html", include_str!("../templates/users.html")),
            ("account.html", include_str!("../templates/account.html")),
            ("journeys.html", include_str!("../templates/journeys.html")),
            ("journey.html", include_str!("../templates/journey.html")),
            ("accounts.html", include_str!("../templates/accounts.html")),
            ("alerts.html", include_str!("../templates/alerts.html")),
            ("tickets.html", include_str!("../templates/tickets.html")),
            ("ticket.html", include_str!("../templates/ticket.html")),
            ("agents.html", include_str!("../templates/agents.html")),
            (
                "decisions.html",
                include_str!("../templates/decisions.html"),
            ),
            ("reviews.html", include_str!("../templates/reviews.html")),
            ("verify.html", include_str!("../templates/verify.html")),
            ("step_up.html", include_str!("../templates/step_up.html")),
            ("equity.html", include_str!("../templates/equity.html")),
            ("maturity.html", include_str!("../templates/maturity.html")),
            (
                "experiments.html",
                include_str!("../templates/experiments.html"),
            ),
            (
                "experiment.html",
                include_str!("../templates/experiment.html"),
            ),
        ] {
            env.add_template(name, src).expect("templates compile");
        }
        Pages { env }
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed");
                ApiError::new(ErrorCode::Internal, "the page could not be rendered").into_response()
            }
        }
    }
}

fn asset(body: &'static [u8], ty: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/assets/pico.min.css",
            get(|| async { asset(PICO, "text/css") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(APP_CSS, "text/css") }),
        )
        .route(
            "/assets/htmx.min.js",
            get(|| async { asset(HTMX, "text/javascript") }),
        )
        .route(
            "/assets/cxm-survey.js",
            get(|| async { asset(WIDGET, "text/javascript") }),
        )
        .route(
            "/assets/js-yaml.min.js",
            get(|| async { asset(JS_YAML, "text/javascript") }),
        )
        .route(
            "/assets/journey-editor.js",
            get(|| async { asset(JOURNEY_EDITOR, "text/javascript") }),
        )
        .route(
            "/assets/favicon.svg",
            get(|| async { asset(FAVICON, "image/svg+xml") }),
        )
        // browsers ask for it whatever the page says
        .route(
            "/favicon.ico",
            get(|| async { asset(FAVICON, "image/svg+xml") }),
        )
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(overview))
        .route("/customers", get(customers))
        .route("/customers/{id}", get(customer))
        .route("/customers/{id}/unmerge", post(unmerge))
        .route("/customers/{id}/consent", post(record_consent))
        .route("/settings/signing-keys/rotate", post(rotate_signing_key))
        .route("/customers/{id}/erase", post(erase_customer))
        .route("/quarantine", get(quarantine))
        .route("/voc", get(voc_page))
        .route("/themes", get(themes_page))
        .route("/themes/discover", post(themes_discover))
        .route("/themes/{id}/{action}", post(theme_edit))
        .route("/surveys", get(surveys_page).post(save_survey))
        .route("/surveys/{id}/links", post(survey_link))
        .route(
            "/surveys/build",
            get(crate::builder::new_page).post(crate::builder::save),
        )
        .route("/surveys/{id}/build", get(crate::builder::edit_page))
        .merge(crate::journey_pages::routes())
        .merge(crate::health_pages::routes())
        .merge(crate::agent_pages::routes())
        .merge(crate::experiment_pages::routes())
        .merge(crate::value_pages::routes())
        .merge(crate::ticket_pages::routes())
        .route("/settings/keys", get(keys_page).post(create_key))
        .route("/settings/keys/{id}/revoke", post(revoke_key))
}

/// Either the signed-in user or a redirect to the login page.
// the error is the response to send as is; boxing it would only add noise at every call site
#[allow(clippy::result_large_err)]
pub(crate) async fn session(
    st: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<Principal, Response> {
    match auth::session_principal(st, headers).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(Redirect::to(&format!("/login?next={}", urlencode(here))).into_response()),
        Err(e) => Err(e.into_response()),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A post from our own pages by a signed-in user (an owner or admin when `admin`).
#[allow(clippy::result_large_err)]
pub(crate) async fn signed_post(
    st: &AppState,
    headers: &HeaderMap,
    here: &str,
    admin: bool,
) -> Result<Principal, Response> {
    // that it came from our own pages was checked in front of every route (browser::guard)
    let p = session(st, headers, here).await?;
    if admin {
        p.require_admin()
            .map_err(|e| ApiError::from(e).into_response())?;
    }
    Ok(p)
}

/// [`signed_post`] plus the url-encoded form, with a problem+json answer when it is malformed.
#[allow(clippy::result_large_err)]
pub(crate) async fn form_post<T: serde::de::DeserializeOwned>(
    st: &AppState,
    req: Request,
    here: &str,
    admin: bool,
) -> Result<(Principal, T), Response> {
    let headers = req.headers().clone();
    let p = signed_post(st, &headers, here, admin).await?;
    match Form::<T>::from_request(req, &()).await {
        Ok(Form(f)) => Ok((p, f)),
        Err(e) => Err(ApiError::new(ErrorCode::InvalidParameter, e.body_text()).into_response()),
    }
}

pub(crate) fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub(crate) fn user_ctx(p: &Principal) -> Value {
    serde_json::json!({"email": p.actor, "role": p.role.as_str()})
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path on this site, nothing else. Browsers strip tabs and
/// newlines from URLs and read `\\` as `/`, so `/%09/evil.example` or `/\\evil.example` would
/// leave the site; such a path, and anything with a control character, goes home instead.
fn safe_next(next: Option<&str>) -> String {
    let Some(n) = next else { return "/".into() };
    let decoded = percent_decode(n);
    let leaves = |p: &str| {
        let squeezed: String = p.chars().filter(|c| !c.is_control() && *c != ' ').collect();
        !squeezed.starts_with('/')
            || squeezed.starts_with("//")
            || squeezed.starts_with("/\\")
            || squeezed.contains('\\')
    };
    if n.len() > 2000
        || n.chars().any(|c| c.is_control() || c.is_whitespace())
        || decoded.chars().any(char::is_control)
        || leaves(n)
        || leaves(&decoded)
    {
        return "/".into();
    }
    n.to_string()
}

/// `%XX` escapes decoded (as a browser may before reading the path); bad escapes stay.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn login_page(State(st): State<Arc<AppState>>, Query(q): Query<NextQuery>) -> Response {
    st.pages.render(
        "login.html",
        context! { next => safe_next(q.next.as_deref()), email => "", error => None::<String> },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn login(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let client = crate::listener::client_addr(req.extensions()).map(|a| a.ip());
    let form = match Form::<LoginForm>::from_request(req, &()).await {
        Ok(Form(f)) => f,
        Err(e) => {
            return ApiError::new(
                ErrorCode::InvalidParameter,
                format!("invalid login form: {}", e.body_text()),
            )
            .into_response()
        }
    };
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_lowercase();
    let refused = |status: StatusCode, message: String, retry: Option<u64>| {
        let mut r = st.pages.render(
            "login.html",
            context! { next => next.clone(), email => email.clone(), error => Some(message) },
        );
        *r.status_mut() = status;
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    };
    let user = match crate::sign_in::attempt(&st, &email, form.password, client).await {
        Ok(u) => u,
        Err(crate::sign_in::Refused::Wrong) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "Wrong email or password.".into(),
                None,
            )
        }
        Err(crate::sign_in::Refused::Throttled(wait)) => {
            let secs = wait.as_secs().max(1);
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins. Try again in {}.",
                    if secs < 90 {
                        format!("{secs} seconds")
                    } else {
                        format!("{} minutes", secs.div_ceil(60))
                    }
                ),
                Some(secs),
            );
        }
        Err(crate::sign_in::Refused::Busy) => {
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Many people are signing in right now. Try again in a moment.".into(),
                Some(1),
            )
        }
        Err(crate::sign_in::Refused::Store(e)) => return ApiError::from(e).into_response(),
    };
    let (token, hash) = auth::new_session_token();
    let expires = chrono::Utc::now().timestamp_millis() + st.config.session_ttl.as_millis() as i64;
    let uid = user.id.clone();
    if let Err(e) = st
        .store
        .run(move |s| s.insert_session(&hash, &uid, expires))
        .await
    {
        return ApiError::from(e).into_response();
    }
    tracing::info!(email = %Field(&user.email), "signed in");
    let secure = if st.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        st.config.session_ttl.as_secs()
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        let h = auth::sha256_hex(&token);
        let _ = st.store.run(move |s| s.delete_session(&h)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cxm_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    r
}

#[derive(Serialize)]
struct Segment {
    channel: String,
    events: i64,
    y: f64,
    h: f64,
}

#[derive(Serialize)]
struct Bar {
    day: String,
    label: Option<String>,
    x: f64,
    segments: Vec<Segment>,
}

#[derive(Serialize)]
struct Tick {
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Chart {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    bar_width: f64,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    channels: Vec<String>,
}

fn nice_max(v: i64) -> i64 {
    let v = v.max(1) as f64;
    let mag = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|s| s * mag >= v)
        .unwrap_or(10.0);
    (step * mag).ceil() as i64
}

/// A stacked bar chart of events per day by channel, laid out here so the page needs no
/// charting script.
fn chart(rows: &[cxm_store::DayChannelCount], days: u32, today: chrono::NaiveDate) -> Chart {
    let (width, height, left, top, bottom) = (900.0, 260.0, 56.0, 10.0, 24.0);
    let mut per_day: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        *per_day
            .entry(r.day.clone())
            .or_default()
            .entry(r.channel.clone())
            .or_default() += r.events;
    }
    let max = nice_max(
        per_day
            .values()
            .map(|m| m.values().sum::<i64>())
            .max()
            .unwrap_or(0),
    );
    let plot_h = height - top - bottom;
    let slot = (width - left) / f64::from(days);
    let bar_width = (slot * 0.8).max(1.0);
    let channels: Vec<String> = cxm_domain::Channel::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .filter(|c| per_day.values().any(|m| m.contains_key(c)))
        .collect();
    let mut bars = vec![];
    if !per_day.is_empty() {
        for i in 0..days {
            let day = today - chrono::Duration::days(i64::from(days - 1 - i));
            let key = day.format("%Y-%m-%d").to_string();
            let x = left + f64::from(i) * slot + (slot - bar_width) / 2.0;
            let mut y = top + plot_h;
            let mut segments = vec![];
            if let Some(m) = per_day.get(&key) {
                for c in &channels {
                    if let Some(n) = m.get(c) {
                        let h = *n as f64 / max as f64 * plot_h;
                        y -= h;
                        segments.push(Segment {
                            channel: c.clone(),
                            events: *n,
                            y,
                            h,
                        });
                    }
                }
            }
            let label = (i % 5 == 0 || i == days - 1).then(|| day.format("%b %d").to_string());
            bars.push(Bar {
                day: key,
                label,
                x,
                segments,
            });
        }
    }
    let ticks = [0, max / 2, max]
        .into_iter()
        .map(|v| Tick {
            y: top + plot_h - v as f64 / max as f64 * plot_h,
            label: v.to_string(),
        })
        .collect();
    Chart {
        width,
        height,
        left,
        top,
        bar_width,
        bars,
        ticks,
        channels,
    }
}

async fn overview(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let days = 30;
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now();
    let o = match st
        .store
        .run(move |s| s.overview(&t, days, now.timestamp_millis()))
        .await
    {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let window_events: i64 = o.by_day_channel.iter().map(|r| r.events).sum();
    let chart = chart(&o.by_day_channel, days, now.date_naive());
    st.pages.render("overview.html", context! { title => "Overview", page => "overview", user => user_ctx(&p), overview => o, chart => chart, days => days, window_events => window_events, tenant => p.tenant_id })
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    flash: Option<String>,
}

async fn customers(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let p = match session(&st, &headers, "/customers").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let query = q.q.unwrap_or_default();
    let (t, q2) = (p.tenant_id.clone(), query.clone());
    let found = match st.store.run(move |s| s.search_profiles(&t, &q2, 50)).await {
        Ok(f) => f,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let customers: Vec<Value> = found.iter().map(|c| serde_json::json!({"id": c.id, "display": c.display, "event_count": c.event_count, "last_seen": fmt_ms(c.last_seen_ms)})).collect();
    // htmx asks for the results only; a plain GET (no JS) gets the whole page
    let template = if headers.contains_key("hx-request") {
        "customer_results.html"
    } else {
        "customers.html"
    };
    st.pages.render(template, context! { title => "Customers", page => "customers", user => user_ctx(&p), customers => customers, q => query, flash => q.flash })
}

#[derive(Deserialize)]
struct CustomerQuery {
    before: Option<String>,
    flash: Option<String>,
}

fn event_details(e: &cxm_store::StoredEvent) -> String {
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

async fn customer(
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
        .map(crate::api::parse_cursor)
        .transpose()
    {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let ctx = match crate::api::build_context(&st, &p.tenant_id, &id, 100, before).await {
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
                        "since": by.map(|r| format!("{} {} via {}", r.status.as_str(), fmt_ms(r.at_ms), r.source))})
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
    let timeline: Vec<Value> = ctx
        .timeline
        .iter()
        .map(|e| serde_json::json!({"when": fmt_ms(e.timestamp_ms), "channel": e.channel, "name": e.name.clone().unwrap_or_else(|| e.event_type.clone()), "details": event_details(e)}))
        .collect();
    let switch_events: Vec<Value> = ctx
        .channel_switch
        .as_ref()
        .map(|s| s.previous_channel_events.iter().map(|e| serde_json::json!({"when": fmt_ms(e.timestamp_ms), "name": e.name.clone().unwrap_or_else(|| e.event_type.clone())})).collect())
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
            serde_json::json!({"when": fmt_ms(l.at_ms), "what": what, "identifier": l.identifier.as_ref().map(|i| format!("{}:{}", i.kind, i.value)), "cause": cause})
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
            first_seen => fmt_ms(ctx.profile.first_seen_ms), last_seen => fmt_ms(ctx.profile.last_seen_ms),
            timeline => timeline, switch_events => switch_events, ledger => ledger, traits => traits,
            can_admin => p.role.can_administer(), can_edit => p.role != cxm_store::Role::Viewer,
            consent => consent, purposes => cxm_domain::consent::PURPOSES, channels => cxm_domain::consent::CHANNELS,
            flash => q.flash, ctx => ctx,
        },
    )
}

#[derive(Deserialize)]
struct UnmergeForm {
    identifier: String,
    reason: Option<String>,
}

async fn unmerge(
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
    match crate::api::do_unmerge(&st, &p, &id, &form.identifier, &reason).await {
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

async fn quarantine(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/quarantine").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let list = match st
        .store
        .run(move |s| crate::api::quarantine_list(s, &t, 200))
        .await
    {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let entries: Vec<Value> = list.entries.iter().map(|q| serde_json::json!({"when": fmt_ms(q.received_at_ms), "code": q.code, "detail": q.detail, "payload": serde_json::to_string_pretty(&q.payload).unwrap_or_default()})).collect();
    let days: Vec<Value> = list
        .days
        .iter()
        .map(|d| serde_json::json!({"day": d.day, "events": d.events, "kept": d.rows_kept, "counted_only": (d.events - d.rows_kept).max(0)}))
        .collect();
    st.pages.render("quarantine.html", context! { title => "Quarantine", page => "quarantine", user => user_ctx(&p), entries => entries, days => days })
}

const EXAMPLE_SURVEY: &str = r#"{
  "name": "How did we do?",
  "questions": [
    {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true},
    {"id": "why", "type": "text", "prompt": "What is the main reason for your score?"}
  ],
  "max_follow_ups": 2,
  "avoid_topics": []
}"#;

pub(crate) async fn render_surveys(
    st: &AppState,
    p: &Principal,
    extra: Value,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let loaded = st
        .store
        .run(move |s| {
            let list = s.list_surveys(&t)?;
            let mut defs = std::collections::HashMap::new();
            for x in &list {
                if let Some((_, d)) = s.survey(&t, &x.survey_id, None)? {
                    defs.insert(x.survey_id.clone(), d);
                }
            }
            Ok((list, defs, s.invitation_counts(&t)?))
        })
        .await;
    let (surveys, defs, counts) = match loaded {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let surveys: Vec<Value> = surveys
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["response_rate"] = serde_json::json!((s.displays > 0).then(|| (s.responses as f64
                / s.displays as f64
                * 1000.0)
                .round()
                / 10.0));
            let targeting = defs
                .get(&s.survey_id)
                .and_then(|d| serde_json::from_str::<cxm_domain::survey::SurveyDefinition>(d).ok())
                .and_then(|d| d.targeting)
                .map(|t| {
                    let mut parts = vec![format!("after {}", t.events.join(" or "))];
                    if !t.channels.is_empty() {
                        parts.push(format!("on {}", t.channels.join("/")));
                    }
                    if !t.tiers.is_empty() {
                        parts.push(format!("tier {}", t.tiers.join("/")));
                    }
                    if t.sample_percent < 100.0 {
                        parts.push(format!("{}% sampled", t.sample_percent));
                    }
                    parts.push(format!("via {}", t.deliver_via));
                    parts.join(", ")
                });
            v["targeting"] = serde_json::json!(targeting);
            let mut by_status = serde_json::Map::new();
            for (sid, status, n) in &counts {
                if sid == &s.survey_id {
                    by_status.insert(status.clone(), (*n).into());
                }
            }
            v["invitations"] = Value::Object(by_status);
            v
        })
        .collect();
    let mut r = st.pages.render(
        "surveys.html",
        context! {
            title => "Surveys", page => "surveys", user => user_ctx(p), surveys => surveys, can_admin => p.role.can_administer(),
            error => extra.get("error").cloned(), link => extra.get("link").cloned(), saved => extra.get("saved").cloned(),
            form_id => extra.get("form_id").and_then(Value::as_str).unwrap_or("post-ticket"),
            form_def => extra.get("form_def").and_then(Value::as_str).unwrap_or(EXAMPLE_SURVEY),
        },
    );
    *r.status_mut() = status;
    r
}

async fn surveys_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers, "/surveys").await {
        Ok(p) => render_surveys(&st, &p, serde_json::json!({}), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct SurveyForm {
    survey_id: String,
    definition: String,
}

async fn save_survey(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<SurveyForm>(&st, req, "/surveys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let keep = |error: String| serde_json::json!({"error": error, "form_id": form.survey_id, "form_def": form.definition});
    let id_ok = !form.survey_id.is_empty()
        && form.survey_id.len() <= 64
        && form
            .survey_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return render_surveys(
            &st,
            &p,
            keep("The survey id must be 1 to 64 letters, digits, - or _.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let def: cxm_domain::survey::SurveyDefinition = match serde_json::from_str(&form.definition) {
        Ok(d) => d,
        Err(e) => {
            return render_surveys(
                &st,
                &p,
                keep(format!(
                    "The definition is not valid JSON for a survey: {e}"
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    if let Err(e) = def.validate() {
        return render_surveys(
            &st,
            &p,
            keep(format!("The definition has a problem: {e}")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let json = serde_json::to_string(&def).unwrap_or_default();
    let (t, id, name) = (
        p.tenant_id.clone(),
        form.survey_id.clone(),
        def.name.clone(),
    );
    match st
        .store
        .run(move |s| s.save_survey(&t, &id, &name, &json))
        .await
    {
        Ok(v) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"saved": {"survey_id": form.survey_id, "version": v}}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct LinkForm {
    identifier: Option<String>,
}

async fn survey_link(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<LinkForm>(&st, req, "/surveys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let identifier = form
        .identifier
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    match crate::surveys::new_link(&st, &p.tenant_id, &id, identifier, None).await {
        Ok(l) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"link": {"survey_id": id, "version": l.version, "url": l.url}}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"error": e.detail}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn voc_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/voc").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut metrics = vec![];
    let q = |interval: &str| crate::voc::MetricQuery {
        from: None,
        to: None,
        interval: Some(interval.into()),
        by: None,
    };
    for (metric, title) in [
        ("nps", "NPS"),
        ("csat", "CSAT (% satisfied)"),
        ("ces", "CES (1-7, higher is easier)"),
    ] {
        match crate::voc::report(&st.store, &p.tenant_id, metric, &q("week")).await {
            Ok(r) => {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["title"] = title.into();
                metrics.push(v);
            }
            Err(e) => return e.into_response(),
        }
    }
    let trend = nps_chart(&metrics[0]["series"]);
    let t = p.tenant_id.clone();
    let themes =
        match crate::voc::blocking(&st, move |s| crate::themes::list(s, &t, 90, false)).await {
            Ok(mut t) => {
                t.themes.truncate(6);
                serde_json::to_value(&t).unwrap_or_default()
            }
            Err(e) => return e.into_response(),
        };
    st.pages.render("voc.html", context! { title => "Voice of the customer", page => "voc", user => user_ctx(&p), metrics => metrics, trend => trend, themes => themes })
}

/// Bars from zero to each week's NPS on a -100..100 axis, with the interval as a whisker.
fn nps_chart(series: &Value) -> Value {
    let (width, height, left, top, bottom) = (900.0, 240.0, 48.0, 10.0, 24.0);
    let plot = height - top - bottom;
    let y = |v: f64| top + (100.0 - v.clamp(-100.0, 100.0)) / 200.0 * plot;
    let points = series.as_array().cloned().unwrap_or_default();
    let slot = (width - left) / points.len().max(1) as f64;
    let bar_width = (slot * 0.7).clamp(2.0, 40.0);
    let bars: Vec<Value> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v = p["value"].as_f64().unwrap_or(0.0);
            let (y0, y1) = (y(0.0), y(v));
            serde_json::json!({
                "x": left + i as f64 * slot + (slot - bar_width) / 2.0, "y": y0.min(y1), "h": (y0 - y1).abs().max(1.0),
                "value": v, "n": p["n"], "ci_low": p["ci_low"], "ci_high": p["ci_high"], "period": p["period"],
                "ci_top": y(p["ci_high"].as_f64().unwrap_or(v)), "ci_bottom": y(p["ci_low"].as_f64().unwrap_or(v)),
                "label": p["period"].as_str().map(|s| s.get(5..).unwrap_or(s).to_string()),
            })
        })
        .collect();
    let ticks: Vec<Value> = [100.0, 50.0, 0.0, -50.0, -100.0]
        .iter()
        .map(|v| serde_json::json!({"y": y(*v), "label": format!("{v}")}))
        .collect();
    serde_json::json!({"width": width, "height": height, "left": left, "bar_width": bar_width, "bars": bars, "ticks": ticks})
}

async fn render_keys(st: &AppState, p: &Principal, created: Option<Value>) -> Response {
    let t = p.tenant_id.clone();
    let keys = match st.store.run(move |s| s.list_keys(&t)).await {
        Ok(k) => k,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let keys: Vec<Value> = keys
        .iter()
        .rev()
        .map(|k| serde_json::json!({"id": k.id, "name": k.name, "kind": k.kind.as_str(), "prefix": k.prefix, "created": fmt_ms(k.created_at_ms), "status": if k.revoked_at_ms.is_some() { "revoked" } else { "active" }}))
        .collect();
    let t = p.tenant_id.clone();
    let signing: Vec<Value> = st
        .store
        .run(move |s| s.signing_keys(&t))
        .await
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let status = match (k.revoked_at_ms, k.retired_at_ms) {
                (Some(_), _) => format!("revoked: {}", k.revoke_reason.clone().unwrap_or_default()),
                (None, Some(_)) => "retired (still verifies)".to_string(),
                (None, None) => "signing".to_string(),
            };
            serde_json::json!({"kid": k.kid, "created": fmt_ms(k.created_at_ms), "status": status})
        })
        .collect();
    st.pages.render("keys.html", context! { title => "API keys", page => "keys", user => user_ctx(p), keys => keys, created => created,
        can_admin => p.role.can_administer(), signing => signing, tenant => p.tenant_id })
}

async fn keys_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers, "/settings/keys").await {
        Ok(p) => render_keys(&st, &p, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct KeyForm {
    name: String,
    kind: String,
}

async fn create_key(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<KeyForm>(&st, req, "/settings/keys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(kind) =
        cxm_store::KeyKind::parse(&form.kind).filter(|k| *k != cxm_store::KeyKind::Agent)
    else {
        return ApiError::new(ErrorCode::InvalidParameter, "kind must be write or secret")
            .into_response();
    };
    let name = form.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return ApiError::new(
            ErrorCode::InvalidParameter,
            "name must be 1 to 100 characters",
        )
        .into_response();
    }
    let (plain, record) = auth::generate_key(&p.tenant_id, kind, &name);
    let r = record.clone();
    if let Err(e) = st.store.run(move |s| s.insert_key(&r)).await {
        return ApiError::from(e).into_response();
    }
    tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %record.id, "key created in the dashboard");
    // shown once, on this response only; the page is not cached
    let mut r = render_keys(
        &st,
        &p,
        Some(serde_json::json!({"key": plain, "kind": kind.as_str()})),
    )
    .await;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn revoke_key(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let p = match signed_post(&st, &headers, "/settings/keys", true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let id2 = id.clone();
    match st.store.run(move |s| s.revoke_key(&t, &id2)).await {
        Ok(true) => {
            st.keys.invalidate_all();
            tracing::info!(tenant = %p.tenant_id, actor = %Field(&p.actor), key = %Field(&id), "key revoked in the dashboard");
            Redirect::to("/settings/keys").into_response()
        }
        Ok(false) => {
            ApiError::new(ErrorCode::NotFound, format!("no active key {id}")).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_file_is_registered() {
        let pages = Pages::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for f in std::fs::read_dir(dir).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                pages.env.get_template(&name).is_ok(),
                "{name} is not registered in Pages::new"
            );
        }
    }

    /// The Content-Security-Policy allows no inline script or style: no template may carry
    /// one, or the browser would drop it.
    #[test]
    fn no_template_has_inline_script_or_style() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let attr = regex_lite_attr();
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(!text.contains("style="), "{name} has a style attribute");
            assert!(!text.contains("<style"), "{name} has a style element");
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..text[i..].find('>').map_or(text.len(), |e| i + e)];
                assert!(tag.contains(" src="), "{name} has an inline script");
            }
            for a in attr {
                assert!(!text.contains(a), "{name} has an inline event handler {a}");
            }
        }
    }

    fn regex_lite_attr() -> &'static [&'static str] {
        &[
            " onclick=",
            " onload=",
            " onsubmit=",
            " onchange=",
            " oninput=",
            " onerror=",
            "javascript:",
        ]
    }

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(safe_next(Some("/customers/p_1")), "/customers/p_1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        for bad in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%5Cevil.example",
            "/%2F/evil.example",
            " //evil.example",
            "/\u{0}x",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/themes?days=30")), "/themes?days=30");
    }

    #[test]
    fn chart_scales_to_a_nice_maximum() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(73), 100);
        assert_eq!(nice_max(1800), 2000);
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let rows = vec![
            cxm_store::DayChannelCount {
                day: "2026-11-25".into(),
                channel: "chat".into(),
                events: 30,
            },
            cxm_store::DayChannelCount {
                day: "2026-11-25".into(),
                channel: "voice".into(),
                events: 10,
            },
        ];
        let c = chart(&rows, 30, today);
        assert_eq!(c.bars.len(), 30);
        let last = c.bars.last().unwrap();
        let total_h: f64 = last.segments.iter().map(|s| s.h).sum();
        assert!((total_h - (260.0 - 10.0 - 24.0) * 40.0 / 50.0).abs() < 1e-9);
        assert!(chart(&[], 30, today).bars.is_empty());
    }
}

const SPARK: (f64, f64) = (140.0, 28.0);

/// Polyline points for a weekly-volume sparkline, scaled to the theme's own peak.
fn sparkline(trend: &[crate::themes::TrendPoint]) -> String {
    let (w, h) = SPARK;
    let peak = trend.iter().map(|p| p.answers).max().unwrap_or(0).max(1) as f64;
    let step = w / (trend.len().max(2) - 1) as f64;
    trend
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - 2.0 - p.answers as f64 / peak * (h - 4.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn render_themes(
    st: &Arc<AppState>,
    p: &Principal,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let list = match crate::voc::blocking(st, move |s| crate::themes::list(s, &t, 90, false)).await
    {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let sparks: std::collections::HashMap<String, String> = list
        .themes
        .iter()
        .map(|t| (t.id.clone(), sparkline(&t.trend)))
        .collect();
    let mut themes = serde_json::to_value(&list).unwrap_or_default();
    if let Some(edits) = themes["edits"].as_array_mut() {
        for e in edits {
            e["when"] = fmt_ms(e["created_at_ms"].as_i64().unwrap_or(0)).into();
        }
    }
    let can_edit = p.require_analyst().is_ok();
    let mut r = st.pages.render(
        "themes.html",
        context! { title => "Themes", page => "themes", user => user_ctx(p), themes => themes, sparks => sparks, spark => context! { width => SPARK.0, height => SPARK.1 }, can_edit => can_edit, flash => flash, error => error },
    );
    *r.status_mut() = status;
    r
}

async fn themes_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers, "/themes").await {
        Ok(p) => render_themes(&st, &p, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

async fn themes_discover(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match signed_post(&st, &headers, "/themes", false).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let outcome = crate::voc::blocking(&st, move |s| crate::themes::discover(s, &t, 90, None))
        .await
        .map(|d| {
            format!(
                "Discovered {} themes in {} answers: {} known, {} new, {} retired, {} in noise.",
                d.matched + d.created,
                d.answers,
                d.matched,
                d.created,
                d.retired,
                d.noise
            )
        });
    theme_outcome(&st, &p, outcome.map_err(Into::into)).await
}

/// The themes page after an analyst's action: its message, or the problem with the request.
async fn theme_outcome(
    st: &Arc<AppState>,
    p: &Principal,
    outcome: Result<String, ApiError>,
) -> Response {
    match outcome {
        Ok(msg) => render_themes(st, p, Some(msg), None, StatusCode::OK).await,
        Err(e) if matches!(e.code, ErrorCode::InvalidParameter | ErrorCode::NotFound) => {
            render_themes(
                st,
                p,
                None,
                Some(e.detail),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct ThemeForm {
    label: Option<String>,
    into: Option<String>,
    terms: Option<String>,
}

async fn theme_edit(
    State(st): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<ThemeForm>(&st, req, "/themes", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let edit = match (action.as_str(), form) {
        (
            "rename",
            ThemeForm {
                label: Some(label), ..
            },
        ) => crate::themes::EditRequest::Rename { label },
        (
            "merge",
            ThemeForm {
                into: Some(into), ..
            },
        ) => crate::themes::EditRequest::Merge { into },
        (
            "split",
            ThemeForm {
                terms: Some(terms),
                label: Some(label),
                ..
            },
        ) => crate::themes::EditRequest::Split {
            terms: terms
                .split([',', ' '])
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
            label,
        },
        ("rename" | "merge" | "split", _) => {
            return ApiError::new(ErrorCode::InvalidParameter, "the form is missing a field")
                .into_response()
        }
        _ => {
            return ApiError::new(ErrorCode::NotFound, format!("no theme action {action:?}"))
                .into_response()
        }
    };
    let (t, actor, edit2) = (p.tenant_id.clone(), p.actor.clone(), edit.clone());
    let outcome = crate::voc::blocking(&st, move |s| {
        crate::themes::edit(s, &t, &id, &edit2, &actor)
    })
    .await
    .map(|o| match edit {
        crate::themes::EditRequest::Rename { label } => format!("Renamed to {label}."),
        crate::themes::EditRequest::Merge { .. } => format!("Merged; {} answers moved.", o.moved),
        crate::themes::EditRequest::Split { label, .. } => {
            format!("Split out {label}; {} answers moved.", o.moved)
        }
    });
    theme_outcome(&st, &p, outcome.map_err(Into::into)).await
}

#[derive(Deserialize)]
struct ConsentForm {
    purpose: String,
    channel: String,
    status: String,
}

async fn record_consent(
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
struct EraseForm {
    confirm: String,
}

async fn erase_customer(
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
    match crate::voc::blocking(&st, move |s| {
        crate::privacy::erase_customer(s, &t, &id, &p.actor)
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

async fn rotate_signing_key(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match signed_post(&st, &headers, "/settings/keys", true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    let made = crate::voc::blocking(&st, move |s| {
        s.add_signing_key(&t, &crate::provenance::new_key(), &actor)?;
        Ok(())
    })
    .await;
    match made {
        Ok(()) => Redirect::to("/settings/keys").into_response(),
        Err(e) => e.into_response(),
    }
}
