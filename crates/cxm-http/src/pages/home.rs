//! Home: the brief each role decides on. A CX leader's by default (revenue at risk, growth
//! potential, the North Star of the tenant's maturity stage, scores with their n, what
//! changed this week); a support lead's (tickets about to miss their SLA, reviews, effort
//! and resolution); a customer success manager's (at-risk accounts by ARR, their alerts,
//! expansion). The choice is kept in a cookie; a tenant with no data gets where to start.

use super::*;

/// The brief's layouts, by who reads it.
const VIEWS: &[(&str, &str)] = &[
    ("leader", "CX leader"),
    ("support", "Support lead"),
    ("success", "Customer success"),
];
const VIEW_COOKIE: &str = "cxm_home";

#[derive(Deserialize)]
pub(crate) struct HomeQuery {
    view: Option<String>,
}

/// The view a cookie remembers, when it names one.
fn remembered(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(VIEW_COOKIE)?.strip_prefix('='))
        .find_map(|v| VIEWS.iter().find(|(k, _)| *k == v).map(|(k, _)| *k))
}

pub(crate) async fn home(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HomeQuery>,
) -> Response {
    let p = match session(&st, &headers, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let asked = match q.view.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match VIEWS.iter().find(|(k, _)| *k == v) {
            Some((k, _)) => Some(*k),
            None => {
                return ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("view must be leader, support or success, not {v:?}"),
                )
                .into_response()
            }
        },
    };
    let view = asked.or_else(|| remembered(&headers)).unwrap_or("leader");
    let brief = match cxm_app::home::brief(&st.app, &p.0).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // the Host was checked against the allowed hosts before any route ran
    let origin = st.config.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost:8080");
        format!("http://{host}")
    });
    let views: Vec<serde_json::Value> = VIEWS
        .iter()
        .map(|(k, label)| serde_json::json!({"key": k, "label": label, "current": *k == view}))
        .collect();
    let mut r = st.pages.render(
        "home.html",
        context! { title => "Home", page => "home", user => user_ctx(&p), brief => brief,
        now_ms => chrono::Utc::now().timestamp_millis(), origin => origin, view => view, views => views },
    );
    if asked.is_some() {
        let cookie =
            format!("{VIEW_COOKIE}={view}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}
