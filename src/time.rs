//! Times as clients see them: stored as Unix seconds, answered in RFC 3339 (UTC) by the API and
//! as a short readable date on pages.

use rocket::time::OffsetDateTime;
use rocket::time::format_description::well_known::Rfc3339;

/// `secs` (Unix time) as RFC 3339 in UTC: `2026-12-01T20:18:00Z`.
pub fn rfc3339(secs: i64) -> String {
    utc(secs).format(&Rfc3339).unwrap_or_default()
}

/// `secs` (Unix time) for a page: `1 Dec 2026, 20:18 UTC`.
pub fn readable(secs: i64) -> String {
    let t = utc(secs);
    let month = t.month().to_string();
    let short = month.get(..3).unwrap_or(&month);
    format!(
        "{} {short} {}, {:02}:{:02} UTC",
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// Times outside the calendar's range (none the service stores) read as the epoch.
fn utc(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_in_rfc3339_and_readable_forms() {
        assert_eq!(rfc3339(1_796_156_280), "2026-12-01T20:18:00Z");
        assert_eq!(readable(1_796_156_280), "1 Dec 2026, 20:18 UTC");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
