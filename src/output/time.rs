//! Calendar formatting for timestamps (UTC), without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (year, month 1-12, day 1-31, hour, minute, second, weekday 0=Sunday).
pub fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = (days + 4).rem_euclid(7) as u32;
    (
        y,
        m,
        d,
        (sod / 3600) as u32,
        (sod % 3600 / 60) as u32,
        (sod % 60) as u32,
        wd,
    )
}

/// `2026-11-29 04:20 UTC`, as nmap's "Starting" line.
pub fn short(t: SystemTime) -> String {
    let (y, mo, d, h, mi, _, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// `Sun Nov 29 04:20:01 2026`, as nmap's XML startstr (ctime style).
pub fn ctime(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    format!(
        "{} {} {d:2} {h:02}:{mi:02}:{s:02} {y}",
        DAYS[wd as usize],
        MONTHS[(mo - 1) as usize]
    )
}

pub fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, with the fraction (microseconds kept).
pub fn epoch_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as f64 / 1e6)
        .unwrap_or(0.0)
}

/// The time `secs` seconds after the Unix epoch, to the microsecond
/// (the epoch itself for nonsense).
pub fn from_epoch_f64(secs: f64) -> SystemTime {
    let micros = (secs * 1e6).round();
    if !(0.0..9.0e15).contains(&micros) {
        return UNIX_EPOCH;
    }
    UNIX_EPOCH
        .checked_add(Duration::from_micros(micros as u64))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_925_100); // 2026-11-29 04:05:00 UTC
        assert_eq!(short(t), "2026-11-29 04:05 UTC");
        assert_eq!(ctime(t), "Sun Nov 29 04:05:00 2026");
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(short(leap), "2000-02-29 00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_micros(1_795_925_100_123_456);
        assert_eq!(from_epoch_f64(epoch_f64(t)), t);
        assert_eq!(from_epoch_f64(-1.0), UNIX_EPOCH);
        assert_eq!(from_epoch_f64(f64::NAN), UNIX_EPOCH);
    }
}
