//! The surveys API and the hosted survey page: definitions, links, invitations and the
//! next-step API for bots.

use cxm_app::surveys::{
    answered_text_prompt, base_answer, new_link, new_topic, scale_of, valid_id, worded_follow_up,
    CreatedLink, InvitationList, InvitationQuery, InvitationUpdate, NewLink, NextRequest, NextStep,
    SaveSurvey, SavedSurvey, SurveyList, SurveyStats, INVITATION_STATUSES,
};
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cxm_domain::feedback::{parse_answer, FieldType};
use cxm_domain::survey::{AnswerSignal, SurveyDefinition};
use cxm_store::{LinkEvent, SurveyLink};
use minijinja::context;
use serde_json::{json, Value};

use crate::api::ApiJson;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use cxm_app::auth::sha256_hex;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/surveys", get(list).post(save))
        .route("/api/v1/surveys/{id}", get(get_one))
        .route("/api/v1/surveys/{id}/links", post(create_link))
        .route("/api/v1/surveys/{id}/next", post(next_step))
        .route("/api/v1/surveys/invitations", get(list_invitations))
        .route("/api/v1/surveys/invitations/{id}", post(update_invitation))
        .route("/s/{token}", get(page).post(submit))
        .route("/s/{token}/more", post(more))
        .route("/s/{token}/done", get(done))
}

/// Saves a survey; saving again makes a new version (links keep theirs).
#[utoipa::path(post, path = "/api/v1/surveys", tag = "feedback", request_body = SaveSurvey,
    responses((status = 201, body = SavedSurvey), (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn save(
    State(st): State<Arc<AppState>>,
    p: Principal,
    ApiJson(body): ApiJson<SaveSurvey>,
) -> ApiResult<(StatusCode, Json<SavedSurvey>)> {
    p.require_admin()?;
    if !valid_id(&body.survey_id) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "survey_id must be 1 to 64 letters, digits, - or _",
        ));
    }
    body.definition
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, format!("definition: {e}")))?;
    let def = serde_json::to_string(&body.definition)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let (t, id, name) = (
        p.tenant_id.clone(),
        body.survey_id.clone(),
        body.definition.name.clone(),
    );
    let version = st
        .store
        .run(move |s| s.save_survey(&t, &id, &name, &def))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SavedSurvey {
            survey_id: body.survey_id,
            version,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/surveys", tag = "feedback", responses((status = 200, body = SurveyList)), security(("bearer" = [])))]
pub async fn list(State(st): State<Arc<AppState>>, p: Principal) -> ApiResult<Json<SurveyList>> {
    let t = p.0.tenant_id;
    let all = st.store.run(move |s| s.list_surveys(&t)).await?;
    Ok(Json(SurveyList {
        surveys: all
            .into_iter()
            .map(|s| SurveyStats {
                response_rate: (s.displays > 0)
                    .then(|| (s.responses as f64 / s.displays as f64 * 1000.0).round() / 10.0),
                summary: s,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/surveys/{id}", tag = "feedback", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (t, i) = (p.0.tenant_id, id.clone());
    let (version, def) = st
        .store
        .run(move |s| s.survey(&t, &i, None))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no survey {id}")))?;
    let def: Value = serde_json::from_str(&def).unwrap_or(Value::Null);
    Ok(Json(
        json!({"survey_id": id, "version": version, "definition": def}),
    ))
}

/// For chat and voice bots: what to ask next, given the answers so far. Applies the
/// branching page by page, then the follow-up engine, exactly as the hosted page does; the
/// bot stores the answers with `POST /api/v1/feedback`.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/next", tag = "feedback", params(("id" = String, Path)), request_body = NextRequest,
    responses((status = 200, body = NextStep), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn next_step(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NextRequest>,
) -> ApiResult<Json<NextStep>> {
    let tenant = p.tenant_id.clone();
    let (t, i) = (p.0.tenant_id, id.clone());
    let (version, def) = st
        .store
        .run(move |s| s.survey(&t, &i, req.version))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no survey {id} (or no such version)"),
            )
        })?;
    let def: SurveyDefinition = serde_json::from_str(&def)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let mut raw: HashMap<String, String> = HashMap::new();
    for (k, v) in &req.answers {
        let Some(q) = def.questions.iter().find(|q| &q.id == k) else {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("answers.{k}: the survey has no such question"),
            ));
        };
        let text = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(a) if q.multiple && a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n"),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("answers.{k}: must be a string or a number (an array of strings for a multiple choice)"),
                ))
            }
        };
        if let Some((lo, hi)) = FieldType::parse(&q.kind).and_then(FieldType::range) {
            if !text.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n)) {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("answers.{k}: must be a whole number from {lo} to {hi}"),
                ));
            }
        }
        if text.len() > 10_000 {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("answers.{k}: at most 10000 characters"),
            ));
        }
        raw.insert(k.clone(), text);
    }
    for page in def.pages() {
        let questions: Vec<_> = page
            .filter(|i| def.visible(*i, &raw) && !raw.contains_key(&def.questions[*i].id))
            .map(|i| def.questions[i].clone())
            .collect();
        if !questions.is_empty() {
            return Ok(Json(NextStep {
                version,
                questions,
                follow_up: None,
                done: false,
            }));
        }
    }
    let score = def.questions.iter().find_map(|q| {
        let kind = FieldType::parse(&q.kind)?;
        kind.range()?;
        Some((kind, raw.get(&q.id)?.parse::<i64>().ok()?))
    });
    let text: String = def
        .questions
        .iter()
        .filter(|q| q.kind == "text")
        .filter_map(|q| raw.get(&q.id).cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let analysed = (!text.is_empty()).then(|| st.analyzer.analyze(&text));
    let signal = AnswerSignal {
        score,
        text: &text,
        sentiment: analysed.as_ref().and_then(|a| a.cx_compound),
        churn_intent: analysed.as_ref().is_some_and(|a| a.cues.churn_intent),
        new_topic: new_topic(&st, &tenant, &text).await,
    };
    let question = answered_text_prompt(&def, &raw);
    let follow_up = if text.is_empty() {
        None
    } else {
        worded_follow_up(&st, &def, &signal, req.follow_ups_asked, &question).await
    };
    Ok(Json(NextStep {
        version,
        questions: vec![],
        done: follow_up.is_none(),
        follow_up,
    }))
}

/// An invitation link to the latest version, for one customer (or anonymous).
#[utoipa::path(post, path = "/api/v1/surveys/{id}/links", tag = "feedback", params(("id" = String, Path)), request_body = NewLink,
    responses((status = 201, body = CreatedLink), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn create_link(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<CreatedLink>)> {
    let link = new_link(&st, &p.tenant_id, &id, body.identifier, body.channel).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Invitations the surveys' targeting made from events. A mailer or bot takes the pending
/// ones (each has its survey link), sends them, and marks them delivered.
#[utoipa::path(get, path = "/api/v1/surveys/invitations", tag = "feedback", params(InvitationQuery),
    responses((status = 200, body = InvitationList), (status = 400, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn list_invitations(
    State(st): State<Arc<AppState>>,
    p: Principal,
    crate::api::ApiQuery(q): crate::api::ApiQuery<InvitationQuery>,
) -> ApiResult<Json<InvitationList>> {
    if q.status
        .as_deref()
        .is_some_and(|s| !INVITATION_STATUSES.contains(&s))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "status must be pending, delivered, held or failed",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "limit must be between 1 and 1000",
        ));
    }
    let t = p.tenant_id.clone();
    let invitations = st
        .store
        .run(move |s| s.list_invitations(&t, q.status.as_deref(), q.survey.as_deref(), limit))
        .await?;
    Ok(Json(InvitationList { invitations }))
}

/// Records that a pending invitation was delivered (or could not be). Repeating the same
/// update is a no-op; changing a settled invitation is a conflict.
#[utoipa::path(post, path = "/api/v1/surveys/invitations/{id}", tag = "feedback", params(("id" = i64, Path)), request_body = InvitationUpdate,
    responses((status = 200, body = cxm_store::Invitation), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn update_invitation(
    State(st): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(u): ApiJson<InvitationUpdate>,
) -> ApiResult<Json<cxm_store::Invitation>> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, format!("no invitation {id:?}")))?;
    if u.status != "delivered" && u.status != "failed" {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "status must be delivered or failed",
        ));
    }
    if u.detail.len() > 1000 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "detail is at most 1000 characters",
        ));
    }
    let t = p.tenant_id.clone();
    let status = u.status.clone();
    let inv = st
        .store
        .run(move |s| s.mark_invitation(&t, id, &u.status, &u.detail))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no invitation {id}")))?;
    if inv.status != status {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("invitation {id} is already {}", inv.status),
        ));
    }
    Ok(Json(inv))
}

fn html(st: &AppState, status: StatusCode, ctx: minijinja::Value) -> Response {
    let mut r = st.pages.render("survey.html", ctx);
    *r.status_mut() = status;
    r
}

fn message(st: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    html(
        st,
        status,
        context! { title => title, stage => "message", message => text },
    )
}

async fn load(
    st: &AppState,
    token: &str,
) -> Result<(String, SurveyLink, SurveyDefinition), Response> {
    let hash = sha256_hex(token);
    let h = hash.clone();
    let link = match st.store.run(move |s| s.link(&h)).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(message(
                st,
                StatusCode::NOT_FOUND,
                "Survey not found",
                "This survey link is not valid. Please check the link you were sent.",
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let (t, sid, v) = (link.tenant_id.clone(), link.survey_id.clone(), link.version);
    let def = match st.store.run(move |s| s.survey(&t, &sid, Some(v))).await {
        Ok(Some((_, d))) => serde_json::from_str::<SurveyDefinition>(&d)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()).into_response())?,
        Ok(None) => {
            return Err(message(
                st,
                StatusCode::GONE,
                "Survey closed",
                "This survey is no longer available.",
            ))
        }
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    Ok((hash, link, def))
}

/// One page of the form. `carried` holds answers from earlier pages (sent along as hidden
/// fields, so the form works without JavaScript and nothing is stored before the end).
fn questions_page(
    st: &AppState,
    token: &str,
    def: &SurveyDefinition,
    step: usize,
    answers: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let pages = def.pages();
    let step = step.min(pages.len() - 1);
    let range = pages[step].clone();
    let questions: Vec<Value> = range
        .clone()
        .filter(|i| def.visible(*i, answers))
        .map(|i| {
            let q = &def.questions[i];
            let scale = scale_of(&q.kind);
            json!({"id": q.id, "type": q.kind, "prompt": q.prompt, "required": q.required, "choices": q.choices, "multiple": q.multiple,
                   "scale": scale.as_ref().map(|s| s.0.clone()), "low": scale.as_ref().map(|s| s.1), "high": scale.as_ref().map(|s| s.2),
                   "value": answers.get(&q.id)})
        })
        .collect();
    let carried: std::collections::BTreeMap<&str, &str> = def.questions[..range.start]
        .iter()
        .filter_map(|q| answers.get(&q.id).map(|v| (q.id.as_str(), v.as_str())))
        .collect();
    html(
        st,
        status,
        context! { title => def.name.clone(), stage => "questions", token => token, questions => questions, error => error,
        step => step, pages => pages.len(), carried => carried, last_page => step + 1 == pages.len() },
    )
}

async fn page(State(st): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let (hash, link, def) = match load(&st, &token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if link.responded_at_ms.is_some() {
        return message(
            &st,
            StatusCode::OK,
            &def.name,
            "You have already answered this survey. Thank you!",
        );
    }
    let _ = st
        .store
        .run(move |s| s.mark_link(&hash, LinkEvent::Displayed))
        .await;
    questions_page(&st, &token, &def, 0, &HashMap::new(), None, StatusCode::OK)
}

async fn store_answers(
    st: &AppState,
    tenant: &str,
    answers: Vec<cxm_domain::feedback::Answer>,
) -> Result<Vec<Option<cxm_analytics::Sentiment>>, Response> {
    let mut rows = vec![];
    let mut analysed = vec![];
    for a in answers {
        let (row, s) = cxm_app::feedback::enrich(&st.analyzer, a);
        rows.push(row);
        analysed.push(s);
    }
    let t = tenant.to_string();
    st.store
        .run(move |s| s.insert_feedback(&t, &rows))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    st.themes_wake.notify_one();
    Ok(analysed)
}

async fn submit(
    State(st): State<Arc<AppState>>,
    Path(token): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (hash, link, def) = match load(&st, &token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if link.responded_at_ms.is_some() {
        return message(
            &st,
            StatusCode::OK,
            &def.name,
            "You have already answered this survey. Thank you!",
        );
    }
    let now = chrono::Utc::now();
    // raw answers as sent, by question id; only questions the branching shows count
    // a multiple-choice question sends one field per ticked box: keep them all, one per line
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in fields {
        let v = v.trim().replace('\n', " ");
        if v.is_empty() {
            continue;
        }
        form.entry(k)
            .and_modify(|e| {
                e.push('\n');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let raw: HashMap<String, String> = def
        .questions
        .iter()
        .filter_map(|q| {
            form.get(&format!("q_{}", q.id))
                .map(|v| (q.id.clone(), v.clone()))
        })
        .collect();
    let pages = def.pages();
    let step = form
        .get("step")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(pages.len() - 1);
    let mut answers = vec![];
    let mut problems = vec![];
    for i in 0..pages[step].end {
        if !def.visible(i, &raw) {
            continue;
        }
        let q = &def.questions[i];
        let Some(raw) = raw.get(&q.id).map(String::as_str) else {
            if q.required {
                problems.push(format!("Please answer “{}”.", q.prompt));
            }
            continue;
        };
        let value = if scale_of(&q.kind).is_some() {
            raw.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
        } else {
            Value::from(raw)
        };
        if q.kind == "choice" {
            let picked: Vec<&str> = raw.lines().collect();
            if picked.iter().any(|p| !q.choices.iter().any(|c| c == p))
                || (!q.multiple && picked.len() > 1)
            {
                problems.push(format!(
                    "Please pick {} of the options for “{}”.",
                    if q.multiple { "from" } else { "one" },
                    q.prompt
                ));
                continue;
            }
            // one row per ticked option, each with its own idempotency key
            for p in picked {
                let mut a = base_answer(&link, &hash, &q.id, &q.kind, Value::from(p));
                if q.multiple {
                    a["idempotency_key"] = format!("s-{}:{}:{p}", &hash[..16], q.id).into();
                }
                match parse_answer(&a, now) {
                    Ok(a) => answers.push(a),
                    Err(e) => problems.push(format!("“{}”: {}", q.prompt, e.detail)),
                }
            }
            continue;
        }
        match parse_answer(&base_answer(&link, &hash, &q.id, &q.kind, value), now) {
            Ok(a) => answers.push(a),
            Err(e) => problems.push(format!("“{}”: {}", q.prompt, e.detail)),
        }
    }
    if !problems.is_empty() {
        return questions_page(
            &st,
            &token,
            &def,
            step,
            &raw,
            Some(problems.join(" ")),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    // the next page that asks anything, given these answers; none left means done
    if let Some(next) =
        (step + 1..pages.len()).find(|p| pages[*p].clone().any(|i| def.visible(i, &raw)))
    {
        return questions_page(&st, &token, &def, next, &raw, None, StatusCode::OK);
    }
    let score = answers
        .iter()
        .find_map(|a| a.score.map(|s| (a.field_type, s)));
    let text: String = answers
        .iter()
        .filter(|a| a.field_type == FieldType::Text)
        .filter_map(|a| a.text.clone())
        .collect::<Vec<_>>()
        .join(" ");
    let analysed = match store_answers(&st, &link.tenant_id, answers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let h = hash.clone();
    let _ = st
        .store
        .run(move |s| s.mark_link(&h, LinkEvent::Responded))
        .await;
    let sentiment = analysed.iter().flatten().find_map(|s| s.cx_compound);
    let churn = analysed.iter().flatten().any(|s| s.cues.churn_intent);
    let signal = AnswerSignal {
        score,
        text: &text,
        sentiment,
        churn_intent: churn,
        new_topic: new_topic(&st, &link.tenant_id, &text).await,
    };
    let question = answered_text_prompt(&def, &raw);
    follow_up_or_thanks(&st, &token, &def, &signal, 0, &question).await
}

async fn follow_up_or_thanks(
    st: &AppState,
    token: &str,
    def: &SurveyDefinition,
    signal: &AnswerSignal<'_>,
    asked: u8,
    question: &str,
) -> Response {
    match worded_follow_up(st, def, signal, asked, question).await {
        Some(f) => html(
            st,
            StatusCode::OK,
            context! { title => def.name.clone(), stage => "follow_up", token => token, prompt => f.prompt, n => asked + 1, reason => f.reason },
        ),
        None => message(
            st,
            StatusCode::OK,
            &def.name,
            "Thank you! Your answers help us improve.",
        ),
    }
}

async fn more(
    State(st): State<Arc<AppState>>,
    Path(token): Path<String>,
    Form(form): Form<MoreForm>,
) -> Response {
    let (hash, link, def) = match load(&st, &token).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if link.responded_at_ms.is_none()
        || form.n == 0
        || form.n > def.max_follow_ups
        || i64::from(form.n) <= link.follow_ups
    {
        return Redirect::to(&format!("/s/{token}/done")).into_response();
    }
    let answer = match parse_answer(
        &base_answer(
            &link,
            &hash,
            &format!("followup{}", form.n),
            "text",
            Value::from(form.answer.trim()),
        ),
        chrono::Utc::now(),
    ) {
        Ok(a) => a,
        Err(e) => {
            return message(
                &st,
                StatusCode::UNPROCESSABLE_ENTITY,
                &def.name,
                &format!("That answer could not be saved: {}", e.detail),
            )
        }
    };
    let text = answer.text.clone().unwrap_or_default();
    let analysed = match store_answers(&st, &link.tenant_id, vec![answer]).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let _ = st
        .store
        .run(move |s| s.mark_link(&hash, LinkEvent::FollowUpAnswered))
        .await;
    let s = analysed.into_iter().flatten().next();
    let signal = AnswerSignal {
        score: None,
        text: &text,
        sentiment: s.as_ref().and_then(|s| s.cx_compound),
        churn_intent: s.is_some_and(|s| s.cues.churn_intent),
        new_topic: new_topic(&st, &link.tenant_id, &text).await,
    };
    follow_up_or_thanks(&st, &token, &def, &signal, form.n, "Follow-up").await
}

async fn done(State(st): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match load(&st, &token).await {
        Ok((_, _, def)) => message(
            &st,
            StatusCode::OK,
            &def.name,
            "Thank you! Your answers help us improve.",
        ),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
struct MoreForm {
    answer: String,
    n: u8,
}
