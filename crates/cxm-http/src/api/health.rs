//! The account health API: accounts, signals, the backtest and alerts.

use cxm_app::health::{
    account_detail, account_list, backtest, recompute, save_signals, signal_set, valid_status,
    AccountDetail, AccountList, AccountQuery, AlertList, AlertQuery, AlertUpdate, BacktestRequest,
    SignalsDoc,
};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use cxm_domain::health::{self, SignalSet};
use cxm_store::Alert;

use crate::api::ApiJson;
use crate::api::ApiPath;
use crate::api::ApiQuery;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/{id}", get(get_account))
        .route("/api/v1/signals", get(get_signals).put(put_signals))
        .route("/api/v1/signals/backtest", post(run_backtest))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert).post(update_alert))
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "health", params(AccountQuery),
    responses((status = 200, body = AccountList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list_accounts(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<AccountQuery>,
) -> ApiResult<Json<AccountList>> {
    let t = p.0.tenant_id;
    Ok(Json(blocking(&st, move |s| account_list(s, &t, &q)).await?))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = AccountDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_account(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountDetail>> {
    let t = p.0.tenant_id;
    Ok(Json(
        blocking(&st, move |s| account_detail(s, &t, &id)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/signals", tag = "health", responses((status = 200, body = SignalsDoc)), security(("bearer" = [])))]
pub async fn get_signals(
    State(st): State<Arc<AppState>>,
    p: Principal,
) -> ApiResult<Json<SignalsDoc>> {
    let t = p.0.tenant_id;
    let (version, set) = blocking(&st, move |s| signal_set(s, &t)).await?;
    Ok(Json(SignalsDoc { version, set }))
}

/// Replaces the signal set (a new version); accounts are rescored at once.
#[utoipa::path(put, path = "/api/v1/signals", tag = "health", request_body = SignalSet,
    responses((status = 200, body = SignalsDoc), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn put_signals(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(set): ApiJson<SignalSet>,
) -> ApiResult<Json<SignalsDoc>> {
    p.require_analyst()?;
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let doc = blocking(&st, move |s| {
        let version = save_signals(s, &t, &set, &actor)?;
        recompute(s, &t, Utc::now())?;
        Ok(SignalsDoc { version, set })
    })
    .await?;
    Ok(Json(doc))
}

#[utoipa::path(post, path = "/api/v1/signals/backtest", tag = "health", request_body = BacktestRequest,
    responses((status = 200, body = health::Backtest), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn run_backtest(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(req): ApiJson<BacktestRequest>,
) -> ApiResult<Json<health::Backtest>> {
    let t = p.0.tenant_id;
    Ok(Json(
        blocking(&st, move |s| {
            backtest(s, &t, req.from, req.to, req.horizon_days.unwrap_or(90))
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "health", params(AlertQuery),
    responses((status = 200, body = AlertList)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<AlertList>> {
    if let Some(s) = q.status.as_deref() {
        valid_status(s)?;
    }
    let t = p.tenant_id.clone();
    let owner = q.owner.clone();
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let alerts = st
        .store
        .run(move |s| {
            // with an owner, look further back so their alerts are not cut by others'
            let scan = if owner.is_some() { 10_000 } else { limit };
            s.list_alerts(&t, q.status.as_deref(), scan)
        })
        .await?
        .into_iter()
        .filter(|a| q.owner.as_ref().is_none_or(|o| &a.owner == o))
        .take(limit as usize)
        .collect::<Vec<Alert>>();
    let value_tiers = st
        .equity
        .peek(&p.tenant_id)
        .map(|c| {
            alerts
                .iter()
                .filter_map(|a| {
                    c.account_tier
                        .get(&a.group_id)
                        .map(|t| (a.group_id.clone(), t.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(AlertList {
        alerts,
        value_tiers,
    }))
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "health", params(("id" = i64, Path)),
    responses((status = 200, body = Alert), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_alert(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Alert>> {
    let t = p.0.tenant_id;
    st.store
        .run(move |s| s.alert(&t, id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no alert {id}")))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}", tag = "health", params(("id" = i64, Path)), request_body = AlertUpdate,
    responses((status = 200, body = Alert), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn update_alert(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiPath(id): ApiPath<i64>,
    ApiJson(u): ApiJson<AlertUpdate>,
) -> ApiResult<(StatusCode, Json<Alert>)> {
    valid_status(&u.status)?;
    if p.role == cxm_store::Role::Viewer {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the viewer role cannot do this",
        ));
    }
    let (t, actor) = (p.0.tenant_id, p.0.actor);
    let a = blocking(&st, move |s| {
        if !s.set_alert_status(&t, id, &u.status, &actor)? {
            return Err(AppError::new(ErrorCode::NotFound, format!("no alert {id}")));
        }
        s.alert(&t, id)?
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no alert {id}")))
    })
    .await;
    match a {
        Ok(a) => Ok((StatusCode::OK, Json(a))),
        // reopening while another alert for the same account and signal is open
        Err(e) if e.code == ErrorCode::Conflict => Err(ApiError::new(
            ErrorCode::Conflict,
            "an alert for this account and signal is already open",
        )),
        Err(e) => Err(e.into()),
    }
}
