//! Timestamps as the contract writes them: RFC 3339 with microseconds and
//! an explicit offset (`2025-09-09T12:34:56.123456+01:00`). One type, one
//! format: the API and the activities write the host's zone, the workflow
//! writes UTC (its time must not depend on where a worker runs).

use chrono::{DateTime, Local, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::{fmt, time::SystemTime};

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f%:z";

/// A point in time as the contract writes it (kept as written: a value
/// recorded in an older execution reads back unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// Now, in the host's zone.
    pub fn now() -> Self {
        Self::at(&Local::now())
    }

    /// `t`, in its own zone.
    pub fn at<Tz: TimeZone>(t: &DateTime<Tz>) -> Self
    where
        Tz::Offset: fmt::Display,
    {
        Self(t.format(FORMAT).to_string())
    }

    /// `t` in UTC: workflow time (deterministic).
    pub fn utc(t: SystemTime) -> Self {
        Self::at(&DateTime::<Utc>::from(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;
    use std::time::{Duration, SystemTime};

    #[test]
    fn has_microseconds_and_an_offset() {
        let s = Timestamp::now();
        let parsed = chrono::DateTime::parse_from_rfc3339(s.as_str()).expect("valid RFC 3339");
        let fraction = s.as_str().split('.').nth(1).expect("a fraction");
        assert_eq!(fraction.find(['+', '-']), Some(6), "{s}");
        assert!(s.as_str().ends_with(&parsed.offset().to_string()));
    }

    #[test]
    fn workflow_time_is_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_764_590_400_123_456);
        let s = Timestamp::utc(t);
        assert_eq!(s.as_str(), "2025-12-01T12:00:00.123456+00:00");
    }

    #[test]
    fn older_values_read_back_unchanged() {
        let old: Timestamp =
            serde_json::from_str("\"2026-12-01T10:00:00.123+01:00\"").expect("a timestamp");
        assert_eq!(old.as_str(), "2026-12-01T10:00:00.123+01:00");
    }
}
