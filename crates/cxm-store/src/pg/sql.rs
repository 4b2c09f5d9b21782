//! How a shared room's statement runs on PostgreSQL: in one transaction of the pool's.

use super::*;
use crate::sql::{Arg, Cell, Db, Dialect, Row, SqlBackend};

struct Pg<'a, 'b>(&'a mut PgTx<'b>);

fn boxed(a: &Arg) -> Box<dyn postgres::types::ToSql + Sync> {
    match *a {
        Arg::Text(s) => Box::new(s.to_string()),
        Arg::OptText(s) => Box::new(s.map(str::to_string)),
        Arg::Int(i) => Box::new(i),
        Arg::OptInt(i) => Box::new(i),
        Arg::Real(x) => Box::new(x),
        Arg::OptReal(x) => Box::new(x),
    }
}

impl Db for Pg<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        let p: Vec<_> = args.iter().map(boxed).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            p.iter().map(|b| b.as_ref()).collect();
        let st = self.0.st_shared(sql, args.len())?;
        Ok(self.0.tx.execute(&st, &refs)?)
    }

    fn rows(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>> {
        use postgres::types::Type;
        let p: Vec<_> = args.iter().map(boxed).collect();
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            p.iter().map(|b| b.as_ref()).collect();
        let st = self.0.st_shared(sql, args.len())?;
        let rows = self.0.tx.query(&st, &refs)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let t = r.columns()[i].type_();
                        Ok(if *t == Type::INT8 {
                            r.get::<_, Option<i64>>(i).map_or(Cell::Null, Cell::Int)
                        } else if *t == Type::INT4 {
                            r.get::<_, Option<i32>>(i)
                                .map_or(Cell::Null, |v| Cell::Int(i64::from(v)))
                        } else if *t == Type::FLOAT8 {
                            r.get::<_, Option<f64>>(i).map_or(Cell::Null, Cell::Real)
                        } else if *t == Type::TEXT || *t == Type::VARCHAR {
                            r.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text)
                        } else {
                            return Err(StoreError::Backend(format!(
                                "column {i} has type {t}, which shared rooms do not read"
                            )));
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }
}

impl SqlBackend for PgStore {
    fn read_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.tx(|g| f(&mut Pg(g)))
    }

    fn write_sql<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.tx(|g| f(&mut Pg(g)))
    }
}
