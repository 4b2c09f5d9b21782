//! The step-up API and the customer's page: one-time codes sent to a known channel and their
//! verification.

use cxm_app::step_up::{
    attempt, begin, Attempt, CodeAttempt, StartStepUp, StartedStepUp, StepUpState,
};
use cxm_app::AppError;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use minijinja::context;

use crate::api::decisions::Asker;
use crate::api::ApiJson;
use crate::error::ProblemResponse as _;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::blocking;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/step-ups", post(start))
        .route("/api/v1/step-ups/{id}/verify", post(verify))
        .route("/step-up/{tenant}/{id}", get(code_page).post(code_form))
}

/// Sends a one-time code to a channel the customer is known by (through the webhook
/// endpoints that take `step_up.code`).
#[utoipa::path(post, path = "/api/v1/step-ups", tag = "agents", request_body = StartStepUp,
    responses((status = 201, body = StartedStepUp), (status = 422, body = crate::error::Problem, description = "no_known_channel"),
        (status = 404, body = crate::error::Problem, description = "cxm knows no such customer")),
    security(("bearer" = [])))]
pub async fn start(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    ApiJson(req): ApiJson<StartStepUp>,
) -> ApiResult<(StatusCode, Json<StartedStepUp>)> {
    let t = caller.tenant_id.clone();
    let out = blocking(&st, move |s| begin(s, &t, &caller.actor, &req)).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Checks the code the customer gave. Five wrong codes, or ten minutes, end the step-up.
#[utoipa::path(post, path = "/api/v1/step-ups/{id}/verify", tag = "agents", params(("id" = String, Path)), request_body = CodeAttempt,
    responses((status = 200, body = StepUpState), (status = 422, body = crate::error::Problem, description = "invalid_code"),
        (status = 409, body = crate::error::Problem, description = "step_up_expired")), security(("bearer" = [])))]
pub async fn verify(
    State(st): State<Arc<AppState>>,
    caller: Asker,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CodeAttempt>,
) -> ApiResult<Json<StepUpState>> {
    if req.code.len() > 20 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "code is at most 20 characters",
        ));
    }
    let t = caller.tenant_id.clone();
    let out = blocking(&st, move |s| {
        // whoever asked for the code must not be the one who proves it arrived: an agent
        // that could read or guess its own code would vouch for itself
        match s.step_up(&t, &id)? {
            None => Ok(Attempt::Unknown),
            Some(started) if started.created_by == caller.actor => Err(AppError::new(
                ErrorCode::Forbidden,
                "the code must be entered by someone other than who asked for it: the customer, at the link sent with the code, or another operator",
            )),
            Some(_) => attempt(s, &t, &id, &req.code),
        }
    })
    .await?;
    match out {
        Attempt::Verified(s) => Ok(Json(StepUpState {
            step_up_id: s.id,
            verified: true,
            attempts_left: s.attempts_left,
        })),
        Attempt::Over => Err(ApiError::new(
            ErrorCode::StepUpExpired,
            "this step-up is over (expired or too many wrong codes); start a new one",
        )),
        Attempt::Wrong(left) => Err(ApiError::new(
            ErrorCode::InvalidCode,
            format!("wrong code; {left} attempts left"),
        )),
        Attempt::Unknown => Err(ApiError::new(
            ErrorCode::NotFound,
            "no such step-up".to_string(),
        )),
    }
}

async fn code_page(
    Path((tenant, id)): Path<(String, String)>,
    State(st): State<Arc<AppState>>,
) -> Response {
    let known = blocking(&st, move |s| Ok(s.step_up(&tenant, &id)?)).await;
    match known {
        Ok(Some(s)) => st.pages.render(
            "step_up.html",
            context! { title => "Confirm it is you", sent_to => s.sent_to, done => s.verified_at_ms.is_some(), error => None::<String> },
        ),
        Ok(None) => not_found_page(&st),
        Err(e) => e.into_response(),
    }
}

async fn code_form(
    Path((tenant, id)): Path<(String, String)>,
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> Response {
    let code = match axum::Form::<CodeForm>::from_request(req, &()).await {
        Ok(axum::Form(f)) if f.code.len() <= 20 => f.code,
        _ => String::new(),
    };
    let (t, i) = (tenant.clone(), id.clone());
    let out = blocking(&st, move |s| {
        let sent_to = s.step_up(&t, &i)?.map(|s| s.sent_to);
        Ok((attempt(s, &t, &i, &code)?, sent_to))
    })
    .await;
    let page = |done: bool, error: Option<String>, sent_to: String, status: StatusCode| {
        let mut r = st.pages.render(
            "step_up.html",
            context! { title => "Confirm it is you", sent_to => sent_to, done => done, error => error },
        );
        *r.status_mut() = status;
        r
    };
    match out {
        Ok((Attempt::Verified(_), to)) => page(true, None, to.unwrap_or_default(), StatusCode::OK),
        Ok((Attempt::Wrong(left), to)) => page(
            false,
            Some(format!("That code is not right. {left} tries left.")),
            to.unwrap_or_default(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Ok((Attempt::Over, to)) => page(
            false,
            Some("This code has expired or was tried too often. Ask for a new one.".into()),
            to.unwrap_or_default(),
            StatusCode::CONFLICT,
        ),
        Ok((Attempt::Unknown, _)) => not_found_page(&st),
        Err(e) => e.into_response(),
    }
}

fn not_found_page(st: &AppState) -> Response {
    let mut r = st.pages.render(
        "step_up.html",
        context! { title => "Confirm it is you", missing => true },
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

#[derive(serde::Deserialize)]
struct CodeForm {
    code: String,
}
