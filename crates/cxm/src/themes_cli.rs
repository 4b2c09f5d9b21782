//! `cxm themes`: discovery, listing and the analyst's edits from the command line.

use super::*;

/// The tenant's stored themes, through the same code the API uses.
pub(crate) fn stored_themes(store: &dyn cxm_store::Store, cmd: &ThemesCmd) -> anyhow::Result<()> {
    use cxm_app::themes::{self, EditRequest};
    let api = |e: cxm_app::AppError| anyhow::anyhow!("{}: {}", e.code.code(), e.detail);
    let (tenant, edit) = match cmd {
        ThemesCmd::Rediscover { tenant, days, k } => {
            anyhow::ensure!((1..=730).contains(days), "--days must be between 1 and 730");
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let out = themes::discover(store, tenant, *days, *k).map_err(api)?;
            println!("{}", serde_json::to_string(&out)?);
            return Ok(());
        }
        ThemesCmd::List {
            tenant,
            days,
            all,
            json,
        } => {
            anyhow::ensure!((1..=730).contains(days), "--days must be between 1 and 730");
            anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
            let l = themes::list(store, tenant, *days, *all).map_err(api)?;
            print(*json, serde_json::to_value(&l)?, || {
                l.themes
                    .iter()
                    .map(|t| {
                        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| v.to_string());
                        format!(
                            "{}\t{}\t{}\tanswers={}\tsentiment={}\tnps_impact={}\tarr={}",
                            t.id,
                            t.status,
                            t.name,
                            t.answers,
                            f(t.sentiment),
                            f(t.nps_impact),
                            t.arr
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
        ThemesCmd::Rename {
            tenant,
            theme,
            label,
        } => (
            tenant,
            (
                theme,
                EditRequest::Rename {
                    label: label.clone(),
                },
            ),
        ),
        ThemesCmd::Merge {
            tenant,
            theme,
            into,
        } => (tenant, (theme, EditRequest::Merge { into: into.clone() })),
        ThemesCmd::Split {
            tenant,
            theme,
            terms,
            label,
        } => (
            tenant,
            (
                theme,
                EditRequest::Split {
                    terms: terms
                        .split(',')
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect(),
                    label: label.clone(),
                },
            ),
        ),
        ThemesCmd::Discover { .. } => unreachable!("discover reads a file, not the store"),
    };
    anyhow::ensure!(store.tenant(tenant)?.is_some(), "no tenant {tenant}");
    let out = themes::edit(store, tenant, edit.0, &edit.1, "cli").map_err(api)?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
