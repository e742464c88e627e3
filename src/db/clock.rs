//! Timestamps: every timestamp column holds seconds since the Unix epoch, UTC on both backends.

/// Seconds since the Unix epoch, the unit of every timestamp column (UTC on both backends).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
