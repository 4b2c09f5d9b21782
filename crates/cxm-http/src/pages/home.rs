//! Home: the brief a CX leader decides on (revenue at risk, growth potential, scores with
//! their n, what is waiting on someone), or where to start for a tenant with no data yet.

use super::*;

pub(crate) async fn home(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/").await {
        Ok(p) => p,
        Err(r) => return r,
    };
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
    st.pages.render(
        "home.html",
        context! { title => "Home", page => "home", user => user_ctx(&p), brief => brief,
        now_ms => chrono::Utc::now().timestamp_millis(), origin => origin },
    )
}
