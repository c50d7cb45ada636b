//! Dynamic WHERE clauses: `?` in a fragment becomes the next `$N`, and the values are bound
//! in order on either backend with `bind_args!`.

use chrono::{DateTime, Utc};

/// One bind value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    I64(i64),
    Time(DateTime<Utc>),
}

/// A conjunction of conditions with their values.
#[derive(Debug, Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `fragment` (with `?` for each value in `values`, in order).
    pub(crate) fn and(
        &mut self,
        fragment: &str,
        values: impl IntoIterator<Item = Arg>,
    ) -> &mut Self {
        let values: Vec<Arg> = values.into_iter().collect();
        let mut out = String::with_capacity(fragment.len() + 8);
        let mut it = values.into_iter();
        for ch in fragment.chars() {
            if ch == '?' {
                if let Some(v) = it.next() {
                    self.args.push(v);
                    out.push_str(&format!("${}", self.args.len()));
                    continue;
                }
            }
            out.push(ch);
        }
        self.clauses.push(out);
        self
    }

    /// The next placeholder number (for clauses appended after the WHERE, like LIMIT).
    pub(crate) fn next(&self) -> usize {
        self.args.len() + 1
    }

    /// ` WHERE a AND b` (or nothing).
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Binds every `Arg` of a slice onto a sqlx query of either backend.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::store::args::Arg::Text(s) => q.bind(s.clone()),
                $crate::store::args::Arg::I64(n) => q.bind(*n),
                $crate::store::args::Arg::Time(t) => q.bind(*t),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut w = Where::new();
        w.and("tenant_id = ?", [Arg::Text("t".into())])
            .and(
                "(a LIKE ? OR b LIKE ?)",
                [Arg::Text("x".into()), Arg::Text("y".into())],
            )
            .and("deleted_at IS NULL", []);
        assert_eq!(
            w.sql(),
            " WHERE tenant_id = $1 AND (a LIKE $2 OR b LIKE $3) AND deleted_at IS NULL"
        );
        assert_eq!(w.next(), 4);
    }
}
