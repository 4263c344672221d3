//! Where a PostgreSQL long-term store lives ([`PostgresConfig`]) and how its server is named in
//! messages (never with a password). Apart from the store so that [`Storage`](crate::Storage)
//! can name it without depending on the store's code.

use std::time::Duration;

/// Where a PostgreSQL long-term store lives and how to talk to it; see
/// [`Storage::Postgres`](crate::Storage::Postgres).
///
/// ```
/// use memory_core::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://app:secret@127.0.0.1:5432/memories")
///     .with_schema("tenant_42")
///     .with_pool_size(16);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq-style URL or key=value string (`postgres://user:password@host:port/database`).
    pub url: String,
    /// The PostgreSQL schema holding the store (created and migrated on open). Stores in
    /// different schemas of one database are independent. Default `memory_core`.
    pub schema: String,
    /// Connections per handle. Default 8.
    pub pool_size: usize,
    /// How long to wait for a connection (to connect, or for a free one). Default 5 s.
    pub connect_timeout: Duration,
    /// `application_name` of the connections, as `pg_stat_activity` shows it.
    pub application_name: String,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("server", &describe_url(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PostgresConfig {
    /// The store at `url`, schema `memory_core`, with default settings.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "memory_core".into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            application_name: "memory-core".into(),
        }
    }

    /// The store in `schema` (lowercase letters, digits, `_`).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connections per handle (at least 1).
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// How long to wait for a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `application_name` the connections report.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }
}

/// `url` as it may be shown: user, hosts, ports and database, never a password.
pub(crate) fn describe_url(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => describe(&c),
        Err(_) => "PostgreSQL at an unparsable address".into(),
    }
}

fn describe(c: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            let port = c
                .get_ports()
                .get(i)
                .or(c.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    format!(
        "PostgreSQL {}@{}/{}",
        c.get_user().unwrap_or("?"),
        hosts.join(","),
        c.get_dbname().unwrap_or("?")
    )
}
