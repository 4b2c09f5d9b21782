//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a secret key (cxm_sk_...)"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "basic_write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("the write key as username, empty password"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "cxm", description = "Customer experience management: ingest, one customer across channels, context for agents."),
    paths(
        crate::api::ingest::batch_doc, crate::api::ingest::native,
        api::find_customers, api::get_customer, api::customer_context, api::customer_merges, api::unmerge,
        api::quarantine, api::overview, api::list_keys, api::create_key, api::revoke_key, api::taxonomy,
        crate::api::feedback::ingest_feedback, crate::api::feedback::metric,
        crate::api::feedback::list_themes, crate::api::feedback::get_theme, crate::api::feedback::discover_themes, crate::api::feedback::rename_theme, crate::api::feedback::merge_theme, crate::api::feedback::split_theme,
        crate::api::surveys::save, crate::api::surveys::list, crate::api::surveys::get_one, crate::api::surveys::create_link, crate::api::surveys::next_step, crate::api::surveys::list_invitations, crate::api::surveys::update_invitation,
        crate::api::journeys::list, crate::api::journeys::create, crate::api::journeys::replace, crate::api::journeys::get_one, crate::api::journeys::get_metrics, crate::api::journeys::reviewed, crate::api::journeys::record_check, crate::api::journeys::list_checks,
        crate::api::health::list_accounts, crate::api::health::get_account, crate::api::health::get_signals, crate::api::health::put_signals, crate::api::health::run_backtest, crate::api::health::list_alerts, crate::api::health::get_alert, crate::api::health::update_alert,
        crate::api::tickets::create, crate::api::tickets::list, crate::api::tickets::get_one, crate::api::tickets::move_state, crate::api::tickets::verify, crate::api::tickets::close, crate::api::tickets::from_alert, crate::api::tickets::get_rules, crate::api::tickets::put_rules,
        crate::api::webhooks::create, crate::api::webhooks::list, crate::api::webhooks::remove, crate::api::webhooks::deliveries,
        crate::api::decisions::ask, crate::api::decisions::list, crate::api::decisions::get_one, crate::api::decisions::review, crate::api::decisions::queue, crate::api::policies::get_policies, crate::api::policies::put_policies, crate::api::policies::test_policies, crate::api::policies::activate, crate::api::agents::list_agents, crate::api::agents::save_agent, crate::api::agents::get_agent, crate::api::agents::agent_key, crate::api::audit::verify_audit, crate::api::decisions::report_outcome, crate::api::decisions::redeem,
        crate::api::provenance::list_keys, crate::api::provenance::rotate, crate::api::provenance::revoke, crate::api::provenance::sign, crate::api::provenance::verify_api, crate::api::provenance::checkpoint, crate::api::provenance::sign_asset, crate::api::provenance::verify_asset,
        crate::api::step_up::start, crate::api::step_up::verify,
        crate::api::privacy::erase, crate::api::privacy::export, crate::api::privacy::get_consent, crate::api::privacy::add_consent, crate::api::privacy::get_retention, crate::api::privacy::put_retention, crate::api::privacy::purge_now,
        crate::api::experiments::list, crate::api::experiments::create, crate::api::experiments::get_one, crate::api::experiments::replace, crate::api::experiments::set_status, crate::api::experiments::set_rollout, crate::api::experiments::assign, crate::api::experiments::results, crate::api::experiments::ab_calculator, crate::api::experiments::sample_size,
        crate::api::equity::get_equity, crate::api::equity::get_settings, crate::api::equity::put_settings, crate::api::equity::customer_value,
        crate::api::home::get_brief, crate::api::home::get_locale, crate::api::home::put_locale, crate::api::cluster::get_cluster,
        crate::api::maturity::get_maturity, crate::api::maturity::put_assessment, crate::api::maturity::get_roi, crate::api::maturity::put_roi,
        crate::api::users::list, crate::api::users::disable_api, crate::api::users::enable_api, crate::api::users::password_api, crate::api::users::revoke_api,
    ),
    modifiers(&Security),
    tags((name = "ingest"), (name = "customers"), (name = "feedback"), (name = "themes"), (name = "journeys"), (name = "health"), (name = "tickets"), (name = "webhooks"), (name = "agents"), (name = "provenance"), (name = "experiments"), (name = "equity"), (name = "maturity"), (name = "home"), (name = "keys"), (name = "users"), (name = "cluster"))
)]
pub struct ApiDoc;

/// The document as served: the handlers' annotations, plus the answers every operation of
/// a kind can give, which no handler should have to repeat: 401 and 403 wherever a
/// credential is needed, 400, 408 and 413 wherever there is a body, 400 wherever there are
/// query parameters, 404 wherever the path names something, 503 everywhere; and every error
/// as what it is, `application/problem+json` with the `Problem` schema.
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        conform(doc)
    })
}

pub async fn serve() -> Json<&'static serde_json::Value> {
    Json(document())
}

fn reason(code: &str) -> &'static str {
    match code {
        "400" => "the request is malformed: invalid JSON, a wrong type, an unknown field, or a bad parameter (problem+json names it)",
        "401" => "no credentials, or a key or session that is not valid",
        "403" => "the key's kind or the caller's role does not allow this",
        "404" => "nothing by that id in this tenant",
        "408" => "the body did not arrive in time",
        "413" => "the body is over the size limit",
        "503" => "the store is unavailable or the server is shutting down; retry",
        _ => "an error",
    }
}

fn conform(mut doc: serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    merge_all_of(&mut doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let body = op.get("requestBody").is_some();
            let params = op.get("parameters").and_then(Value::as_array);
            let query = params.is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
            let named = path.contains('{');
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut want = vec!["503"];
            if secured {
                want.extend(["401", "403"]);
            }
            if body {
                want.extend(["400", "408", "413"]);
            }
            if query || named {
                want.push("400");
            }
            if named {
                want.push("404");
            }
            for code in want {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| json!({"description": reason(code)}));
            }
            for (code, r) in responses.iter_mut() {
                if code.starts_with('4') || code.starts_with('5') {
                    r["content"] = problem.clone();
                }
            }
        }
    }
    doc
}

/// A schema that flattens another (`#[serde(flatten)]`) comes out as `allOf` of the other
/// and its own fields; when the other forbids extra properties, no answer can satisfy both.
/// Such schemas are written out as one object with the fields of all their parts.
fn merge_all_of(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value};
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let resolve = |part: &Value| -> Option<Value> {
        match part.get("$ref").and_then(Value::as_str) {
            Some(r) => schemas
                .get(r.trim_start_matches("#/components/schemas/"))
                .cloned(),
            None => Some(part.clone()),
        }
    };
    let Some(out) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in out.values_mut() {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array).cloned() else {
            continue;
        };
        let resolved: Option<Vec<Value>> = parts.iter().map(resolve).collect();
        let Some(resolved) = resolved else { continue };
        if !resolved.iter().all(|p| p.get("properties").is_some()) {
            continue;
        }
        let mut properties = Map::new();
        let mut required: Vec<Value> = vec![];
        for p in &resolved {
            if let Some(props) = p.get("properties").and_then(Value::as_object) {
                properties.extend(props.clone());
            }
            for r in p
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !required.contains(r) {
                    required.push(r.clone());
                }
            }
        }
        let description = schema.get("description").cloned();
        let mut merged = Map::new();
        merged.insert("type".into(), "object".into());
        merged.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            merged.insert("required".into(), Value::Array(required));
        }
        if let Some(d) = description {
            merged.insert("description".into(), d);
        }
        *schema = Value::Object(merged);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// What schemathesis found before: parameters of the query documented as path
    /// parameters, errors documented as application/json, 401 and 403 undocumented. The
    /// document itself now says otherwise, for every operation.
    #[test]
    fn every_operation_documents_its_errors_and_parameters() {
        let doc = super::document();
        let mut ops = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops += 1;
                let name = format!("{} {path}", method.to_uppercase());
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" {
                        let n = p["name"].as_str().unwrap();
                        assert!(
                            path.contains(&format!("{{{n}}}")),
                            "{name}: path parameter {n} is not in the path"
                        );
                    }
                }
                let responses = op["responses"].as_object().unwrap();
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    for code in ["401", "403"] {
                        assert!(responses.contains_key(code), "{name} lacks {code}");
                    }
                }
                for (code, r) in responses {
                    if code.starts_with('4') || code.starts_with('5') {
                        assert!(
                            r["content"].get("application/problem+json").is_some(),
                            "{name} {code} is not problem+json"
                        );
                    }
                }
            }
        }
        assert!(ops > 100, "{ops} operations");
        // a flattened schema is written out whole: no allOf that no answer could satisfy
        for (name, s) in doc["components"]["schemas"].as_object().unwrap() {
            if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
                assert!(
                    parts
                        .iter()
                        .all(|p| p.get("additionalProperties") != Some(&Value::Bool(false))),
                    "{name}"
                );
            }
        }
    }
}
