//! The `Retry-After` header of a token endpoint's answer (RFC 9110 §10.2.3).

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`), turned into the delay from `now`. A date in the past is no delay.
/// `None` for anything else (the obsolete RFC 850 and asctime date forms included).
pub(crate) fn retry_after(value: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
    use std::time::{Duration, UNIX_EPOCH};
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let rest = value.get(5..)?;
    let (day, rest) = rest.split_once(' ')?;
    let (month, rest) = rest.split_once(' ')?;
    let (year, rest) = rest.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    if zone != "GMT" || value.as_bytes().get(3) != Some(&b',') {
        return None;
    }
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // An IMF-fixdate has a four-digit year; anything else is not a date (and would overflow).
    if !(0..=9999).contains(&year) || year_digits(value) != Some(4) {
        return None;
    }
    let unix = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(unix).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How many characters the year field of an IMF-fixdate has (the fourth space-separated field).
fn year_digits(value: &str) -> Option<usize> {
    value.split(' ').nth(3).map(str::len)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_never_panics_or_wraps() {
        use std::time::{Duration, UNIX_EPOCH};
        let nows = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
        ];
        for value in [
            "18446744073709551615",
            "99999999999999999999999",
            "Fri, 31 Dec 9999 23:59:60 GMT",
            "Mon, 01 Jan 0000 00:00:00 GMT",
            "Sun, 06 Nov 300000000000 08:49:37 GMT",
        ] {
            for now in nows {
                let _ = retry_after(value, now);
            }
        }
        assert_eq!(
            retry_after("18446744073709551615", UNIX_EPOCH),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Sat, 05 Nov 1994 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after("Tue, 29 Feb 2000 00:00:01 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(951_782_401))
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov -1994 08:49:37 GMT",
            "Sün, 06 Nov 1994 08:49:37 GMT",
            // Absurd years: once an overflow (a panic in debug builds).
            "Sun, 06 Nov 300000000000 08:49:37 GMT",
            "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
