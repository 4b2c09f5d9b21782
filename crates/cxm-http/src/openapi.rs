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
        crate::ingest::batch_doc, crate::ingest::native,
        api::find_customers, api::get_customer, api::customer_context, api::customer_merges, api::unmerge,
        api::quarantine, api::overview, api::list_keys, api::create_key, api::revoke_key, api::taxonomy,
        crate::voc::ingest_feedback, crate::voc::metric,
        crate::voc::list_themes, crate::voc::get_theme, crate::voc::discover_themes, crate::voc::rename_theme, crate::voc::merge_theme, crate::voc::split_theme,
        crate::surveys::save, crate::surveys::list, crate::surveys::get_one, crate::surveys::create_link, crate::surveys::next_step, crate::surveys::list_invitations, crate::surveys::update_invitation,
        crate::journeys::list, crate::journeys::create, crate::journeys::replace, crate::journeys::get_one, crate::journeys::get_metrics, crate::journeys::reviewed, crate::journeys::record_check, crate::journeys::list_checks,
        crate::health::list_accounts, crate::health::get_account, crate::health::get_signals, crate::health::put_signals, crate::health::run_backtest, crate::health::list_alerts, crate::health::get_alert, crate::health::update_alert,
        crate::tickets::create, crate::tickets::list, crate::tickets::get_one, crate::tickets::move_state, crate::tickets::verify, crate::tickets::close, crate::tickets::from_alert, crate::tickets::get_rules, crate::tickets::put_rules,
        crate::webhooks::create, crate::webhooks::list, crate::webhooks::remove, crate::webhooks::deliveries,
        crate::decisions::ask, crate::decisions::list, crate::decisions::get_one, crate::decisions::review, crate::decisions::queue, crate::policies::get_policies, crate::policies::put_policies, crate::policies::test_policies, crate::policies::activate, crate::agents::list_agents, crate::agents::save_agent, crate::agents::get_agent, crate::agents::agent_key, crate::audit::verify_audit, crate::decisions::report_outcome, crate::decisions::redeem,
        crate::provenance::list_keys, crate::provenance::rotate, crate::provenance::revoke, crate::provenance::sign, crate::provenance::verify_api, crate::provenance::checkpoint, crate::provenance::sign_asset, crate::provenance::verify_asset,
        crate::step_up::start, crate::step_up::verify,
        crate::privacy::erase, crate::privacy::export, crate::privacy::get_consent, crate::privacy::add_consent, crate::privacy::get_retention, crate::privacy::put_retention, crate::privacy::purge_now,
        crate::experiments::list, crate::experiments::create, crate::experiments::get_one, crate::experiments::replace, crate::experiments::set_status, crate::experiments::set_rollout, crate::experiments::assign, crate::experiments::results, crate::experiments::ab_calculator, crate::experiments::sample_size,
        crate::equity::get_equity, crate::equity::get_settings, crate::equity::put_settings, crate::equity::customer_value,
        crate::maturity::get_maturity, crate::maturity::put_assessment, crate::maturity::get_roi, crate::maturity::put_roi,
    ),
    modifiers(&Security),
    tags((name = "ingest"), (name = "customers"), (name = "feedback"), (name = "themes"), (name = "journeys"), (name = "health"), (name = "tickets"), (name = "webhooks"), (name = "agents"), (name = "provenance"), (name = "experiments"), (name = "equity"), (name = "maturity"), (name = "keys"))
)]
pub struct ApiDoc;

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
