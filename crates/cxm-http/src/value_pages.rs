//! Dashboard pages in the CFO's language: customer equity (CLV, tiers, accounts, cohorts,
//! revenue at risk, expansion), and the maturity assessment with the ROI calculator.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;

use crate::dashboard::{fmt_ms, form_post, session, user_ctx};
use crate::equity::{self, EquitySettings};
use crate::error::{ApiError, ErrorCode};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/equity", get(equity_page))
        .route("/equity/settings", post(save_settings))
}

async fn equity_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/equity").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let c = match equity::current(&st, &p.tenant_id).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let r = &c.report;
    let cohorts: Vec<Value> = r
        .cohorts
        .iter()
        .map(|c| {
            let cells: Vec<Value> = c
                .retention
                .iter()
                .map(|v| serde_json::json!({"pct": format!("{:.0}", v * 100.0), "alpha": format!("{:.2}", v.clamp(0.0, 1.5) / 1.5)}))
                .collect();
            serde_json::json!({"cohort": c.cohort, "members": c.members, "base": c.first_month_revenue, "cells": cells})
        })
        .collect();
    let months = r
        .cohorts
        .iter()
        .map(|c| c.retention.len())
        .max()
        .unwrap_or(0);
    let settings = serde_json::to_string_pretty(&r.settings).unwrap_or_default();
    let model = serde_json::to_string_pretty(
        &serde_json::json!({"purchases": r.purchases, "spend": r.spend}),
    )
    .unwrap_or_default();
    st.pages.render(
        "equity.html",
        context! { title => "Customer equity", page => "equity", user => user_ctx(&p), r => r,
            cohorts => cohorts, months => (0..months).collect::<Vec<_>>(), settings => settings, model => model,
            computed => fmt_ms(r.computed_at_ms), can_edit => p.require_analyst().is_ok() },
    )
}

#[derive(Deserialize)]
struct SettingsForm {
    settings: String,
}

async fn save_settings(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<SettingsForm>(&st, req, "/equity", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let body: EquitySettings = match serde_json::from_str(&form.settings) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::new(
                ErrorCode::InvalidParameter,
                format!("the settings are not valid: {e}"),
            )
            .into_response()
        }
    };
    match equity::save_settings(&st, &p, body).await {
        Ok(_) => Redirect::to("/equity").into_response(),
        Err(e) => e.into_response(),
    }
}
