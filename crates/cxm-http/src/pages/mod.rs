//! The dashboard: server-rendered pages (minijinja templates compiled into the binary, htmx
//! for live search, Pico CSS), signed in with a session cookie. Assets are vendored; the
//! pages load nothing from anywhere but this server.

pub mod agents;
pub mod builder;
mod cluster;
pub(crate) mod csv;
mod customers;
mod data;
pub(crate) mod errors;
pub mod experiments;
mod feedback;
pub mod format;
pub mod health;
mod home;
pub mod journeys;
pub(crate) mod range;
mod responses;
mod settings;
mod sign_in;
pub mod tickets;
pub mod users;
pub mod value;
mod workspace;

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

use crate::auth;
use crate::auth::Principal;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use cxm_app::auth::SESSION_COOKIE;
use cxm_app::locale::Locale;
use cxm_app::logsafe::Field;

// the route table below names every page's handlers
use customers::*;
use data::*;
use feedback::*;
use home::*;
use responses::*;
use settings::*;
use sign_in::*;
use workspace::*;

const PICO: &[u8] = include_bytes!("../../assets/vendor/pico.min.css");
const HTMX: &[u8] = include_bytes!("../../assets/vendor/htmx.min.js");
const APP_CSS: &[u8] = include_bytes!("../../assets/app.css");
const WIDGET: &[u8] = include_bytes!("../../assets/cxm-survey.js");
const JS_YAML: &[u8] = include_bytes!("../../assets/vendor/js-yaml.min.js");
const JOURNEY_EDITOR: &[u8] = include_bytes!("../../assets/journey-editor.js");
const FAVICON: &[u8] = include_bytes!("../../assets/favicon.svg");

pub struct Pages {
    env: Environment<'static>,
    /// Each tenant's currency and time zone, read once a minute at most: every page formats
    /// with them.
    locales: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Locale)>>,
}

/// How long a tenant's locale is trusted before it is read again (another node may change it).
const LOCALE_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("public.html", include_str!("../../templates/public.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("home.html", include_str!("../../templates/home.html")),
            ("data.html", include_str!("../../templates/data.html")),
            (
                "account_360.html",
                include_str!("../../templates/account_360.html"),
            ),
            ("error.html", include_str!("../../templates/error.html")),
            (
                "workspace.html",
                include_str!("../../templates/workspace.html"),
            ),
            (
                "customers.html",
                include_str!("../../templates/customers.html"),
            ),
            (
                "customer_results.html",
                include_str!("../../templates/customer_results.html"),
            ),
            (
                "customer.html",
                include_str!("../../templates/customer.html"),
            ),
            (
                "quarantine.html",
                include_str!("../../templates/quarantine.html"),
            ),
            ("voc.html", include_str!("../../templates/voc.html")),
            (
                "responses.html",
                include_str!("../../templates/responses.html"),
            ),
            (
                "range_picker.html",
                include_str!("../../templates/range_picker.html"),
            ),
            ("survey.html", include_str!("../../templates/survey.html")),
            ("surveys.html", include_str!("../../templates/surveys.html")),
            ("themes.html", include_str!("../../templates/themes.html")),
            (
                "survey_builder.html",
                include_str!("../../templates/survey_builder.html"),
            ),
            ("keys.html", include_str!("../../templates/keys.html")),
            ("users.html", include_str!("../../templates/users.html")),
            ("account.html", include_str!("../../templates/account.html")),
            (
                "journeys.html",
                include_str!("../../templates/journeys.html"),
            ),
            ("journey.html", include_str!("../../templates/journey.html")),
            (
                "accounts.html",
                include_str!("../../templates/accounts.html"),
            ),
            ("alerts.html", include_str!("../../templates/alerts.html")),
            ("tickets.html", include_str!("../../templates/tickets.html")),
            ("ticket.html", include_str!("../../templates/ticket.html")),
            ("agents.html", include_str!("../../templates/agents.html")),
            (
                "decisions.html",
                include_str!("../../templates/decisions.html"),
            ),
            ("reviews.html", include_str!("../../templates/reviews.html")),
            ("verify.html", include_str!("../../templates/verify.html")),
            ("step_up.html", include_str!("../../templates/step_up.html")),
            ("equity.html", include_str!("../../templates/equity.html")),
            ("cluster.html", include_str!("../../templates/cluster.html")),
            (
                "maturity.html",
                include_str!("../../templates/maturity.html"),
            ),
            (
                "experiments.html",
                include_str!("../../templates/experiments.html"),
            ),
            (
                "experiment.html",
                include_str!("../../templates/experiment.html"),
            ),
        ] {
            env.add_template(name, src).expect("templates compile");
        }
        format::register(&mut env);
        Pages {
            env,
            locales: Default::default(),
        }
    }

    fn cached_locale(&self, tenant: &str) -> Option<Locale> {
        let m = self.locales.lock().unwrap_or_else(|p| p.into_inner());
        m.get(tenant)
            .filter(|(at, _)| at.elapsed() < LOCALE_FRESH)
            .map(|(_, l)| l.clone())
    }

    /// Forgets a tenant's locale, so the next page reads the one just saved.
    pub(crate) fn forget_locale(&self, tenant: &str) {
        self.locales
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    fn keep_locale(&self, tenant: &str, l: Locale) {
        self.locales
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), (std::time::Instant::now(), l));
    }

    /// Renders a page with the signed-in tenant's locale (`user.tenant` in the context) for
    /// the formatting filters.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        let tenant = ctx
            .get_attr("user")
            .ok()
            .and_then(|u| u.get_attr("tenant").ok())
            .and_then(|t| t.as_str().map(str::to_string));
        let locale = tenant
            .and_then(|t| self.cached_locale(&t))
            .unwrap_or_default();
        let ctx = context! { locale => locale, ..ctx };
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
        .route("/", get(home))
        .route("/settings/data", get(data_page))
        .route("/settings/cluster", get(cluster::cluster_page))
        .route(
            "/settings/workspace",
            get(workspace_page).post(save_workspace),
        )
        .route("/customers", get(customers))
        .route("/customers.csv", get(customers_csv))
        .route("/customers/{id}", get(customer))
        .route("/customers/{id}/unmerge", post(unmerge))
        .route("/customers/{id}/consent", post(record_consent))
        .route("/settings/signing-keys/rotate", post(rotate_signing_key))
        .route("/customers/{id}/erase", post(erase_customer))
        .route("/quarantine", get(quarantine))
        .route("/voc", get(voc_page))
        .route("/responses", get(responses_page))
        .route("/responses.csv", get(responses_csv))
        .route("/themes", get(themes_page))
        .route("/themes/discover", post(themes_discover))
        .route("/themes/{id}/{action}", post(theme_edit))
        .route("/surveys", get(surveys_page).post(save_survey))
        .route("/surveys/{id}/links", post(survey_link))
        .route(
            "/surveys/build",
            get(crate::pages::builder::new_page).post(crate::pages::builder::save),
        )
        .route("/surveys/{id}/build", get(crate::pages::builder::edit_page))
        .merge(crate::pages::journeys::routes())
        .merge(crate::pages::health::routes())
        .merge(crate::pages::agents::routes())
        .merge(crate::pages::experiments::routes())
        .merge(crate::pages::value::routes())
        .merge(crate::pages::tickets::routes())
        .merge(crate::pages::users::routes())
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
        Ok(Some(p)) => {
            if st.pages.cached_locale(&p.tenant_id).is_none() {
                let t = p.tenant_id.clone();
                let l = cxm_app::blocking(st, move |s| cxm_app::locale::locale(s, &t))
                    .await
                    .map_err(|e| ApiError::from(e).into_response())?;
                st.pages.keep_locale(&p.tenant_id, l);
            }
            Ok(p)
        }
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

/// A list page's filters as a query string, empty fields left out, for links (the next page,
/// the CSV) that keep them.
pub(crate) fn filter_query(fields: &[(&str, &Option<String>)]) -> String {
    fields
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", format::segment(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn user_ctx(p: &Principal) -> Value {
    serde_json::json!({"email": p.actor, "role": p.role.as_str(), "tenant": p.tenant_id})
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
