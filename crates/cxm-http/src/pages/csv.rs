//! Lists as CSV, for the spreadsheet every CX team keeps: RFC 4180 quoting, and cells that
//! a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return) made text.
//! A plain number stays a number: `-0.42` is a negative sentiment, not a formula.

use axum::http::header;
use axum::response::{IntoResponse, Response};

fn cell(s: &str) -> String {
    let number = s.parse::<f64>().is_ok_and(f64::is_finite) && !s.contains(['e', 'E']);
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !number {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The rows as a CSV download named `name`.csv.
pub(crate) fn download(name: &str, head: &[&str], rows: &[Vec<String>]) -> Response {
    let mut out = String::new();
    for line in std::iter::once(head.iter().map(|h| cell(h)).collect::<Vec<_>>())
        .chain(rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()))
    {
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_quoting_and_defuses_formulas() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-12"), "-12", "a negative number is a number");
        assert_eq!(cell("-0.42"), "-0.42");
        assert_eq!(cell("-1+1"), "'-1+1");
        assert_eq!(cell("+1E3"), "'+1E3");
        assert_eq!(cell("-inf"), "'-inf");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }
}
