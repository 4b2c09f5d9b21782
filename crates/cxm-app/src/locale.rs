//! How a tenant's numbers read: the currency its money is in and the time zone its people
//! work in. Kept as a tenant document; every page formats with it.

use std::sync::Arc;

use cxm_store::Store;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::blocking;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::App;

/// The currencies a tenant can choose, with the symbol a reader expects and how many minor
/// digits an amount has (ISO 4217).
pub const CURRENCIES: &[(&str, &str, u8)] = &[
    ("USD", "$", 2),
    ("EUR", "€", 2),
    ("GBP", "£", 2),
    ("JPY", "¥", 0),
    ("CAD", "CA$", 2),
    ("AUD", "A$", 2),
    ("NZD", "NZ$", 2),
    ("CHF", "CHF ", 2),
    ("SEK", "SEK ", 2),
    ("NOK", "NOK ", 2),
    ("DKK", "DKK ", 2),
    ("PLN", "PLN ", 2),
    ("INR", "₹", 2),
    ("BRL", "R$", 2),
    ("MXN", "MX$", 2),
    ("SGD", "S$", 2),
    ("HKD", "HK$", 2),
    ("ZAR", "R ", 2),
    ("KRW", "₩", 0),
    ("CNY", "CN¥", 2),
];

/// A tenant's currency and time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Locale {
    /// ISO 4217 code, one of those the dashboard knows (USD by default).
    pub currency: String,
    /// IANA time zone name, e.g. `Europe/Berlin` (UTC by default).
    pub time_zone: String,
}

impl Default for Locale {
    fn default() -> Self {
        Locale {
            currency: "USD".into(),
            time_zone: "UTC".into(),
        }
    }
}

impl Locale {
    /// The currency's symbol and minor digits.
    pub fn symbol(&self) -> (&'static str, u8) {
        CURRENCIES
            .iter()
            .find(|(c, _, _)| *c == self.currency)
            .map_or(("$", 2), |(_, s, d)| (*s, *d))
    }

    /// The time zone, UTC when the stored name no longer parses.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// Checks a locale a person submitted.
    pub fn parse(currency: &str, time_zone: &str) -> AppResult<Locale> {
        let currency = currency.trim().to_ascii_uppercase();
        if !CURRENCIES.iter().any(|(c, _, _)| *c == currency) {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "currency must be one of {} (got {currency:?})",
                    CURRENCIES
                        .iter()
                        .map(|c| c.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let time_zone = time_zone.trim();
        if time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(AppError::new(
                ErrorCode::InvalidParameter,
                format!("time_zone must be an IANA name such as Europe/Berlin (got {time_zone:?})"),
            ));
        }
        Ok(Locale {
            currency,
            time_zone: time_zone.to_string(),
        })
    }
}

pub fn locale(store: &dyn Store, tenant: &str) -> AppResult<Locale> {
    Ok(match store.document(tenant, "locale")? {
        // a document a newer version wrote, or a broken one, reads as the default rather than
        // taking every page down
        Some(d) => serde_json::from_str(&d.body).unwrap_or_default(),
        None => Locale::default(),
    })
}

/// Checks and saves the tenant's locale (an admin's change, kept with its author).
pub async fn save(st: &Arc<App>, p: &Principal, l: Locale) -> AppResult<Locale> {
    p.require_admin()?;
    let l = Locale::parse(&l.currency, &l.time_zone)?;
    let body =
        serde_json::to_string(&l).map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))?;
    let (t, actor) = (p.tenant_id.clone(), p.actor.clone());
    blocking(st, move |s| {
        Ok(s.save_document(&t, "locale", &body, &actor)?)
    })
    .await?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_zones_and_says_what_is_wrong() {
        let l = Locale::parse("eur", "Europe/Berlin").unwrap();
        assert_eq!(l.currency, "EUR");
        assert_eq!(l.symbol(), ("€", 2));
        assert_eq!(l.tz(), chrono_tz::Europe::Berlin);
        let e = Locale::parse("XXX", "UTC").unwrap_err();
        assert!(e.to_string().contains("currency must be one of"), "{e}");
        let e = Locale::parse("USD", "Mars/Olympus").unwrap_err();
        assert!(e.to_string().contains("IANA"), "{e}");
    }
}
