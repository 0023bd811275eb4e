//! Settings of the proxies acemux replaces that it reads no more.
//!
//! Operators move to acemux with their old environment. A setting that
//! silently does nothing is worse than an error, but refusing to start over
//! it would break a working deployment, so each one set gets a warning at
//! start that says what replaces it.

/// `(environment variable, what acemux does instead)`.
const UNUSED: &[(&str, &str)] = &[
    (
        "PROXY_CHUNK_SIZE",
        "acemux reads whatever the engine sends as it arrives; buffer chunks are PROXY_BUFFER_CHUNK_SIZE",
    ),
    (
        "PROXY_HEARTBEAT_INTERVAL",
        "players are not polled; a player whose socket takes no bytes for ACEMUX_CLIENT_TIMEOUT is dropped",
    ),
    (
        "PROXY_GHOST_CLIENT_MULTIPLIER",
        "players are not polled; a player whose socket takes no bytes for ACEMUX_CLIENT_TIMEOUT is dropped",
    ),
];

/// One warning per unused legacy setting that `lookup` finds set.
pub fn unused_settings(lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    UNUSED
        .iter()
        .filter(|(name, _)| lookup(name).is_some())
        .map(|(name, instead)| format!("{name} is set but acemux does not use it: {instead}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_each_unused_setting_that_is_set() {
        let set =
            |name: &str| (name == "PROXY_CHUNK_SIZE" || name == "PROXY_GRACE_PERIOD").then(|| "1".into());
        let warnings = unused_settings(set);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("PROXY_CHUNK_SIZE is set"), "{warnings:?}");
        assert!(unused_settings(|_| None).is_empty());
    }
}
