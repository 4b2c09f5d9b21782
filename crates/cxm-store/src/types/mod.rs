//! Records the store reads and writes.

use cxm_domain::NormalizedEvent;
use serde::Serialize;
use serde_json::Value;

/// The rollup's dimensions and the feedback column each reads ('' is the overall count).
pub(crate) const ROLLUP_COLUMNS: [(&str, &str); 7] = [
    ("", "''"),
    ("channel", "channel"),
    ("survey", "survey_id"),
    ("journey", "journey"),
    ("stage", "stage"),
    ("agent", "agent"),
    ("tier", "tier"),
];

/// The rollup's promoter/passive/detractor increments for a response's NPS score.
pub(crate) fn nps_category(score: Option<i64>) -> [i64; 3] {
    match score {
        Some(s) if s >= 9 => [1, 0, 0],
        Some(s) if s >= 7 => [0, 1, 0],
        Some(_) => [0, 0, 1],
        None => [0, 0, 0],
    }
}

/// Category sums per theme as [`ThemeNps`] rows (empty categories left out).
pub(crate) fn nps_rows(rows: Vec<(String, [i64; 3])>) -> Vec<ThemeNps> {
    rows.into_iter()
        .flat_map(|(theme, c)| {
            [(10, c[0]), (7, c[1]), (0, c[2])]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(move |(score, n)| ThemeNps {
                    theme_id: theme.clone(),
                    score,
                    responses: n as u64,
                })
        })
        .collect()
}

mod agents;
pub use agents::*;
mod cluster;
pub use cluster::*;
mod equity;
pub use equity::*;
mod events;
pub use events::*;
mod experiments;
pub use experiments::*;
mod feedback;
pub use feedback::*;
mod health;
pub use health::*;
mod identity;
pub use identity::*;
mod journeys;
pub use journeys::*;
mod outbox;
pub use outbox::*;
mod privacy;
pub use privacy::*;
mod provenance;
pub use provenance::*;
mod surveys;
pub use surveys::*;
mod tenants;
pub use tenants::*;
mod themes;
pub use themes::*;
mod tickets;
pub use tickets::*;
