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

use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ErrorCode};
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;
use cxm_app::blocking;
use cxm_app::equity::EquitySettings;
use cxm_app::maturity::AssessmentInput;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/equity", get(equity_page))
        .route("/equity/settings", post(save_settings))
        .route("/maturity", get(maturity_page).post(save_assessment))
        .route("/maturity/roi", post(save_roi))
}

async fn equity_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/equity").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let c = match cxm_app::equity::current(&st.app, &p.tenant_id).await {
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
                .map(|v| serde_json::json!({"pct": format!("{:.0}", v * 100.0), "heat": (v.clamp(0.0, 1.5) / 1.5 * 10.0).round() as i64}))
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
            computed => r.computed_at_ms, can_edit => p.require_analyst().is_ok() },
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
    match cxm_app::equity::save_settings(&st.app, &p, body).await {
        Ok(_) => Redirect::to("/equity").into_response(),
        Err(e) => e.into_response(),
    }
}

const ROI_FIELDS: [(&str, &str); 9] = [
    ("arr", "Annual recurring revenue"),
    ("annual_churn_pct", "Annual churn (%)"),
    ("contacts_per_year", "Service contacts a year"),
    ("cost_per_contact", "Cost per contact"),
    ("service_to_sales_pct", "Service-to-sales conversion (%)"),
    ("average_deal_value", "Average deal value"),
    (
        "churn_reduction_pct",
        "Churn prevented by obstacle removal (%)",
    ),
    ("cross_sell_lift_pct", "Cross-sell conversion lift (%)"),
    ("autonomous_pct", "Contacts resolved autonomously (%)"),
];

async fn maturity_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/maturity").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = cxm_app::equity::current(&st.app, &p.tenant_id).await {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let st2 = st.clone();
    let (m, roi) = match blocking(&st, move |s| {
        Ok((
            cxm_app::maturity::view(&st2, s, &t, now)?,
            cxm_app::maturity::roi_view(&st2, s, &t, now)?,
        ))
    })
    .await
    {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let stated = serde_json::to_value(&roi.assumptions).unwrap_or_default();
    let fields: Vec<Value> = ROI_FIELDS
        .iter()
        .map(|(name, label)| {
            let m = roi.measured.iter().find(|m| m.field == *name);
            let raw = stated[name].as_f64().unwrap_or(0.0);
            serde_json::json!({"name": name, "label": label, "raw": raw,
                "stated": format!("{raw:.2}").trim_end_matches('0').trim_end_matches('.').to_string(),
                "measured": m.map(|m| format!("{:.2}", m.value)).unwrap_or_default(),
                "source": m.map(|m| m.source.clone()).unwrap_or_else(|| "assumed".into())})
        })
        .collect();
    let assessed = m.assessed_at_ms;
    st.pages.render(
        "maturity.html",
        context! { title => "Maturity and ROI", page => "maturity", user => user_ctx(&p), m => m, roi => roi,
            fields => fields, assessed => assessed, can_edit => p.require_analyst().is_ok() },
    )
}

async fn save_assessment(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) =
        match form_post::<std::collections::BTreeMap<String, String>>(&st, req, "/maturity", false)
            .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let mut answers = std::collections::BTreeMap::new();
    for (k, v) in form {
        match v.parse::<u8>() {
            Ok(n) => {
                answers.insert(k, n);
            }
            Err(_) => {
                return ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("{k}: answers are 1 to 4"),
                )
                .into_response()
            }
        }
    }
    match cxm_app::maturity::save_assessment(&st.app, &p, AssessmentInput { answers }).await {
        Ok(_) => Redirect::to("/maturity").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn save_roi(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) =
        match form_post::<cxm_domain::maturity::RoiAssumptions>(&st, req, "/maturity", false).await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    match cxm_app::maturity::save_roi(&st.app, &p, form).await {
        Ok(_) => Redirect::to("/maturity#roi").into_response(),
        Err(e) => e.into_response(),
    }
}
