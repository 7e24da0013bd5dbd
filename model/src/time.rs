//! Timestamps as the contract writes them: RFC 3339, fractional seconds,
//! explicit offset (`2025-09-09T12:34:56.123456+01:00`), in the host's zone.

use chrono::{DateTime, Local, TimeZone};

pub fn rfc3339<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

pub fn now_rfc3339() -> String {
    rfc3339(&Local::now())
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_fraction_and_offset() {
        let s = super::now_rfc3339();
        let parsed = chrono::DateTime::parse_from_rfc3339(&s).expect("valid RFC 3339");
        assert!(s.contains('.'));
        assert!(s.ends_with(&parsed.offset().to_string()));
    }
}
