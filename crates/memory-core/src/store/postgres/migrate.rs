//! The migration runner of the PostgreSQL store: `schema.sql` split into its numbered
//! migrations, applied under an advisory lock in one transaction, so that app instances starting
//! together migrate once; a schema newer than this build is refused.

use crate::error::{Error, Result};

/// The schema file: migrations, then the statements the store sends (see its header).
const SCHEMA_SQL: &str = include_str!("schema.sql");

/// The schema version this build writes and reads.
pub const LATEST_VERSION: i64 = 8;

/// Key of the advisory lock held while migrating ("MEMC"), with the schema's hash beside it.
pub const LOCK_KEY: i32 = 1_296_387_395;

/// Key of the embedder lock ("MEMD"), with the schema's hash beside it: taken shared by every
/// write that inserts vectors, exclusively by every change of the store's embedder (`schema.sql`,
/// migration 6).
pub const EMBEDDER_LOCK_KEY: i32 = 1_296_387_396;

/// Key of the re-embedding lock ("MEME"), with the hash of `<schema>.reembed` beside it: a
/// session lock held by the one instance re-embedding the store. A key of its own: under
/// [`LOCK_KEY`] it shared its space with the agents' write locks (`LOCK_KEY`, hashtext(agent)),
/// which the re-embedding takes on its other connections, so an agent whose name hashed alike
/// (`<schema>.reembed` itself, or a collision) made the re-embedding wait for itself forever.
pub const REEMBED_LOCK_KEY: i32 = 1_296_387_397;

/// Key of the lock a store's first migration takes ("MEMF", with 0 beside it): it creates the
/// `vector` extension, which is one per database, so that two new stores (two schemas) created
/// at once in a database without it do not both create it (the second failed with a unique
/// violation on `pg_extension`).
pub const EXTENSION_LOCK_KEY: i32 = 1_296_387_398;

/// One migration's SQL, ready to run against `schema` for `embedding_dim`.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub sql: String,
}

/// Checks that `schema` can name a PostgreSQL schema without quoting: lowercase ASCII letters,
/// digits and `_`, not starting with a digit, at most 63 bytes (the identifier limit).
pub fn check_schema_name(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "PostgreSQL schema name {schema:?} must be 1-63 lowercase ASCII letters, digits or _, \
             not start with a digit or pg_"
        )))
    }
}

/// `sql` with the schema name `memory_core` replaced by `schema` (checked by
/// [`check_schema_name`], so it needs no quoting).
pub fn in_schema(sql: &str, schema: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    const NAME: &str = "memory_core";
    while let Some(at) = rest.find(NAME) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + NAME.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        if word(before) || word(after) || after == Some(':') {
            // Part of a longer identifier, or a Rust path in a comment: left alone.
            out.push_str(NAME);
        } else {
            out.push_str(schema);
        }
        rest = &rest[at + NAME.len()..];
    }
    out.push_str(rest);
    out
}

/// The migrations after `from`, in order, for `schema` and `embedding_dim`.
pub fn pending(from: i64, schema: &str, embedding_dim: usize) -> Vec<Migration> {
    let mut out = Vec::new();
    let mut current: Option<(i64, String)> = None;
    for line in SCHEMA_SQL.lines() {
        if let Some(rest) = line.strip_prefix("-- migration ") {
            if let Some(done) = current.take() {
                out.push(done);
            }
            let number = rest.split(':').next().and_then(|n| n.trim().parse().ok());
            current = number.map(|n| (n, String::new()));
            continue;
        }
        if line.starts_with("-- query ") {
            if let Some(done) = current.take() {
                out.push(done);
            }
            continue;
        }
        if let Some((_, sql)) = current.as_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    if let Some(done) = current.take() {
        out.push(done);
    }
    out.into_iter()
        .filter(|(v, _)| *v > from)
        .map(|(version, sql)| Migration {
            version,
            sql: in_schema(&sql, schema).replace(":embedding_dim", &embedding_dim.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_holds_every_migration_up_to_the_latest_in_order() {
        let all = pending(0, "memory_core", 384);
        let versions: Vec<i64> = all.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=LATEST_VERSION).collect::<Vec<_>>());
        assert!(all[0].sql.contains("vector(384)"));
        assert!(!all[0].sql.contains(":embedding_dim"));
        assert!(
            !all[0].sql.contains("-- query"),
            "query blocks are not migrations"
        );
        assert!(pending(LATEST_VERSION, "x", 8).is_empty());
    }

    #[test]
    fn the_schema_name_is_replaced_as_a_whole_word_only() {
        let sql = "CREATE SCHEMA memory_core; SELECT memory_core.f(); -- memory_core::text, \
                   my_memory_core, 'memory_core'";
        assert_eq!(
            in_schema(sql, "t_1"),
            "CREATE SCHEMA t_1; SELECT t_1.f(); -- memory_core::text, my_memory_core, 't_1'"
        );
    }

    #[test]
    fn schema_names_that_would_need_quoting_are_refused() {
        for bad in ["", "Upper", "1x", "a-b", "a\"b", "pg_x", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
        for good in ["memory_core", "t_123_abc", "_x"] {
            check_schema_name(good).unwrap();
        }
    }
}
