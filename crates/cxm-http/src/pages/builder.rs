//! The survey builder: a plain HTML form (no JavaScript) with a row per question, branching,
//! targeting and contact-rule overrides, turned into the same validated definition the API
//! takes. Editing an existing survey pre-fills the form from its latest version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cxm_domain::survey::SurveyDefinition;
use minijinja::context;
use serde_json::json;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::ProblemResponse as _;
use crate::pages::form_post;
use crate::pages::session;
use crate::pages::user_ctx;
use crate::AppState;

/// Question rows the form offers; a survey with more is edited as JSON.
pub const ROWS: usize = 12;
pub const TYPES: [&str; 6] = ["nps", "csat", "ces", "rating", "choice", "text"];

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// The form fields for a definition (the inverse of [`definition_of`]).
pub fn form_of(id: &str, def: &SurveyDefinition) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    f.insert("survey_id".into(), id.to_string());
    f.insert("name".into(), def.name.clone());
    f.insert("max_follow_ups".into(), def.max_follow_ups.to_string());
    f.insert("avoid_topics".into(), def.avoid_topics.join(", "));
    for (i, q) in def.questions.iter().enumerate() {
        f.insert(format!("q{i}_id"), q.id.clone());
        f.insert(format!("q{i}_type"), q.kind.clone());
        f.insert(format!("q{i}_prompt"), q.prompt.clone());
        f.insert(format!("q{i}_choices"), q.choices.join(", "));
        if q.required {
            f.insert(format!("q{i}_required"), "on".into());
        }
        if q.multiple {
            f.insert(format!("q{i}_multiple"), "on".into());
        }
        if let Some(c) = &q.show_if {
            f.insert(format!("q{i}_if"), c.question.clone());
            let (op, v) = match (c.at_most, c.at_least) {
                (Some(m), _) => ("at_most", m.to_string()),
                (None, Some(m)) => ("at_least", m.to_string()),
                _ => ("any_of", c.any_of.join(", ")),
            };
            f.insert(format!("q{i}_if_op"), op.into());
            f.insert(format!("q{i}_if_value"), v);
        }
    }
    if let Some(t) = &def.targeting {
        f.insert("t_events".into(), t.events.join(", "));
        f.insert("t_channels".into(), t.channels.join(", "));
        f.insert("t_tiers".into(), t.tiers.join(", "));
        f.insert("t_sample".into(), t.sample_percent.to_string());
        f.insert("t_via".into(), t.deliver_via.clone());
    }
    if let Some(r) = &def.contact_rules {
        f.insert("c_max".into(), r.max_per_period.to_string());
        f.insert("c_period".into(), r.period_days.to_string());
        f.insert("c_gap".into(), r.min_days_between.to_string());
    }
    f
}

/// The survey id and definition a submitted form describes, validated; the error names the
/// first problem in words a survey author understands.
pub fn definition_of(f: &HashMap<String, String>) -> Result<(String, SurveyDefinition), String> {
    let get = |k: &str| f.get(k).map(|v| v.trim()).unwrap_or("");
    let id = get("survey_id").to_string();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("The survey id must be 1 to 64 letters, digits, - or _.".into());
    }
    let number = |k: &str, what: &str| -> Result<Option<f64>, String> {
        match get(k) {
            "" => Ok(None),
            v => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("{what} must be a number (got {v:?}).")),
        }
    };
    let whole = |k: &str, what: &str| -> Result<Option<u32>, String> {
        match get(k) {
            "" => Ok(None),
            v => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("{what} must be a whole number (got {v:?}).")),
        }
    };
    let mut questions = vec![];
    for i in 0..ROWS {
        let prompt = get(&format!("q{i}_prompt"));
        if prompt.is_empty() {
            continue;
        }
        let row = i + 1;
        let qid = match get(&format!("q{i}_id")) {
            "" => format!("q{row}"),
            v => v.to_string(),
        };
        let mut q = json!({"id": qid, "type": get(&format!("q{i}_type")), "prompt": prompt,
            "choices": list(get(&format!("q{i}_choices"))), "required": !get(&format!("q{i}_required")).is_empty(),
            "multiple": !get(&format!("q{i}_multiple")).is_empty()});
        let on = get(&format!("q{i}_if"));
        if !on.is_empty() {
            let value = get(&format!("q{i}_if_value"));
            let cond = match get(&format!("q{i}_if_op")) {
                op @ ("at_most" | "at_least") => {
                    let n: i64 = value.parse().map_err(|_| {
                        format!(
                            "Question {row}: the condition needs a whole number (got {value:?})."
                        )
                    })?;
                    json!({"question": on, op: n})
                }
                _ => json!({"question": on, "any_of": list(value)}),
            };
            q["show_if"] = cond;
        }
        questions.push(q);
    }
    let mut def = json!({"name": get("name"), "questions": questions,
        "max_follow_ups": whole("max_follow_ups", "Follow-ups")?.unwrap_or(2),
        "avoid_topics": list(get("avoid_topics"))});
    if !get("t_events").is_empty() {
        def["targeting"] = json!({"events": list(get("t_events")), "channels": list(get("t_channels")),
            "tiers": list(get("t_tiers")), "sample_percent": number("t_sample", "The sample")?.unwrap_or(100.0),
            "deliver_via": match get("t_via") { "" => "email", v => v }});
    }
    let rules = [
        whole("c_max", "Invitations per period")?,
        whole("c_period", "The period")?,
        whole("c_gap", "Days between invitations")?,
    ];
    match rules {
        [None, None, None] => {}
        [Some(m), Some(p), Some(g)] => {
            def["contact_rules"] =
                json!({"max_per_period": m, "period_days": p, "min_days_between": g})
        }
        _ => return Err("Contact rules need all three numbers, or none for the defaults.".into()),
    }
    let def: SurveyDefinition =
        serde_json::from_value(def).map_err(|e| format!("The survey is not complete: {e}."))?;
    def.validate()
        .map_err(|e| format!("The survey has a problem: {e}."))?;
    Ok((id, def))
}

fn render(
    st: &AppState,
    p: &Principal,
    form: &BTreeMap<String, String>,
    editing: bool,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let mut r = st.pages.render(
        "survey_builder.html",
        context! { title => "Survey builder", page => "surveys", user => user_ctx(p), f => form, rows => (0..ROWS).collect::<Vec<_>>(),
                   types => TYPES, editing => editing, error => error },
    );
    *r.status_mut() = status;
    r
}

/// `GET /surveys/build`: the form for a new survey.
pub async fn new_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    page(st, None, headers).await
}

/// `GET /surveys/{id}/build`: the form filled from the survey's latest version.
pub async fn edit_page(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    page(st, Some(id), headers).await
}

async fn page(st: Arc<AppState>, id: Option<String>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/surveys").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_admin() {
        return e.into_response();
    }
    let Some(id) = id else {
        let mut f = BTreeMap::new();
        f.insert("max_follow_ups".into(), "2".into());
        f.insert("q0_id".into(), "nps".into());
        f.insert("q0_type".into(), "nps".into());
        f.insert(
            "q0_prompt".into(),
            "How likely are you to recommend us?".into(),
        );
        f.insert("q0_required".into(), "on".into());
        f.insert("q1_id".into(), "why".into());
        f.insert("q1_type".into(), "text".into());
        f.insert(
            "q1_prompt".into(),
            "What is the main reason for your score?".into(),
        );
        return render(&st, &p, &f, false, None, StatusCode::OK);
    };
    let (t, i) = (p.tenant_id.clone(), id.clone());
    match st.store.run(move |s| s.survey(&t, &i, None)).await {
        Ok(Some((_, d))) => match serde_json::from_str::<SurveyDefinition>(&d) {
            Ok(def) if def.questions.len() <= ROWS => {
                render(&st, &p, &form_of(&id, &def), true, None, StatusCode::OK)
            }
            Ok(_) => render(
                &st,
                &p,
                &BTreeMap::new(),
                true,
                Some(format!(
                    "{id} has more than {ROWS} questions; edit it as JSON on the Surveys page."
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(e) => {
                ApiError::new(crate::error::ErrorCode::Internal, e.to_string()).into_response()
            }
        },
        Ok(None) => ApiError::new(crate::error::ErrorCode::NotFound, format!("no survey {id}"))
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /surveys/build`: saves the form as the survey's next version.
pub async fn save(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<HashMap<String, String>>(&st, req, "/surveys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let keep: BTreeMap<String, String> = form.clone().into_iter().collect();
    let (id, def) = match definition_of(&form) {
        Ok(x) => x,
        Err(e) => {
            return render(
                &st,
                &p,
                &keep,
                false,
                Some(e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    let json = serde_json::to_string(&def).unwrap_or_default();
    let (t, i, name) = (p.tenant_id.clone(), id.clone(), def.name.clone());
    match st
        .store
        .run(move |s| s.save_survey(&t, &i, &name, &json))
        .await
    {
        Ok(v) => {
            crate::pages::render_surveys(
                &st,
                &p,
                json!({"saved": {"survey_id": id, "version": v}}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_a_definition_and_back() {
        let f = form(&[
            ("survey_id", "post-ticket"),
            ("name", "After your ticket"),
            ("max_follow_ups", "1"),
            ("avoid_topics", "pricing, legal"),
            ("q0_id", "nps"),
            ("q0_type", "nps"),
            ("q0_prompt", "Recommend us?"),
            ("q0_required", "on"),
            ("q1_type", "text"),
            ("q1_prompt", "What should we fix?"),
            ("q1_if", "nps"),
            ("q1_if_op", "at_most"),
            ("q1_if_value", "6"),
            ("q3_type", "choice"),
            ("q3_prompt", "Where did you reach us?"),
            ("q3_choices", "chat, phone"),
            ("t_events", "Ticket Resolved"),
            ("t_channels", "chat"),
            ("t_sample", "50"),
            ("c_max", "2"),
            ("c_period", "30"),
            ("c_gap", "7"),
        ]);
        let (id, def) = definition_of(&f).unwrap();
        assert_eq!(id, "post-ticket");
        assert_eq!(def.questions.len(), 3, "empty rows are skipped");
        assert_eq!(
            def.questions[1].id, "q2",
            "an unnamed question is named by its row"
        );
        assert_eq!(def.questions[1].show_if.as_ref().unwrap().at_most, Some(6));
        assert_eq!(def.questions[2].choices, ["chat", "phone"]);
        assert_eq!(def.targeting.as_ref().unwrap().sample_percent, 50.0);
        assert_eq!(def.contact_rules.unwrap().min_days_between, 7);
        // and back: the form of the definition gives the same definition
        let again: HashMap<String, String> = form_of(&id, &def).into_iter().collect();
        assert_eq!(definition_of(&again).unwrap().1, def);
    }

    #[test]
    fn problems_are_named() {
        let base = [
            ("survey_id", "s"),
            ("name", "S"),
            ("q0_type", "nps"),
            ("q0_prompt", "Recommend?"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut f = form(&base);
            f.extend(form(extra));
            definition_of(&f).unwrap_err()
        };
        assert!(with(&[("survey_id", "bad id")]).contains("survey id"));
        assert!(with(&[("q0_type", "stars")]).contains("type"));
        assert!(with(&[
            ("q1_type", "text"),
            ("q1_prompt", "Why?"),
            ("q1_if", "nps"),
            ("q1_if_op", "at_most"),
            ("q1_if_value", "low")
        ])
        .contains("whole number"));
        assert!(with(&[("c_max", "2")]).contains("all three"));
        assert!(
            with(&[("t_events", "Ticket Resolved"), ("t_sample", "0")]).contains("sample_percent")
        );
        assert!(with(&[("max_follow_ups", "many")]).contains("number"));
    }
}
