//! Dashboard pages for account health: accounts by band with each signal's contribution, and
//! the alerts inbox.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;

use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::fmt_ms;
use crate::pages::session;
use crate::pages::signed_post;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;
use cxm_app::health::AccountQuery;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/accounts", get(accounts_page))
        .route("/accounts/{id}", get(account_page))
        .route("/accounts.csv", get(accounts_csv))
        .route("/alerts.csv", get(alerts_csv))
        .route("/alerts", get(alerts_page))
        .route("/alerts/{id}/{status}", post(set_status))
}

#[derive(serde::Deserialize)]
struct AccountsPage {
    band: Option<String>,
    /// 1-based page of [`ACCOUNTS_PER_PAGE`].
    page: Option<u32>,
}

const ACCOUNTS_PER_PAGE: u32 = 50;

async fn accounts_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<AccountsPage>,
) -> Response {
    let p = match session(&st, &headers, "/accounts").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let band = q.band.clone().filter(|b| !b.is_empty());
    let page_no = q.page.unwrap_or(1).max(1);
    let (t, b) = (p.tenant_id.clone(), band.clone());
    let data = blocking(&st, move |s| {
        let list = cxm_app::health::account_list(
            s,
            &t,
            &AccountQuery {
                band: b,
                limit: Some(ACCOUNTS_PER_PAGE),
                offset: Some((page_no - 1) * ACCOUNTS_PER_PAGE),
            },
        )?;
        let (version, set) = cxm_app::health::signal_set(s, &t)?;
        Ok((list, version, set))
    })
    .await;
    let (list, version, set) = match data {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    // the band counts are over every account, so they give the list's total
    let total: i64 = list
        .bands
        .iter()
        .filter(|c| band.as_deref().is_none_or(|b| c.band == b))
        .map(|c| c.accounts)
        .sum();
    let pages = (total.max(1) as u32).div_ceil(ACCOUNTS_PER_PAGE);
    st.pages.render(
        "accounts.html",
        context! { title => "Accounts", page => "accounts", user => user_ctx(&p), list => list, band => band,
            signals => set, signals_version => version, total => total, page_no => page_no, pages => pages,
            first => (page_no - 1) * ACCOUNTS_PER_PAGE + 1 },
    )
}

async fn alerts_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<cxm_app::health::AlertQuery>,
) -> Response {
    let p = match session(&st, &headers, "/alerts").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    if let Err(e) = cxm_app::health::valid_status(&status) {
        return e.into_response();
    }
    let (t, s2) = (p.tenant_id.clone(), status.clone());
    let mine = q.owner.as_deref() == Some("me");
    let me = p.actor.clone();
    let data = blocking(&st, move |s| {
        let alerts: Vec<cxm_store::Alert> = s
            .list_alerts(&t, Some(&s2), if mine { 10_000 } else { 500 })?
            .into_iter()
            .filter(|a| !mine || a.owner == me)
            .take(500)
            .collect();
        let (arr, accounts) = cxm_app::health::revenue_at_risk(s, &t)?;
        // a ticket's owner is one of the tenant's people, picked, not typed
        let owners: Vec<String> = s
            .list_users(&t)?
            .into_iter()
            .filter(|u| u.disabled_at_ms.is_none())
            .map(|u| u.email)
            .collect();
        Ok((alerts, arr, accounts, owners))
    })
    .await;
    let (alerts, arr, accounts, owners) = match data {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let alerts: Vec<serde_json::Value> = alerts
        .into_iter()
        .map(|a| serde_json::to_value(&a).unwrap_or_default())
        .collect();
    st.pages.render(
        "alerts.html",
        context! { title => "Alerts", page => "alerts", user => user_ctx(&p), alerts => alerts, status => status,
            revenue_at_risk => arr, accounts_with_alerts => accounts, can_act => p.role != cxm_store::Role::Viewer, mine => mine,
            owners => owners },
    )
}

async fn set_status(
    State(st): State<Arc<AppState>>,
    Path((id, status)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Response {
    let p = match signed_post(&st, &headers, "/alerts", false).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.role == cxm_store::Role::Viewer {
        return ApiError::new(ErrorCode::Forbidden, "the viewer role cannot do this")
            .into_response();
    }
    if let Err(e) = cxm_app::health::valid_status(&status) {
        return e.into_response();
    }
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    match st
        .store
        .run(move |s| s.set_alert_status(&t, id, &status, &actor))
        .await
    {
        Ok(true) => Redirect::to("/alerts").into_response(),
        Ok(false) => ApiError::new(ErrorCode::NotFound, format!("no alert {id}")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(serde::Serialize)]
struct TrendChart {
    width: f64,
    height: f64,
    left: f64,
    points: Vec<serde_json::Value>,
    line: String,
    ticks: Vec<serde_json::Value>,
    first: String,
    last: String,
}

/// The 0-100 health score per day as a line, laid out here so the page needs no script.
fn trend_chart(trend: &[cxm_app::health::TrendPoint]) -> TrendChart {
    let (width, height, left, top, bottom) = (600.0, 200.0, 36.0, 8.0, 20.0);
    let plot = height - top - bottom;
    let y = |s: f64| top + (100.0 - s.clamp(0.0, 100.0)) / 100.0 * plot;
    let n = trend.len();
    let x = |i: usize| {
        if n <= 1 {
            left
        } else {
            left + i as f64 * (width - left - 4.0) / (n - 1) as f64
        }
    };
    let points: Vec<serde_json::Value> = if n < 2 {
        vec![]
    } else {
        trend
            .iter()
            .enumerate()
            .map(|(i, p)| serde_json::json!({"x": x(i), "y": y(p.score), "day": p.day.format("%-d %b").to_string(), "score": p.score}))
            .collect()
    };
    let line = points
        .iter()
        .map(|p| {
            format!(
                "{:.1},{:.1}",
                p["x"].as_f64().unwrap_or(0.0),
                p["y"].as_f64().unwrap_or(0.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let label = |i: usize| {
        trend
            .get(i)
            .map(|p| p.day.format("%-d %b").to_string())
            .unwrap_or_default()
    };
    TrendChart {
        width,
        height,
        left,
        ticks: [0.0, 50.0, 100.0]
            .iter()
            .map(|v| serde_json::json!({"y": y(*v), "label": format!("{v:.0}")}))
            .collect(),
        first: label(0),
        last: label(n.saturating_sub(1)),
        points,
        line,
    }
}

async fn account_page(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/accounts/{}", crate::pages::format::segment(&id));
    let p = match session(&st, &headers, &here).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match cxm_app::accounts::account_360(&st.app, &p.tenant_id, &id).await {
        Ok(a) => {
            let chart = trend_chart(&a.detail.trend);
            st.pages.render(
                "account_360.html",
                context! { title => a.detail.health.name.clone(), page => "accounts", user => user_ctx(&p), a => a, chart => chart },
            )
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Every account with its health, as CSV (the list page's columns, all pages).
async fn accounts_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Response {
    let p = match session(&st, &headers, "/accounts").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let t = p.tenant_id.clone();
    let band = q.band.clone();
    let all = blocking(&st, move |s| {
        let mut out = vec![];
        loop {
            let page = cxm_app::health::account_list(
                s,
                &t,
                &AccountQuery {
                    band: band.clone(),
                    limit: Some(1000),
                    offset: Some(out.len() as u32),
                },
            )?
            .accounts;
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return Ok(out);
            }
        }
    })
    .await;
    let accounts = match all {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let fired: Vec<String> = a
                .readings
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .filter(|r| r["fired"].as_bool() == Some(true))
                        .filter_map(|r| r["detail"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                a.group_id.clone(),
                a.name.clone(),
                format!("{:.0}", a.score),
                a.band.clone(),
                format!("{:.2}", a.arr),
                fired.join("; "),
            ]
        })
        .collect();
    crate::pages::csv::download(
        "accounts",
        &[
            "account_id",
            "name",
            "health",
            "band",
            "arr",
            "signals_fired",
        ],
        &rows,
    )
}

/// Alerts of one status (open by default), as CSV.
async fn alerts_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<cxm_app::health::AlertQuery>,
) -> Response {
    let p = match session(&st, &headers, "/alerts").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    if let Err(e) = cxm_app::health::valid_status(&status) {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let alerts = match blocking(&st, move |s| {
        Ok(s.list_alerts(&t, Some(&status), 100_000)?)
    })
    .await
    {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                fmt_ms(a.created_at_ms),
                a.group_id.clone(),
                a.title.clone(),
                a.kind.clone(),
                a.signal.clone(),
                a.status.clone(),
                a.owner.clone(),
                format!("{:.2}", a.arr),
            ]
        })
        .collect();
    crate::pages::csv::download(
        "alerts",
        &[
            "id",
            "opened_utc",
            "account_id",
            "title",
            "kind",
            "signal",
            "status",
            "owner",
            "arr",
        ],
        &rows,
    )
}
