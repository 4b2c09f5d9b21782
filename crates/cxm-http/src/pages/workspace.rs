//! Settings › Currency and time zone: how every number and time on the dashboard reads.

use super::*;
use cxm_app::locale::{Locale, CURRENCIES};

fn render(
    st: &AppState,
    p: &Principal,
    l: &Locale,
    saved: bool,
    error: Option<String>,
) -> Response {
    let currencies: Vec<Value> = CURRENCIES
        .iter()
        .map(|(code, sym, _)| serde_json::json!({"code": code, "symbol": sym.trim()}))
        .collect();
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    st.pages.render(
        "workspace.html",
        context! { title => "Currency and time zone", page => "workspace", user => user_ctx(p), current => l,
            currencies => currencies, zones => zones, saved => saved, error => error,
            can_admin => p.role.can_administer(), example_ms => chrono::Utc::now().timestamp_millis() },
    )
}

pub(crate) async fn workspace_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let p = match session(&st, &headers, "/settings/workspace").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    match cxm_app::blocking(&st, move |s| cxm_app::locale::locale(s, &t)).await {
        Ok(l) => render(&st, &p, &l, false, None),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub(crate) async fn save_workspace(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<Locale>(&st, req, "/settings/workspace", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match cxm_app::locale::save(&st.app, &p.0, form.clone()).await {
        Ok(l) => {
            st.pages.forget_locale(&p.tenant_id);
            st.pages.keep_locale(&p.tenant_id, l.clone());
            render(&st, &p, &l, true, None)
        }
        // the person's own mistake: the form again, saying what is wrong
        Err(e) if e.code == cxm_app::error::ErrorCode::InvalidParameter => {
            let mut r = render(&st, &p, &form, false, Some(e.detail.clone()));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
