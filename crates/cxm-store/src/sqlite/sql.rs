//! How a shared room's statement runs on SQLite: reads on a reader connection, writes in the
//! writer's immediate transaction.

use super::*;
use crate::sql::{Arg, Cell, Db, Dialect, Row, SqlBackend};

struct Lite<'a>(&'a Connection);

fn value(a: &Arg) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match *a {
        Arg::Text(s) => V::Text(s.to_string()),
        Arg::OptText(s) => s.map_or(V::Null, |s| V::Text(s.to_string())),
        Arg::Int(i) => V::Integer(i),
        Arg::OptInt(i) => i.map_or(V::Null, V::Integer),
        Arg::Real(x) => V::Real(x),
        Arg::OptReal(x) => x.map_or(V::Null, V::Real),
    }
}

impl Db for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        let params: Vec<_> = args.iter().map(value).collect();
        let mut st = self.0.prepare_cached(sql)?;
        Ok(st.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>> {
        let params: Vec<_> = args.iter().map(value).collect();
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let rows = st
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Cell::Null,
                            rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                            rusqlite::types::ValueRef::Real(v) => Cell::Real(v),
                            rusqlite::types::ValueRef::Text(t) => {
                                Cell::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            other => {
                                return Err(rusqlite::Error::InvalidColumnType(
                                    i,
                                    format!("{:?}", other.data_type()),
                                    other.data_type(),
                                ))
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(Row)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

impl SqlBackend for SqliteStore {
    fn read_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.read(|c| f(&mut Lite(c)))
    }

    fn write_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.write(|tx| f(&mut Lite(tx)))
    }
}
