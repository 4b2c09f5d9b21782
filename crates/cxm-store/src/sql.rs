//! One way to run a statement that both backends understand, for the rooms whose SQL is the
//! same in SQLite and PostgreSQL: those are written once, as a blanket impl over
//! [`SqlBackend`], and each backend only says how to run a statement (`sqlite/sql.rs`,
//! `pg/sql.rs`). Statements number their placeholders (`?1`, `?2`); PostgreSQL gets `$1`.
//! Integers are 64-bit on both sides (BIGINT columns). Each connection prepares a statement
//! once and keeps it by its text, so a statement's text comes from constants, never from values.

use crate::{Result, StoreError};

/// A statement's argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    OptReal(Option<f64>),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}

impl From<f64> for Arg<'_> {
    fn from(x: f64) -> Self {
        Arg::Real(x)
    }
}

impl From<Option<f64>> for Arg<'_> {
    fn from(x: Option<f64>) -> Self {
        Arg::OptReal(x)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(i: Option<i64>) -> Self {
        Arg::OptInt(i)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::OptText(s)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Arg::OptText(s.as_deref())
    }
}

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// Which SQL a statement has to be written in, for the few that differ (JSON access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A row read back, by column position.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Backend(format!("no column {i} in the row")))
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Backend(format!("column {i} is null")))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            _ => Err(StoreError::Backend(format!("column {i} is not text"))),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Backend(format!("column {i} is null")))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(n) => Ok(Some(*n)),
            _ => Err(StoreError::Backend(format!("column {i} is not an integer"))),
        }
    }

    pub(crate) fn real(&self, i: usize) -> Result<f64> {
        self.opt_real(i)?
            .ok_or_else(|| StoreError::Backend(format!("column {i} is null")))
    }

    pub(crate) fn opt_real(&self, i: usize) -> Result<Option<f64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Real(x) => Ok(Some(*x)),
            // SQLite keeps a REAL that is a whole number as one
            Cell::Int(n) => Ok(Some(*n as f64)),
            _ => Err(StoreError::Backend(format!("column {i} is not a number"))),
        }
    }
}

/// A connection or transaction a shared room runs its statements on.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;
    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64>;
    fn rows(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>>;
    fn row(&mut self, sql: &str, args: &[Arg]) -> Result<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }
}

/// A backend that can hand a shared room a reader or a write transaction.
pub(crate) trait SqlBackend {
    fn read_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T>;
    /// One transaction: committed when `f` returns Ok, rolled back otherwise.
    fn write_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T>;
}

/// Every row of a statement, each read by `f`.
pub(crate) fn all<T>(
    db: &mut dyn Db,
    sql: &str,
    args: &[Arg],
    f: fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    db.rows(sql, args)?.iter().map(f).collect()
}

/// The first row of a statement, read by `f`, if there is one.
pub(crate) fn one<T>(
    db: &mut dyn Db,
    sql: &str,
    args: &[Arg],
    f: fn(&Row) -> Result<T>,
) -> Result<Option<T>> {
    db.row(sql, args)?.as_ref().map(f).transpose()
}

/// `?1`.. `?N` as PostgreSQL's `$1`.. `$N` (highest first, so `?12` is not read as `?1`).
pub(crate) fn dollar_placeholders(sql: &str, n: usize) -> String {
    let mut out = sql.to_string();
    for i in (1..=n.max(1)).rev() {
        out = out.replace(&format!("?{i}"), &format!("${i}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_highest_first() {
        assert_eq!(
            dollar_placeholders("a = ?1 AND b = ?12 AND c = ?2", 12),
            "a = $1 AND b = $12 AND c = $2"
        );
    }

    #[test]
    fn cells_read_back_by_type() {
        let r = Row(vec![
            Cell::Text("x".into()),
            Cell::Int(3),
            Cell::Null,
            Cell::Real(0.5),
        ]);
        assert_eq!(r.real(3).unwrap(), 0.5);
        assert_eq!(r.real(1).unwrap(), 3.0);
        assert!(r.real(0).is_err());
        assert_eq!(r.text(0).unwrap(), "x");
        assert_eq!(r.int(1).unwrap(), 3);
        assert_eq!(r.opt_int(2).unwrap(), None);
        assert!(r.int(0).is_err());
        assert!(r.text(2).is_err());
        assert!(r.text(9).is_err());
    }
}
