//! Values a client chose, made safe for a log line: control characters (newlines, ANSI
//! escapes) are written escaped, so a typed email cannot forge a second log entry or colour
//! an operator's terminal. Use it for every user-supplied field: `email = %Field(&email)`.

use std::fmt;

/// A user-supplied log field.
pub struct Field<'a>(pub &'a str);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // cap what one field may add to a line, too
        const MAX: usize = 512;
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX {
                return f.write_str("…");
            }
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202e}') {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let typed = "ana@example.com\n2026-12-01T00:00:00Z INFO signed in email=root\u{1b}[31m";
        let out = Field(typed).to_string();
        assert!(!out.contains('\n') && !out.contains('\u{1b}'), "{out}");
        assert!(out.contains("\\u{a}") && out.contains("\\u{1b}"));
        assert_eq!(Field("plain é 名").to_string(), "plain é 名");
        assert_eq!(Field(&"x".repeat(2000)).to_string().chars().count(), 513);
    }
}
