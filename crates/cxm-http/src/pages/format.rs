//! How the dashboard writes a number, an amount, a duration or a time: thousands separators,
//! the tenant's currency and time zone, integer scores, no raw floats. Registered as template
//! filters, so a template says `{{ arr|money }}` and never formats by hand.

use chrono::{DateTime, TimeZone, Utc};
use cxm_app::locale::Locale;
use minijinja::value::Value;
use minijinja::{Environment, State};

/// `1234567.8` as `1,234,568` (with `decimals` digits after the point).
pub fn grouped(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    // half away from zero, as people round (formatting alone rounds half to even)
    let scale = 10f64.powi(decimals as i32);
    let s = format!("{:.*}", decimals, (x.abs() * scale).round() / scale);
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    // no "-0"
    if x < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

/// An amount in the tenant's currency: whole units from 100 up (nobody reads cents of ARR),
/// the currency's minor digits below; millions shortened when `short`.
pub fn money(x: f64, l: &Locale, short: bool) -> String {
    let (sym, minor) = l.symbol();
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    let body = if short && a >= 1_000_000.0 {
        format!("{}M", trim_zeros(&grouped(a / 1_000_000.0, 1)))
    } else if short && a >= 10_000.0 {
        format!("{}k", grouped(a / 1_000.0, 0))
    } else if a >= 100.0 || minor == 0 {
        grouped(a, 0)
    } else {
        grouped(a, usize::from(minor))
    };
    format!("{sign}{sym}{body}")
}

fn trim_zeros(s: &str) -> String {
    s.strip_suffix(".0").unwrap_or(s).to_string()
}

/// A share in [0, 1] as a whole percentage (one decimal under 10 %).
pub fn percent(share: f64) -> String {
    if !share.is_finite() {
        return "–".into();
    }
    let p = share * 100.0;
    if p.abs() < 10.0 && p.fract().abs() > 1e-9 {
        format!("{}%", trim_zeros(&grouped(p, 1)))
    } else {
        format!("{}%", grouped(p, 0))
    }
}

/// Hours as a reader counts them: minutes under an hour, hours under two days, else days.
pub fn hours(h: f64) -> String {
    if !h.is_finite() {
        return "–".into();
    }
    let sign = if h < 0.0 { "-" } else { "" };
    let a = h.abs();
    if a < 1.0 {
        format!("{sign}{} min", grouped(a * 60.0, 0))
    } else if a < 48.0 {
        format!("{sign}{} h", trim_zeros(&grouped(a, 1)))
    } else {
        format!("{sign}{} d", trim_zeros(&grouped(a / 24.0, 1)))
    }
}

/// A customer or account trait as a person reads it.
pub fn trait_value(v: &Value) -> String {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "–".into(),
        ValueKind::Bool => if v.is_true() { "yes" } else { "no" }.into(),
        ValueKind::Number => as_f64(v).map_or_else(
            || v.to_string(),
            |x| {
                if x.fract() == 0.0 {
                    grouped(x, 0)
                } else {
                    trim_zeros(&grouped(x, 2)).trim_end_matches('0').to_string()
                }
            },
        ),
        ValueKind::Seq => v
            .try_iter()
            .map(|it| it.map(|x| trait_value(&x)).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        _ => v.to_string(),
    }
}

/// A value made safe as one segment of a URL path.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How long ago (or from now) a time is, in the largest whole unit.
pub fn relative(ms: i64, now_ms: i64) -> String {
    let d = (now_ms - ms) / 1000;
    let (future, s) = (d < 0, d.unsigned_abs());
    let text = match s {
        0..=44 => return "just now".into(),
        45..=3599 => unit(s / 60, "minute"),
        3600..=86_399 => unit(s / 3600, "hour"),
        86_400..=2_591_999 => unit(s / 86_400, "day"),
        2_592_000..=31_535_999 => unit(s / 2_592_000, "month"),
        _ => unit(s / 31_536_000, "year"),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn unit(n: u64, what: &str) -> String {
    let n = n.max(1);
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A time in the tenant's zone, `1 Dec 2026, 14:05 CET`.
pub fn absolute(ms: i64, l: &Locale) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
        return "–".into();
    };
    l.tz()
        .from_utc_datetime(&t.naive_utc())
        .format("%-d %b %Y, %H:%M %Z")
        .to_string()
}

/// A day in the tenant's zone, `1 Dec 2026`.
pub fn day(ms: i64, l: &Locale) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
        return "–".into();
    };
    l.tz()
        .from_utc_datetime(&t.naive_utc())
        .format("%-d %b %Y")
        .to_string()
}

/// The `locale` the page was rendered with (every page gets one; see `Pages::render`).
fn locale_of(state: &State) -> Locale {
    let Some(v) = state.lookup("locale") else {
        return Locale::default();
    };
    let field = |k: &str| {
        v.get_attr(k)
            .ok()
            .and_then(|x| x.as_str().map(str::to_string))
    };
    match (field("currency"), field("time_zone")) {
        (Some(currency), Some(time_zone)) => Locale {
            currency,
            time_zone,
        },
        _ => Locale::default(),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    if v.is_none() || v.is_undefined() {
        return None;
    }
    f64::try_from(v.clone()).ok()
}

fn as_ms(v: &Value) -> Option<i64> {
    if v.is_none() || v.is_undefined() {
        return None;
    }
    i64::try_from(v.clone())
        .ok()
        .or_else(|| f64::try_from(v.clone()).ok().map(|f| f as i64))
}

/// Registers the filters: `num`, `count` (`{{ n | count("answer") }}` is "1 answer" or
/// "1,204 answers"), `money`, `money_short`, `score`, `signed`, `percent`,
/// `hours`, `segment`, `ago`, `when` and `day`. A missing value reads as an en dash.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("num", |v: Value, decimals: Option<usize>| {
        as_f64(&v).map_or("–".into(), |x| grouped(x, decimals.unwrap_or(0)))
    });
    env.add_filter("count", |v: Value, noun: String| {
        as_f64(&v).map_or("–".into(), |x| {
            let s = if x == 1.0 { "" } else { "s" };
            format!("{} {noun}{s}", grouped(x, 0))
        })
    });
    env.add_filter("money", |state: &State, v: Value| {
        as_f64(&v).map_or("–".into(), |x| money(x, &locale_of(state), false))
    });
    env.add_filter("money_short", |state: &State, v: Value| {
        as_f64(&v).map_or("–".into(), |x| money(x, &locale_of(state), true))
    });
    // NPS and other scores: whole points, the sign shown for a change
    env.add_filter("score", |v: Value| {
        as_f64(&v).map_or("–".into(), |x| grouped(x.round(), 0))
    });
    env.add_filter("signed", |v: Value, decimals: Option<usize>| {
        as_f64(&v).map_or("–".into(), |x| {
            let s = grouped(x, decimals.unwrap_or(0));
            if s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
                s
            } else {
                format!("+{s}")
            }
        })
    });
    env.add_filter("percent", |v: Value| as_f64(&v).map_or("–".into(), percent));
    env.add_filter("hours", |v: Value| as_f64(&v).map_or("–".into(), hours));
    // a trait as sent: whole numbers grouped, others to two places, lists joined
    env.add_filter("trait", |v: Value| trait_value(&v));
    // an error message as a sentence: capital first, full stop last
    env.add_filter("sentence", |v: String| {
        let mut c = v.trim().chars();
        let mut s: String = c
            .next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default();
        if !s.is_empty() && !s.ends_with(['.', '!', '?']) {
            s.push('.');
        }
        s
    });
    // an id put into a link's path: everything but unreserved characters escaped
    env.add_filter("segment", |v: Value| segment(&v.to_string()));
    env.add_filter("ago", |v: Value| {
        as_ms(&v).map_or("–".into(), |ms| {
            relative(ms, Utc::now().timestamp_millis())
        })
    });
    env.add_filter("when", |state: &State, v: Value| {
        as_ms(&v).map_or("–".into(), |ms| absolute(ms, &locale_of(state)))
    });
    env.add_filter("day", |state: &State, v: Value| {
        as_ms(&v).map_or("–".into(), |ms| day(ms, &locale_of(state)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(grouped(20573.0, 0), "20,573");
        assert_eq!(grouped(2385600.0, 0), "2,385,600");
        assert_eq!(grouped(999.0, 0), "999");
        assert_eq!(grouped(-1234.5, 1), "-1,234.5");
        assert_eq!(grouped(-0.2, 0), "0");
        let usd = Locale::default();
        let eur = Locale::parse("EUR", "Europe/Berlin").unwrap();
        let jpy = Locale::parse("JPY", "Asia/Tokyo").unwrap();
        assert_eq!(money(180000.0, &usd, false), "$180,000");
        assert_eq!(money(2385600.0, &eur, true), "€2.4M");
        assert_eq!(money(45000.0, &eur, true), "€45k");
        assert_eq!(money(12.5, &usd, false), "$12.50");
        assert_eq!(money(12.5, &jpy, false), "¥13");
        assert_eq!(percent(0.426), "43%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.054), "5.4%");
        assert_eq!(hours(835.57), "34.8 d");
        assert_eq!(hours(5.25), "5.3 h");
        assert_eq!(hours(0.5), "30 min");
    }

    #[test]
    fn times_are_relative_and_in_the_tenant_zone() {
        let now = 1_764_547_200_000; // 2025-12-01 00:00 UTC
        assert_eq!(relative(now - 10_000, now), "just now");
        assert_eq!(relative(now - 26 * 86_400_000, now), "26 days ago");
        assert_eq!(relative(now - 3_600_000, now), "1 hour ago");
        assert_eq!(relative(now + 7_200_000, now), "in 2 hours");
        let berlin = Locale::parse("EUR", "Europe/Berlin").unwrap();
        assert_eq!(absolute(now, &berlin), "1 Dec 2025, 01:00 CET");
        assert_eq!(absolute(now, &Locale::default()), "1 Dec 2025, 00:00 UTC");
    }

    proptest! {
        /// Grouping only adds separators: taking them out gives the plain figure back.
        #[test]
        fn grouping_keeps_the_digits(x in -1e12f64..1e12) {
            let g = grouped(x, 0);
            let plain = format!("{:.0}", x.abs().round());
            prop_assert_eq!(g.trim_start_matches('-').replace(',', ""), plain);
            for part in g.trim_start_matches('-').split(',').skip(1) {
                prop_assert_eq!(part.len(), 3);
            }
        }
    }
}
