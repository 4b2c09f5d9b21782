//! The date range the voice-of-the-customer, themes and journey pages share: `?from=&to=`
//! (YYYY-MM-DD, both days included) or `?days=N` back from today, carried from page to page
//! so an analyst looks at one window everywhere.

use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub days: Option<String>,
}

/// A parsed window: `from ≤ to ≤ today`, at most five years.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The windows offered as one click.
const PRESETS: &[u32] = &[30, 90, 180, 365];
const MAX_DAYS: i64 = 5 * 366;

fn bad(detail: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, detail)
}

fn parse_day(s: &str, what: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| bad(format!("{what} must be a day as YYYY-MM-DD, not {s:?}")))
}

impl RangeQuery {
    /// Whether no window was asked for (a page that defaults to all time shows all time).
    pub fn is_empty(&self) -> bool {
        [&self.from, &self.to, &self.days]
            .iter()
            .all(|f| f.as_deref().is_none_or(|s| s.trim().is_empty()))
    }

    /// The window asked for, or None for all time (the journey pages' default).
    pub fn range_or_all(&self) -> Result<Option<Range>, ApiError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.range(90).map(Some)
    }

    /// The window asked for, or the last `default_days` days.
    pub fn range(&self, default_days: u32) -> Result<Range, ApiError> {
        let today = Utc::now().date_naive();
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        let (from, to, days) = (
            nonempty(&self.from),
            nonempty(&self.to),
            nonempty(&self.days),
        );
        let r = match (from, to) {
            (None, None) => {
                let days = match days {
                    Some(d) => d
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|d| (1..=MAX_DAYS as u32).contains(d))
                        .ok_or_else(|| {
                            bad(format!(
                                "days must be a whole number from 1 to {MAX_DAYS}, not {d:?}"
                            ))
                        })?,
                    None => default_days,
                };
                Range {
                    from: today - Duration::days(i64::from(days) - 1),
                    to: today,
                }
            }
            (from, to) => {
                let to = to
                    .map(|t| parse_day(&t, "to"))
                    .transpose()?
                    .unwrap_or(today);
                let from = match from {
                    Some(f) => parse_day(&f, "from")?,
                    None => to - Duration::days(i64::from(default_days) - 1),
                };
                Range { from, to }
            }
        };
        if r.from > r.to {
            return Err(bad(format!("from ({}) is after to ({})", r.from, r.to)));
        }
        if r.to > today {
            return Err(bad(format!("to ({}) is in the future", r.to)));
        }
        if r.days() > MAX_DAYS {
            return Err(bad(format!("a range is at most {MAX_DAYS} days")));
        }
        Ok(r)
    }
}

/// The one-click windows, each marked current or not.
fn presets(current: impl Fn(u32) -> bool) -> Vec<Value> {
    PRESETS
        .iter()
        .map(|d| json!({"days": d, "label": if *d == 365 { "1 year".to_string() } else { format!("{d} days") }, "current": current(*d)}))
        .collect()
}

impl Range {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    pub fn first_day(&self) -> String {
        self.from.format("%Y-%m-%d").to_string()
    }

    pub fn last_day(&self) -> String {
        self.to.format("%Y-%m-%d").to_string()
    }

    /// Whether this is the last `days` days up to today.
    fn is_last(&self, days: u32) -> bool {
        self.to == Utc::now().date_naive() && self.days() == i64::from(days)
    }

    /// The query string that keeps this window on another page.
    pub fn query(&self) -> String {
        match PRESETS.iter().find(|d| self.is_last(**d)) {
            Some(d) => format!("days={d}"),
            None => format!("from={}&to={}", self.first_day(), self.last_day()),
        }
    }

    /// What the picker template (`_range.html`) shows.
    pub fn ctx(&self) -> Value {
        let presets = presets(|d| self.is_last(d));
        let preset = PRESETS.iter().any(|d| self.is_last(*d));
        json!({"from": self.first_day(), "to": self.last_day(), "days": self.days(), "query": self.query(), "presets": presets, "preset": preset,
               "label": format!("{} to {}", self.from.format("%-d %b %Y"), self.to.format("%-d %b %Y"))})
    }

    /// The picker on a page whose default is all time: the window, or "All time" current.
    pub fn ctx_or_all(range: Option<&Range>) -> Value {
        let mut v = match range {
            Some(r) => r.ctx(),
            None => {
                let presets = presets(|_| false);
                json!({"from": "", "to": "", "query": "", "presets": presets, "preset": true, "label": "All time"})
            }
        };
        v["all_time"] = json!({"current": range.is_none()});
        v
    }

    /// The window as the app's journey scan counts it: whole UTC days.
    pub fn window(&self) -> cxm_app::journey_scan::Window {
        cxm_app::journeys::window_of_days(self.from, self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<&str>, to: Option<&str>, days: Option<&str>) -> RangeQuery {
        RangeQuery {
            from: from.map(String::from),
            to: to.map(String::from),
            days: days.map(String::from),
        }
    }

    #[test]
    fn windows_parse_and_mistakes_are_named() {
        let today = Utc::now().date_naive();
        let r = q(None, None, None).range(90).unwrap();
        assert_eq!((r.to, r.days()), (today, 90));
        assert_eq!(r.query(), "days=90");
        assert_eq!(q(None, None, Some("30")).range(90).unwrap().days(), 30);
        let r = q(Some("2026-01-01"), Some("2026-01-31"), None)
            .range(90)
            .unwrap();
        assert_eq!(r.days(), 31);
        assert_eq!(r.query(), "from=2026-01-01&to=2026-01-31");
        // an empty field (a form sent with it blank) is no field
        assert_eq!(
            q(Some(""), Some(""), Some("30")).range(90).unwrap().days(),
            30
        );
        for (bad, says) in [
            (q(Some("2026-13-01"), None, None), "from must be a day"),
            (q(Some("2026-02-01"), Some("2026-01-01"), None), "is after"),
            (q(None, Some("2999-01-01"), None), "in the future"),
            (q(None, None, Some("0")), "days must be"),
            (q(None, None, Some("many")), "days must be"),
            (q(Some("2000-01-01"), Some("2020-01-01"), None), "at most"),
        ] {
            let e = bad.range(90).unwrap_err();
            assert!(e.detail.contains(says), "{}", e.detail);
        }
    }
}
