//! Voice of the customer: surveys and their links, the NPS/CSAT/CES trends, and themes with
//! their trend and the analyst's edits.

use super::*;

pub(crate) const EXAMPLE_SURVEY: &str = r#"{
  "name": "How did we do?",
  "questions": [
    {"id": "nps", "type": "nps", "prompt": "How likely are you to recommend us?", "required": true},
    {"id": "why", "type": "text", "prompt": "What is the main reason for your score?"}
  ],
  "max_follow_ups": 2,
  "avoid_topics": []
}"#;

pub(crate) async fn render_surveys(
    st: &AppState,
    p: &Principal,
    extra: Value,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let loaded = st
        .store
        .run(move |s| {
            let list = s.list_surveys(&t)?;
            let mut defs = std::collections::HashMap::new();
            for x in &list {
                if let Some((_, d)) = s.survey(&t, &x.survey_id, None)? {
                    defs.insert(x.survey_id.clone(), d);
                }
            }
            Ok((list, defs, s.invitation_counts(&t)?))
        })
        .await;
    let (surveys, defs, counts) = match loaded {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let surveys: Vec<Value> = surveys
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["response_rate"] = serde_json::json!((s.displays > 0).then(|| (s.responses as f64
                / s.displays as f64
                * 1000.0)
                .round()
                / 10.0));
            let targeting = defs
                .get(&s.survey_id)
                .and_then(|d| serde_json::from_str::<cxm_domain::survey::SurveyDefinition>(d).ok())
                .and_then(|d| d.targeting)
                .map(|t| {
                    let mut parts = vec![format!("after {}", t.events.join(" or "))];
                    if !t.channels.is_empty() {
                        parts.push(format!("on {}", t.channels.join("/")));
                    }
                    if !t.tiers.is_empty() {
                        parts.push(format!("tier {}", t.tiers.join("/")));
                    }
                    if t.sample_percent < 100.0 {
                        parts.push(format!("{}% sampled", t.sample_percent));
                    }
                    parts.push(format!("via {}", t.deliver_via));
                    parts.join(", ")
                });
            v["targeting"] = serde_json::json!(targeting);
            let mut by_status = serde_json::Map::new();
            for (sid, status, n) in &counts {
                if sid == &s.survey_id {
                    by_status.insert(status.clone(), (*n).into());
                }
            }
            v["invitations"] = Value::Object(by_status);
            v
        })
        .collect();
    let mut r = st.pages.render(
        "surveys.html",
        context! {
            title => "Surveys", page => "surveys", user => user_ctx(p), surveys => surveys, can_admin => p.role.can_administer(),
            error => extra.get("error").cloned(), link => extra.get("link").cloned(), saved => extra.get("saved").cloned(),
            form_id => extra.get("form_id").and_then(Value::as_str).unwrap_or("post-ticket"),
            form_def => extra.get("form_def").and_then(Value::as_str).unwrap_or(EXAMPLE_SURVEY),
        },
    );
    *r.status_mut() = status;
    r
}

pub(crate) async fn surveys_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers, "/surveys").await {
        Ok(p) => render_surveys(&st, &p, serde_json::json!({}), StatusCode::OK).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct SurveyForm {
    survey_id: String,
    definition: String,
}

pub(crate) async fn save_survey(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (p, form) = match form_post::<SurveyForm>(&st, req, "/surveys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let keep = |error: String| serde_json::json!({"error": error, "form_id": form.survey_id, "form_def": form.definition});
    let id_ok = !form.survey_id.is_empty()
        && form.survey_id.len() <= 64
        && form
            .survey_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return render_surveys(
            &st,
            &p,
            keep("The survey id must be 1 to 64 letters, digits, - or _.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let def: cxm_domain::survey::SurveyDefinition = match serde_json::from_str(&form.definition) {
        Ok(d) => d,
        Err(e) => {
            return render_surveys(
                &st,
                &p,
                keep(format!(
                    "The definition is not valid JSON for a survey: {e}"
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    if let Err(e) = def.validate() {
        return render_surveys(
            &st,
            &p,
            keep(format!("The definition has a problem: {e}")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let json = serde_json::to_string(&def).unwrap_or_default();
    let (t, id, name) = (
        p.tenant_id.clone(),
        form.survey_id.clone(),
        def.name.clone(),
    );
    match st
        .store
        .run(move |s| s.save_survey(&t, &id, &name, &json))
        .await
    {
        Ok(v) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"saved": {"survey_id": form.survey_id, "version": v}}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct LinkForm {
    identifier: Option<String>,
}

pub(crate) async fn survey_link(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<LinkForm>(&st, req, "/surveys", true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let identifier = form
        .identifier
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    match cxm_app::surveys::new_link(&st, &p.tenant_id, &id, identifier, None).await {
        Ok(l) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"link": {"survey_id": id, "version": l.version, "url": l.url}}),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            render_surveys(
                &st,
                &p,
                serde_json::json!({"error": e.detail}),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

pub(crate) async fn voc_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(rq): Query<super::range::RangeQuery>,
) -> Response {
    let p = match session(&st, &headers, "/voc").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let range = match rq.range(90) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut metrics = vec![];
    // weeks, unless the window is long enough that weeks would crowd the chart
    let interval = if range.days() > 200 { "month" } else { "week" };
    let q = |interval: &str| cxm_app::feedback::MetricQuery {
        from: Some(range.first_day()),
        to: Some(range.last_day()),
        interval: Some(interval.into()),
        by: None,
    };
    for (metric, title) in [
        ("nps", "NPS"),
        ("csat", "CSAT (% satisfied)"),
        ("ces", "CES (1-7, higher is easier)"),
    ] {
        match cxm_app::feedback::report(&st.store, &p.tenant_id, metric, &q(interval)).await {
            Ok(r) => {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["title"] = title.into();
                metrics.push(v);
            }
            Err(e) => return e.into_response(),
        }
    }
    let trend = nps_chart(&metrics[0]["series"]);
    let t = p.tenant_id.clone();
    let (from, to) = (range.from, range.to);
    let themes = match cxm_app::blocking(&st, move |s| {
        cxm_app::themes::list_between(s, &t, from, to, false)
    })
    .await
    {
        Ok(mut t) => {
            t.themes.truncate(6);
            serde_json::to_value(&t).unwrap_or_default()
        }
        Err(e) => return e.into_response(),
    };
    st.pages.render("voc.html", context! { title => "Voice of the customer", page => "voc", user => user_ctx(&p), metrics => metrics, trend => trend, themes => themes,
        range => range.ctx(), interval => interval })
}

/// Bars from zero to each week's NPS on a -100..100 axis, with the interval as a whisker.
pub(crate) fn nps_chart(series: &Value) -> Value {
    let (width, height, left, top, bottom) = (900.0, 240.0, 48.0, 10.0, 24.0);
    let plot = height - top - bottom;
    let y = |v: f64| top + (100.0 - v.clamp(-100.0, 100.0)) / 200.0 * plot;
    let points = series.as_array().cloned().unwrap_or_default();
    let slot = (width - left) / points.len().max(1) as f64;
    let bar_width = (slot * 0.7).clamp(2.0, 40.0);
    let bars: Vec<Value> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v = p["value"].as_f64().unwrap_or(0.0);
            let (y0, y1) = (y(0.0), y(v));
            serde_json::json!({
                "x": left + i as f64 * slot + (slot - bar_width) / 2.0, "y": y0.min(y1), "h": (y0 - y1).abs().max(1.0),
                "value": v, "n": p["n"], "ci_low": p["ci_low"], "ci_high": p["ci_high"], "period": p["period"],
                "ci_top": y(p["ci_high"].as_f64().unwrap_or(v)), "ci_bottom": y(p["ci_low"].as_f64().unwrap_or(v)),
                "label": p["period"].as_str().map(|s| s.get(5..).unwrap_or(s).to_string()),
            })
        })
        .collect();
    let ticks: Vec<Value> = [100.0, 50.0, 0.0, -50.0, -100.0]
        .iter()
        .map(|v| serde_json::json!({"y": y(*v), "label": format!("{v}")}))
        .collect();
    serde_json::json!({"width": width, "height": height, "left": left, "bar_width": bar_width, "bars": bars, "ticks": ticks})
}

pub(crate) const SPARK: (f64, f64) = (140.0, 28.0);

/// Polyline points for a weekly-volume sparkline, scaled to the theme's own peak.
pub(crate) fn sparkline(trend: &[cxm_app::themes::TrendPoint]) -> String {
    let (w, h) = SPARK;
    let peak = trend.iter().map(|p| p.answers).max().unwrap_or(0).max(1) as f64;
    let step = w / (trend.len().max(2) - 1) as f64;
    trend
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - 2.0 - p.answers as f64 / peak * (h - 4.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) async fn render_themes(
    st: &Arc<AppState>,
    p: &Principal,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    match super::range::RangeQuery::default().range(90) {
        Ok(range) => render_themes_in(st, p, range, flash, error, status).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn render_themes_in(
    st: &Arc<AppState>,
    p: &Principal,
    range: super::range::Range,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = p.tenant_id.clone();
    let (from, to) = (range.from, range.to);
    let list = match cxm_app::blocking(st, move |s| {
        cxm_app::themes::list_between(s, &t, from, to, false)
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let sparks: std::collections::HashMap<String, String> = list
        .themes
        .iter()
        .map(|t| (t.id.clone(), sparkline(&t.trend)))
        .collect();
    let mut themes = serde_json::to_value(&list).unwrap_or_default();
    themes["discovered_ms"] = themes["discovered_at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
        .into();
    let can_edit = p.require_analyst().is_ok();
    let mut r = st.pages.render(
        "themes.html",
        context! { title => "Themes", page => "themes", user => user_ctx(p), themes => themes, sparks => sparks, spark => context! { width => SPARK.0, height => SPARK.1 }, can_edit => can_edit, flash => flash, error => error,
            range => range.ctx() },
    );
    *r.status_mut() = status;
    r
}

pub(crate) async fn themes_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(rq): Query<super::range::RangeQuery>,
) -> Response {
    let p = match session(&st, &headers, "/themes").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match rq.range(90) {
        Ok(range) => render_themes_in(&st, &p, range, None, None, StatusCode::OK).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn themes_discover(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let p = match signed_post(&st, &headers, "/themes", false).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let t = p.tenant_id.clone();
    let outcome = cxm_app::blocking(&st, move |s| cxm_app::themes::discover(s, &t, 90, None))
        .await
        .map(|d| {
            format!(
                "Discovered {} themes in {} answers: {} known, {} new, {} retired, {} in noise.",
                d.matched + d.created,
                d.answers,
                d.matched,
                d.created,
                d.retired,
                d.noise
            )
        });
    theme_outcome(&st, &p, outcome.map_err(Into::into)).await
}

/// The themes page after an analyst's action: its message, or the problem with the request.
pub(crate) async fn theme_outcome(
    st: &Arc<AppState>,
    p: &Principal,
    outcome: Result<String, ApiError>,
) -> Response {
    match outcome {
        Ok(msg) => render_themes(st, p, Some(msg), None, StatusCode::OK).await,
        Err(e) if matches!(e.code, ErrorCode::InvalidParameter | ErrorCode::NotFound) => {
            render_themes(
                st,
                p,
                None,
                Some(e.detail),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ThemeForm {
    label: Option<String>,
    into: Option<String>,
    terms: Option<String>,
}

pub(crate) async fn theme_edit(
    State(st): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (p, form) = match form_post::<ThemeForm>(&st, req, "/themes", false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = p.require_analyst() {
        return e.into_response();
    }
    let edit = match (action.as_str(), form) {
        (
            "rename",
            ThemeForm {
                label: Some(label), ..
            },
        ) => cxm_app::themes::EditRequest::Rename { label },
        (
            "merge",
            ThemeForm {
                into: Some(into), ..
            },
        ) => cxm_app::themes::EditRequest::Merge { into },
        (
            "split",
            ThemeForm {
                terms: Some(terms),
                label: Some(label),
                ..
            },
        ) => cxm_app::themes::EditRequest::Split {
            terms: terms
                .split([',', ' '])
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
            label,
        },
        ("rename" | "merge" | "split", _) => {
            return ApiError::new(ErrorCode::InvalidParameter, "the form is missing a field")
                .into_response()
        }
        _ => {
            return ApiError::new(ErrorCode::NotFound, format!("no theme action {action:?}"))
                .into_response()
        }
    };
    let (t, actor, edit2) = (p.tenant_id.clone(), p.actor.clone(), edit.clone());
    let outcome = cxm_app::blocking(&st, move |s| {
        cxm_app::themes::edit(s, &t, &id, &edit2, &actor)
    })
    .await
    .map(|o| match edit {
        cxm_app::themes::EditRequest::Rename { label } => format!("Renamed to {label}."),
        cxm_app::themes::EditRequest::Merge { .. } => format!("Merged; {} answers moved.", o.moved),
        cxm_app::themes::EditRequest::Split { label, .. } => {
            format!("Split out {label}; {} answers moved.", o.moved)
        }
    });
    theme_outcome(&st, &p, outcome.map_err(Into::into)).await
}
