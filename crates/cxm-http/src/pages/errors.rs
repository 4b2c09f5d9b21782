//! Dashboard errors as pages: a person who follows a dead link, lacks the role or hits a
//! fault sees a page in the dashboard's frame that says what happened and where to go, not a
//! problem+json document. The API, the ingest routes and the hosted survey keep their JSON.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use std::sync::Arc;

use crate::AppState;

/// Paths whose errors stay problem+json whatever the client accepts.
fn machine_path(path: &str) -> bool {
    [
        "/api/", "/v1/", "/assets/", "/s/", "/healthz", "/readyz", "/metrics",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// A problem document is small; anything larger is passed on untouched.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

pub(crate) async fn html_errors(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"));
    if !wants_html || !is_problem || machine_path(&path) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_PROBLEM_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let status = parts.status;
    let (heading, advice) = match status.as_u16() {
        404 => ("Not found", "The link may be old, or the item was removed."),
        403 => ("Not allowed", "Your role cannot do this. An owner or admin can change your role."),
        400 | 409 | 422 => ("That did not work", "Nothing was changed. Go back, correct it and try again."),
        429 => ("Too many requests", "Wait a moment and try again."),
        s if s >= 500 => ("Something went wrong on our side", "Nothing you did caused this. Try again in a moment; if it persists, tell whoever runs cxm here."),
        _ => ("That did not work", "Go back and try again."),
    };
    let page = st.pages.render(
        "error.html",
        context! { title => heading, heading => heading, advice => advice,
        detail => problem.get("detail").and_then(|d| d.as_str()).unwrap_or(""),
        code => problem.get("code").and_then(|d| d.as_str()).unwrap_or(""),
        status => status.as_u16() },
    );
    let (_, html) = page.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, html).into_response()
}
