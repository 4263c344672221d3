//! Which servers a benchmark may use: the URLs the environment names (`scripts/services.sh env`
//! prints them), and whether a missing one is a failure (`MEMORY_CORE_REQUIRE_SERVERS=1`, as in
//! `.ci/run`) or a skip to report.

/// Set to `1` where the servers run: a benchmark that cannot reach them then fails.
pub const REQUIRE_VAR: &str = "MEMORY_CORE_REQUIRE_SERVERS";

/// Whether a benchmark that cannot use its servers must fail instead of skipping them.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

/// The PostgreSQL URL from `MEMORY_CORE_POSTGRES_URL`, or why there is none.
pub fn postgres_url() -> Result<String, String> {
    match std::env::var("MEMORY_CORE_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Err("MEMORY_CORE_POSTGRES_URL is unset \
                  (scripts/services.sh start; eval \"$(scripts/services.sh env)\")"
            .to_string()),
    }
}
