//! What a request carrying the session cookie must prove before anything runs: that it
//! addressed this server by a name the server answers to (so a page on an attacker's name
//! rebound to this address gets nothing), and, when it writes, that it came from this
//! server's own pages. A browser says where a request came from in `Sec-Fetch-Site` or
//! `Origin`; a cookie-authenticated write without either is refused. Calls to the JSON API
//! with the cookie must also say `Content-Type: application/json`, which no cross-site form
//! can send without a preflight. Requests with a bearer key carry no ambient authority and
//! are not checked here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use cxm_app::auth::SESSION_COOKIE;

/// The names (`host[:port]`) this server answers to in the `Host` header.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    /// The authority of `--public-url`, with and without its default port.
    public: Vec<String>,
    listen: Option<SocketAddr>,
}

impl Hosts {
    pub fn new(public_url: Option<&str>, listen: Option<SocketAddr>) -> Hosts {
        let mut public = vec![];
        if let Some(u) = public_url.and_then(|u| url::Url::parse(u).ok()) {
            if let Some(h) = u.host_str() {
                let h = h.to_ascii_lowercase();
                match u.port() {
                    Some(p) => public.push(format!("{h}:{p}")),
                    None => {
                        public.push(h.clone());
                        if let Some(p) = u.port_or_known_default() {
                            public.push(format!("{h}:{p}"));
                        }
                    }
                }
            }
        }
        Hosts { public, listen }
    }

    /// Whether a `Host` header names this server. Without `--public-url`, the names are those
    /// of the listen address: its address, `localhost`, and, when listening on every
    /// interface, any address literal (a name would need `--public-url`: names are what DNS
    /// rebinding uses).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.public.contains(&host) {
            return true;
        }
        let Some(listen) = self.listen else {
            return self.public.is_empty();
        };
        let (name, port) = split_host(&host);
        let port = port.unwrap_or(80);
        if port != listen.port() {
            return false;
        }
        let literal: Option<std::net::IpAddr> = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        match literal {
            Some(ip) if listen.ip().is_unspecified() => {
                // a literal of the listening family (or any, on a dual-stack socket)
                !ip.is_multicast()
            }
            Some(ip) if listen.ip().is_loopback() => ip.is_loopback(),
            Some(ip) => ip == listen.ip(),
            None => {
                name == "localhost" && (listen.ip().is_loopback() || listen.ip().is_unspecified())
            }
        }
    }

    pub fn describe(&self) -> String {
        match (self.public.first(), self.listen) {
            (Some(p), _) => p.clone(),
            (None, Some(l)) => l.to_string(),
            (None, None) => "its public url".into(),
        }
    }
}

/// `host` and its port from a Host header value (`[::1]:8080`, `a.example`, `1.2.3.4:80`).
fn split_host(h: &str) -> (&str, Option<u16>) {
    if let Some(rest) = h.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (
                &h[..ip.len() + 2],
                tail.strip_prefix(':').and_then(|p| p.parse().ok()),
            ),
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, port.parse().ok()),
        _ => (h, None),
    }
}

fn forbidden(why: impl Into<String>) -> Response {
    ApiError::new(ErrorCode::Forbidden, why).into_response()
}

/// Whether a write came from this server's own pages: `Sec-Fetch-Site: same-origin`, or
/// (from browsers that do not send it) an `Origin` whose host is the request's `Host`.
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return if site.eq_ignore_ascii_case("same-origin") {
            Ok(())
        } else {
            Err(format!(
                "a {site} request cannot use the session cookie to change anything"
            ))
        };
    }
    let (Some(origin), Some(host)) = (get("origin"), get("host")) else {
        return Err(
            "a write with the session cookie must come from cxm's own pages (send Origin), or use a bearer key"
                .into(),
        );
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(format!(
            "cross-site request refused: it came from {origin}, not from this server's pages"
        ))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The guard in front of every route (see the module comment).
pub async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let path = req.uri().path();
    let login = path == "/login";
    let by_cookie = headers.get(header::AUTHORIZATION).is_none()
        && crate::auth::cookie(headers, SESSION_COOKIE).is_some();
    if !(by_cookie || login) {
        return next.run(req).await;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let hosts = st.hosts();
    if !hosts.allows(host) {
        tracing::warn!(host = %cxm_app::logsafe::Field(host), "request for a host this server does not answer to");
        return forbidden(format!(
            "this server answers as {}, not {host:?}; if that is its address, start it with --public-url",
            hosts.describe()
        ));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Err(why) = same_origin(headers) {
            return forbidden(why);
        }
        if by_cookie && path.starts_with("/api/") && !is_json(headers) {
            return forbidden(
                "a call to the api with the session cookie must send Content-Type: application/json",
            );
        }
    }
    next.run(req).await
}

/// The Content-Security-Policy of every page: scripts and styles from this server only,
/// nothing inline (the pages have none), no plugins, forms post here, and no other site may
/// frame it. Hosted survey pages may be framed: embedding them is the point.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const CSP_EMBEDDABLE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors *";

/// Headers on every answer: no MIME sniffing, no referrer beyond this site, nothing cached
/// that was not meant to be (assets say otherwise themselves), the CSP on pages, and HSTS
/// when the server runs behind TLS (`--secure-cookies`).
pub async fn security_headers(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let embeddable = req.uri().path().starts_with("/s/");
    let mut r = next.run(req).await;
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if embeddable { CSP_EMBEDDABLE } else { CSP }),
        );
        if !embeddable {
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
    }
    if st.config.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn hosts_follow_the_listen_address_and_the_public_url() {
        let local = Hosts::new(None, Some("127.0.0.1:8080".parse().unwrap()));
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1:9090",
            "10.0.0.1:8080",
            "localhost",
        ] {
            assert!(!local.allows(bad), "{bad}");
        }
        let any = Hosts::new(None, Some("0.0.0.0:8080".parse().unwrap()));
        assert!(any.allows("192.168.1.20:8080"));
        assert!(!any.allows("rebound.evil.example:8080"));
        let public = Hosts::new(
            Some("https://cx.acme.example"),
            Some("127.0.0.1:8080".parse().unwrap()),
        );
        assert!(public.allows("cx.acme.example"));
        assert!(public.allows("cx.acme.example:443"));
        assert!(
            public.allows("127.0.0.1:8080"),
            "the proxy may address the listener"
        );
        assert!(!public.allows("cx.acme.example.evil.example"));
        let port80 = Hosts::new(None, Some("127.0.0.1:80".parse().unwrap()));
        assert!(port80.allows("127.0.0.1"));
    }

    #[test]
    fn writes_must_come_from_our_pages() {
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&h(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&h(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a:1"),
            ("host", "a:1")
        ]))
        .is_err());
        assert!(same_origin(&h(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]))
        .is_ok());
        assert!(same_origin(&h(&[
            ("origin", "http://127.0.0.1:9999"),
            ("host", "127.0.0.1:8080")
        ]))
        .is_err());
        assert!(same_origin(&h(&[("origin", "null"), ("host", "127.0.0.1:8080")])).is_err());
        assert!(
            same_origin(&h(&[("host", "127.0.0.1:8080")])).is_err(),
            "no proof at all"
        );
    }
}
