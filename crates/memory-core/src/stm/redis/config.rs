//! Where a Redis short-term tier lives ([`RedisConfig`]) and how its server is named in messages
//! (never with a password). Apart from the tier so that
//! [`ShortTermStorage`](crate::ShortTermStorage) can name it without depending on the tier's code.

use std::time::Duration;

/// Where a Redis short-term tier lives; see
/// [`ShortTermStorage::Redis`](crate::ShortTermStorage::Redis).
///
/// ```
/// use memory_core::RedisConfig;
///
/// let config = RedisConfig::new("redis://:secret@127.0.0.1:6379/0").with_prefix("tenant-42");
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key; tiers with different prefixes on one server are independent, also
    /// when one prefix extends another (`app` and `app:eu`). Not empty, and without a part that
    /// reads as one of the tier's key kinds and an id length (`app:s:12`): such a prefix is
    /// refused at open, as its key names could be the shorter prefix's.
    /// Default `memory_core`.
    pub prefix: String,
    /// How long to wait for a connection or an answer. Default 5 s.
    pub timeout: Duration,
    /// How long a consolidation may hold swept entries before another sweep takes them over
    /// (its consolidator is presumed dead). Default 60 s.
    pub handoff_lease: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("server", &describe_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("handoff_lease", &self.handoff_lease)
            .finish()
    }
}

impl RedisConfig {
    /// The tier at `url`, prefix `memory_core`, with default settings.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "memory_core".into(),
            timeout: Duration::from_secs(5),
            handoff_lease: Duration::from_secs(60),
        }
    }

    /// Keys under `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for the server.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long swept entries are reserved for their consolidation.
    pub fn with_handoff_lease(mut self, lease: Duration) -> Self {
        self.handoff_lease = lease;
        self
    }
}

/// `url` as it may be shown: host, port and database, never a password.
pub(crate) fn describe_url(url: &str) -> String {
    match redis::Client::open(url) {
        Ok(c) => {
            let info = c.get_connection_info();
            format!("Redis {}/{}", info.addr(), info.redis_settings().db())
        }
        Err(_) => "Redis at an unparsable address".into(),
    }
}
