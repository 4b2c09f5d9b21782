//! Signing in and out of the dashboard: the form, the throttled password check, the session
//! cookie, and where to go next (only ever a path on this site).

use super::*;

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path on this site, nothing else. Browsers strip tabs and
/// newlines from URLs and read `\\` as `/`, so `/%09/evil.example` or `/\\evil.example` would
/// leave the site; such a path, and anything with a control character, goes home instead.
pub(crate) fn safe_next(next: Option<&str>) -> String {
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
pub(crate) fn percent_decode(s: &str) -> String {
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

pub(crate) async fn login_page(
    State(st): State<Arc<AppState>>,
    Query(q): Query<NextQuery>,
) -> Response {
    st.pages.render(
        "login.html",
        context! { next => safe_next(q.next.as_deref()), email => "", error => None::<String> },
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub(crate) async fn login(State(st): State<Arc<AppState>>, req: Request) -> Response {
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
    let user = match cxm_app::sign_in::attempt(&st, &email, form.password, client).await {
        Ok(u) => u,
        Err(cxm_app::sign_in::Refused::Wrong) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "Wrong email or password.".into(),
                None,
            )
        }
        Err(cxm_app::sign_in::Refused::Throttled(wait)) => {
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
        Err(cxm_app::sign_in::Refused::Busy) => {
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Many people are signing in right now. Try again in a moment.".into(),
                Some(1),
            )
        }
        Err(cxm_app::sign_in::Refused::Store(e)) => return ApiError::from(e).into_response(),
    };
    let (token, hash) = cxm_app::auth::new_session_token();
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

pub(crate) async fn logout(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        let h = cxm_app::auth::sha256_hex(&token);
        let _ = st.store.run(move |s| s.delete_session(&h)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cxm_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    r
}
