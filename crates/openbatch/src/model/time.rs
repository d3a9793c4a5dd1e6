//! Timestamps, ETags and ISO 8601 durations as Azure Batch writes them on the wire.
//!
//! * Timestamps are UTC ISO 8601 with up to 7 fractional digits and trailing zeros removed
//!   (`2022-01-13T07:24:33.0001481Z`), as every Batch response body shows.
//! * ETags are `0x` and the upper-case hex of the .NET ticks (100 ns units since 0001-01-01)
//!   of the resource's `lastModified`; [`Clock::now`] hands out strictly increasing instants so
//!   that every write of a resource yields a new ETag.
//! * Durations (`PT15M`, `P7D`, `P10675199DT2H48M5.4775807S`) follow ISO 8601; the maximum
//!   .NET `TimeSpan` stands for "unlimited".

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serializer};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A point in time with 100 ns resolution (.NET ticks), the unit Batch timestamps carry.
pub type Timestamp = DateTime<Utc>;

/// Ticks between 0001-01-01 and the Unix epoch.
const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

static LAST_TICKS: AtomicI64 = AtomicI64::new(0);
/// Development clock: ticks added to the wall clock ([`Clock::advance`]).
static OFFSET_TICKS: AtomicI64 = AtomicI64::new(0);
/// Development clock: the rate in thousandths (1000: real time) and the wall-clock tick it
/// counts from ([`Clock::set_speed`]).
static SPEED_MILLI: AtomicI64 = AtomicI64::new(1000);
static SPEED_ORIGIN: AtomicI64 = AtomicI64::new(0);

/// Source of write timestamps: strictly increasing across the process, so two writes never
/// share an ETag.
///
/// It is the service's one clock: API handlers and the scheduler read it alike. In
/// production it is the wall clock; development options make it run faster
/// ([`Clock::set_speed`], `serve --clock-speed`) or jump ahead ([`Clock::advance`], the
/// `POST /openbatch/v1/clock` control of `serve --clock-control`), so that a day of job
/// schedule recurrences passes in seconds. It never goes back.
pub struct Clock;

impl Clock {
    /// The current UTC instant, truncated to 100 ns and strictly after every earlier result.
    pub fn now() -> Timestamp {
        let mut ticks = service_ticks(to_ticks(&Utc::now()));
        loop {
            let last = LAST_TICKS.load(Ordering::SeqCst);
            if ticks <= last {
                ticks = last + 1;
            }
            if LAST_TICKS.compare_exchange(last, ticks, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return from_ticks(ticks);
            }
        }
    }
}

/// The service clock's reading (ticks) at a wall-clock instant (ticks).
fn service_ticks(wall: i64) -> i64 {
    let speed = SPEED_MILLI.load(Ordering::Relaxed);
    let scaled = if speed == 1000 {
        wall
    } else {
        let origin = SPEED_ORIGIN.load(Ordering::Relaxed);
        origin + ((i128::from(wall - origin) * i128::from(speed)) / 1000) as i64
    };
    scaled.saturating_add(OFFSET_TICKS.load(Ordering::Relaxed))
}

impl Clock {
    /// A wall-clock instant (milliseconds since the epoch, as node agents report process
    /// times) as the service clock reads it: the same instant unless a development option
    /// moved or sped up the clock.
    pub fn from_wall_ms(ms: i64) -> i64 {
        let ticks = service_ticks(ms.saturating_mul(10_000).saturating_add(UNIX_EPOCH_TICKS));
        (ticks - UNIX_EPOCH_TICKS).div_euclid(10_000)
    }

    /// Makes the clock run `speed` times as fast as the wall clock from now on (development
    /// option; 1.0 is real time). Speeds below 1 are taken as 1: the clock never slows.
    pub fn set_speed(speed: f64) {
        let milli = (speed.max(1.0) * 1000.0).min(1e12) as i64;
        let now = to_ticks(&Clock::now());
        let wall = to_ticks(&Utc::now());
        SPEED_ORIGIN.store(wall, Ordering::SeqCst);
        SPEED_MILLI.store(milli, Ordering::SeqCst);
        // Continue from where the clock stood.
        OFFSET_TICKS.store(now - wall, Ordering::SeqCst);
    }

    /// How many times as fast as the wall clock the clock runs.
    pub fn speed() -> f64 {
        SPEED_MILLI.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Moves the clock forward by `by` (development option) and returns the new time.
    pub fn advance(by: Duration) -> Timestamp {
        let ticks = i64::try_from(by.as_nanos() / 100).unwrap_or(i64::MAX);
        OFFSET_TICKS.fetch_add(ticks, Ordering::SeqCst);
        Clock::now()
    }
}

/// .NET ticks of a timestamp.
pub fn to_ticks(t: &Timestamp) -> i64 {
    t.timestamp() * 10_000_000 + i64::from(t.timestamp_subsec_nanos() / 100) + UNIX_EPOCH_TICKS
}

/// The timestamp of a .NET tick count.
pub fn from_ticks(ticks: i64) -> Timestamp {
    let unix = ticks - UNIX_EPOCH_TICKS;
    let secs = unix.div_euclid(10_000_000);
    let nanos = (unix.rem_euclid(10_000_000) * 100) as u32;
    Utc.timestamp_opt(secs, nanos).single().unwrap_or_default()
}

/// The ETag Batch gives a resource last modified at `t`: `0x` + upper-case hex ticks.
pub fn etag_for(t: &Timestamp) -> String {
    format!("0x{:X}", to_ticks(t))
}

/// Formats a timestamp as Batch does: ISO 8601 UTC, 7 fractional digits at most, trailing
/// zeros (and a bare `.`) removed.
pub fn format_timestamp(t: &Timestamp) -> String {
    let frac = t.timestamp_subsec_nanos() / 100;
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac == 0 {
        return format!("{base}Z");
    }
    let digits = format!("{frac:07}");
    format!("{base}.{}Z", digits.trim_end_matches('0'))
}

/// Formats a timestamp with all 7 fractional digits, as error messages' `Time:` lines show.
pub fn format_timestamp_7(t: &Timestamp) -> String {
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

/// Formats a timestamp as an HTTP date (RFC 1123, whole seconds), for `Last-Modified`.
pub fn format_http_date(t: &Timestamp) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Parses an HTTP date (RFC 1123), as sent in `If-Modified-Since` and `ocp-date`.
pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc2822(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// Serde adapter writing [`Timestamp`] in Batch's format and reading any RFC 3339 form.
pub mod ts {
    use super::*;
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Timestamp>`; use with `skip_serializing_if = "Option::is_none"`.
pub mod ts_opt {
    use super::*;
    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_timestamp(t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)).transpose()
    }
}

/// The largest .NET `TimeSpan`, which Batch reports for "no limit"
/// (`P10675199DT2H48M5.4775807S`).
pub const UNLIMITED_DURATION: &str = "P10675199DT2H48M5.4775807S";

/// A parsed ISO 8601 duration; `None` inside means unlimited (the .NET maximum or longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDuration(pub Option<Duration>);

/// Parses an ISO 8601 duration of the `PnDTnHnMn.nS` form (also `PnW`, `PnYnM` with 365/30
/// day years/months as .NET's XmlConvert does), zero-padded parts (`PT02H00M00S`, as the 15.x
/// clients write them) and a bare `P` for zero. Returns `None` for malformed input.
pub fn parse_duration(s: &str) -> Option<IsoDuration> {
    if s == UNLIMITED_DURATION {
        return Some(IsoDuration(None));
    }
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        // A bare `P` is how the 15.x clients write a zero duration.
        return Some(IsoDuration(Some(Duration::ZERO)));
    }
    let mut total = 0f64;
    let mut parse_part = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut idx = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let pos = units[idx..].iter().position(|(u, _)| *u == c)? + idx;
                let v: f64 = num.parse().ok()?;
                total += v * units[pos].1;
                idx = pos + 1;
                num.clear();
            }
        }
        if num.is_empty() {
            Some(())
        } else {
            None
        }
    };
    parse_part(date, &[('Y', 365.0 * 86400.0), ('M', 30.0 * 86400.0), ('W', 7.0 * 86400.0), ('D', 86400.0)])?;
    if let Some(t) = time {
        parse_part(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    // The .NET maximum TimeSpan is about 10675199 days: treat anything that long as unlimited.
    if total >= 10_675_199.0 * 86400.0 {
        return Some(IsoDuration(None));
    }
    Some(IsoDuration(Some(Duration::from_secs_f64(total))))
}

/// The moment an ISO 8601 duration (a constraint such as `maxWallClockTime` or
/// `retentionTime`) after `from` ends; `None` when the duration is unlimited, malformed or
/// beyond the calendar.
pub fn deadline(from: Timestamp, iso: &str) -> Option<Timestamp> {
    let d = parse_duration(iso)?.0?;
    from.checked_add_signed(chrono::Duration::from_std(d).ok()?)
}

/// Formats a duration in ISO 8601 the way Batch echoes them (`PT15M`, `P7D`, `PT1.5S`).
pub fn format_duration(d: Duration) -> String {
    let total_ticks = d.as_nanos() / 100;
    let mut secs = (total_ticks / 10_000_000) as u64;
    let frac = (total_ticks % 10_000_000) as u64;
    let days = secs / 86400;
    secs %= 86400;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h > 0 || m > 0 || s > 0 || frac > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || frac > 0 || (h == 0 && m == 0) {
            if frac > 0 {
                let f = format!("{frac:07}");
                out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
            } else {
                out.push_str(&format!("{s}S"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matches_recorded_ticks() {
        // Recorded: lastModified 2022-01-13T07:11:03.9211327Z has ETag 0x8D9D663DC816B3F.
        let t = DateTime::parse_from_rfc3339("2022-01-13T07:11:03.9211327Z").unwrap().with_timezone(&Utc);
        assert_eq!(etag_for(&t), "0x8D9D663DC816B3F");
        assert_eq!(format_timestamp(&t), "2022-01-13T07:11:03.9211327Z");
        assert_eq!(from_ticks(to_ticks(&t)), t);
    }

    #[test]
    fn timestamps_drop_trailing_zeros() {
        let t = DateTime::parse_from_rfc3339("2022-01-15T04:04:56.2889200Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_timestamp(&t), "2022-01-15T04:04:56.28892Z");
        let t = DateTime::parse_from_rfc3339("2022-01-15T04:04:56Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_timestamp(&t), "2022-01-15T04:04:56Z");
    }

    #[test]
    fn clock_is_strictly_increasing() {
        let a = Clock::now();
        let b = Clock::now();
        assert!(b > a);
        assert_ne!(etag_for(&a), etag_for(&b));
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("PT15M"), Some(IsoDuration(Some(Duration::from_secs(900)))));
        assert_eq!(parse_duration("P7D"), Some(IsoDuration(Some(Duration::from_secs(7 * 86400)))));
        assert_eq!(parse_duration("PT1.5S"), Some(IsoDuration(Some(Duration::from_millis(1500)))));
        assert_eq!(parse_duration("P1DT2H3M4S"), Some(IsoDuration(Some(Duration::from_secs(93784)))));
        assert_eq!(parse_duration(UNLIMITED_DURATION), Some(IsoDuration(None)));
        assert_eq!(parse_duration("P10675199DT2H48M5.4775807S"), Some(IsoDuration(None)));
        // The 15.x clients' spelling: zero-padded parts, every unit, a bare `P` for zero.
        assert_eq!(parse_duration("PT02H00M00S"), Some(IsoDuration(Some(Duration::from_secs(7200)))));
        assert_eq!(parse_duration("P1DT00H15M00S"), Some(IsoDuration(Some(Duration::from_secs(86400 + 900)))));
        assert_eq!(parse_duration("PT00.25S"), Some(IsoDuration(Some(Duration::from_millis(250)))));
        assert_eq!(parse_duration("P"), Some(IsoDuration(Some(Duration::ZERO))));
        for bad in ["", "PT", "15M", "PT15X", "PTM", "P1H", "PT1S2M"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(900)), "PT15M");
        assert_eq!(format_duration(Duration::from_secs(7 * 86400)), "P7D");
        assert_eq!(format_duration(Duration::from_secs(0)), "PT0S");
        assert_eq!(format_duration(Duration::from_millis(1500)), "PT1.5S");
        assert_eq!(format_duration(Duration::from_secs(93784)), "P1DT2H3M4S");
    }
}
