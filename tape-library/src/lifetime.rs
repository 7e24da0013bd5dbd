//! `diskLifetime`: how long a staged copy stays pinned for a request.
//!
//! The spec says "ISO 8601 format"; dCache parses it as a `java.time`
//! duration (`PnDTnHnMn.nS`). This parser takes that form plus weeks
//! (`PnW`) and, for hand-written requests, a bare number of seconds
//! (`"3600"`). Years and months are refused: their length is not fixed, and
//! guessing it would pin for a time the client did not ask for.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid diskLifetime {0:?}: expected an ISO 8601 duration such as PT1H or P2D, or seconds"
)]
pub struct LifetimeError(pub String);

/// Parses an ISO 8601 duration (`P1D`, `PT1H30M`, `PT0.5S`, `P1W`) or seconds.
pub fn parse(raw: &str) -> Result<Duration, LifetimeError> {
    let err = || LifetimeError(raw.to_owned());
    let s = raw.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| err());
    }
    let rest = s
        .strip_prefix('P')
        .or_else(|| s.strip_prefix('p'))
        .ok_or_else(err)?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(err()),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut any = false;
    for (value, unit) in fields(date).ok_or_else(err)? {
        total += value
            * match unit {
                'W' => 7.0 * 86_400.0,
                'D' => 86_400.0,
                _ => return Err(err()),
            };
        any = true;
    }
    for (value, unit) in fields(time.unwrap_or("")).ok_or_else(err)? {
        total += value
            * match unit {
                'H' => 3_600.0,
                'M' => 60.0,
                'S' => 1.0,
                _ => return Err(err()),
            };
        any = true;
    }
    if !any || !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

/// `1D2H` → `[(1, 'D'), (2, 'H')]`; `None` when malformed.
fn fields(s: &str) -> Option<Vec<(f64, char)>> {
    let mut out = Vec::new();
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            number.push(if c == ',' { '.' } else { c });
        } else {
            if number.is_empty() {
                return None;
            }
            let value: f64 = number.parse().ok()?;
            out.push((value, c.to_ascii_uppercase()));
            number.clear();
        }
    }
    number.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_as_the_spec_and_dcache_write_them() {
        assert_eq!(parse("PT1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("P1D"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("P1DT2H3M4S"), Ok(Duration::from_secs(93_784)));
        assert_eq!(parse("PT0.5S"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("P2W"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("pt30m"), Ok(Duration::from_secs(1800)));
    }

    #[test]
    fn bare_seconds() {
        assert_eq!(parse("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_fixed_duration() {
        for bad in [
            "", "P", "PT", "P1Y", "P1M", "1H", "PT1", "P1H", "PTH", "-PT1H", "P1DT",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
