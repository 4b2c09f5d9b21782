//! `cxm customer` (find, show, erase, export) and `cxm survey`.

use super::*;

pub(crate) fn parse_identifier(s: &str) -> anyhow::Result<cxm_domain::Identifier> {
    cxm_domain::Identifier::parse_typed(s)
        .with_context(|| format!("identifier {s:?} must be type:value, e.g. email:ada@example.com"))
}

pub(crate) fn find_profile(
    store: &dyn cxm_store::Store,
    tenant: &str,
    identifier: &str,
) -> anyhow::Result<cxm_store::Profile> {
    let id = parse_identifier(identifier)?;
    let pid = store
        .profile_for(tenant, &id)?
        .with_context(|| format!("no customer has {identifier} in tenant {tenant}"))?;
    store
        .profile(tenant, &pid)?
        .with_context(|| format!("profile {pid} vanished"))
}

pub(crate) fn customer(store: &dyn cxm_store::Store, cmd: &CustomerCmd) -> anyhow::Result<()> {
    match cmd {
        CustomerCmd::Show {
            tenant,
            identifier,
            json,
        } => {
            let p = find_profile(store, tenant, identifier)?;
            let recent = store.timeline(
                tenant,
                &p,
                &cxm_store::TimelinePage {
                    before: None,
                    limit: 100,
                },
            )?;
            let events: Vec<cxm_domain::context::RecentEvent> = recent
                .iter()
                .map(|e| cxm_domain::context::RecentEvent {
                    name: e.name.clone(),
                    event_type: e.event_type.clone(),
                    category: serde_json::from_value(json!(e.category))
                        .unwrap_or(cxm_domain::EventCategory::Uncategorized),
                    channel: cxm_domain::Channel::parse(&e.channel)
                        .unwrap_or(cxm_domain::Channel::Other),
                    timestamp: chrono::DateTime::from_timestamp_millis(e.timestamp_ms)
                        .unwrap_or_default(),
                })
                .collect();
            let summary = cxm_domain::context::summary(&events, chrono::Utc::now());
            print(*json, json!({"profile": p, "summary": summary}), || {
                let ids = p
                    .identifiers
                    .iter()
                    .map(|i| format!("{}:{}", i.kind, i.value))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "{} ({} events)\n{summary}\nidentifiers: {ids}",
                    p.id, p.event_count
                )
            });
            Ok(())
        }
        CustomerCmd::Merges {
            tenant,
            identifier,
            json,
        } => {
            let p = find_profile(store, tenant, identifier)?;
            let l = store.ledger(tenant, &p.id)?;
            print(*json, json!(l), || {
                l.iter()
                    .map(|e| {
                        let id = e
                            .identifier
                            .as_ref()
                            .map(|i| format!("{}:{}", i.kind, i.value))
                            .unwrap_or_default();
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            e.action,
                            e.other_profile_id.as_deref().unwrap_or("-"),
                            id,
                            e.message_id.as_deref().unwrap_or("-"),
                            e.reason.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        CustomerCmd::Erase { tenant, identifier } => {
            parse_identifier(identifier)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let erased = cxm_app::privacy::erase_customer(store, tenant, identifier, &actor)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.code(), e.detail))?;
            println!("{}", serde_json::to_string_pretty(&erased)?);
            Ok(())
        }
        CustomerCmd::Export { tenant, identifier } => {
            parse_identifier(identifier)?;
            let export = cxm_app::privacy::export_customer(store, tenant, identifier)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code.code(), e.detail))?;
            println!("{}", serde_json::to_string_pretty(&export)?);
            Ok(())
        }
        CustomerCmd::Unmerge {
            tenant,
            identifier,
            reason,
        } => {
            let id = parse_identifier(identifier)?;
            find_profile(store, tenant, identifier)?;
            let actor = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let stats = store.block_identifier(tenant, &id, reason, &actor)?;
            println!(
                "{}",
                json!({"blocked": identifier, "events_replayed": stats.events})
            );
            Ok(())
        }
    }
}

pub(crate) fn survey(store: &dyn cxm_store::Store, cmd: &SurveyCmd) -> anyhow::Result<()> {
    match cmd {
        SurveyCmd::Save {
            tenant,
            survey_id,
            file,
        } => {
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            anyhow::ensure!(
                !survey_id.is_empty()
                    && survey_id.len() <= 64
                    && survey_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "survey id must be 1 to 64 letters, digits, - or _"
            );
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let def: cxm_domain::survey::SurveyDefinition = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a survey definition", file.display()))?;
            def.validate()
                .map_err(|e| anyhow::anyhow!("invalid definition: {e}"))?;
            let v =
                store.save_survey(tenant, survey_id, &def.name, &serde_json::to_string(&def)?)?;
            println!("{}", json!({"survey_id": survey_id, "version": v}));
            Ok(())
        }
        SurveyCmd::List { tenant, json } => {
            let list = store.list_surveys(tenant)?;
            print(*json, json!(list), || {
                list.iter()
                    .map(|s| {
                        format!(
                            "{}\tv{}\t{}\tlinks={}\tdisplays={}\tresponses={}",
                            s.survey_id, s.version, s.name, s.links, s.displays, s.responses
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        SurveyCmd::Invitations {
            tenant,
            status,
            limit,
            json,
        } => {
            anyhow::ensure!(
                status
                    .as_deref()
                    .is_none_or(|s| ["pending", "delivered", "held", "failed"].contains(&s)),
                "--status must be pending, delivered, held or failed"
            );
            let list = store.list_invitations(
                tenant,
                status.as_deref(),
                None,
                (*limit).clamp(1, 10_000),
            )?;
            print(*json, json!(list), || {
                list.iter()
                    .map(|i| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            i.id,
                            i.survey_id,
                            i.status,
                            i.identifier,
                            i.trigger_event,
                            i.url.as_deref().unwrap_or(&i.detail)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}
