//! Cron schedules as kube-controller-manager reads them (`robfig/cron/v3`'s `ParseStandard`):
//! five fields with month and weekday names, `*`, `?`, ranges, steps and lists; `@yearly`,
//! `@monthly`, `@weekly`, `@daily`, `@hourly`, `@every <duration>`; an optional `TZ=`/`CRON_TZ=`
//! prefix. `next` follows robfig's `Next`, including its handling of daylight saving changes and
//! of day-of-month against day-of-week (either matching, unless one of them is `*`).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned, civil};

const STAR: u64 = 1 << 63;

#[derive(Debug, Clone)]
pub enum Schedule {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// `None`: the controller's local time zone.
        tz: Option<TimeZone>,
    },
    /// `@every <duration>`: a constant delay, whole seconds, at least one.
    Every(SignedDuration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn bits(min: u32, max: u32, step: u32) -> u64 {
    if step == 1 {
        return (!(u64::MAX << (max + 1))) & (u64::MAX << min);
    }
    let mut b = 0;
    let mut i = min;
    while i <= max {
        b |= 1 << i;
        i += step;
    }
    b
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

impl Schedule {
    /// Parses a schedule; errors read as robfig's.
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        Schedule::parse_in(spec, None)
    }

    /// Parses `spec` with `tz` as the zone when the spec names none (a CronJob's `timeZone`).
    pub fn parse_in(spec: &str, tz: Option<TimeZone>) -> Result<Schedule, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let mut spec = spec;
        let mut tz = tz;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let sp = spec.find(' ').ok_or_else(|| {
                "failed to parse cron schedule: no space after timezone".to_string()
            })?;
            let eq = spec.find('=').unwrap_or(0);
            let name = &spec[eq + 1..sp];
            tz = Some(load_location(name)?);
            spec = spec[sp..].trim();
        }
        if let Some(desc) = spec.strip_prefix('@') {
            let (minute, hour, dom, month, dow) = match desc {
                "yearly" | "annually" => (1, 1, 1 << 1, 1 << 1, all(&DOW)),
                "monthly" => (1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
                "weekly" => (1, 1, all(&DOM), all(&MONTHS), 1),
                "daily" | "midnight" => (1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
                "hourly" => (1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
                d if d.starts_with("every ") => {
                    let d = &d["every ".len()..];
                    let dur = parse_go_duration(d).ok_or_else(|| {
                        format!("failed to parse duration {spec}: time: invalid duration \"{d}\"")
                    })?;
                    // robfig: at least a second, truncated to whole seconds.
                    let secs = dur.as_secs().max(1);
                    return Ok(Schedule::Every(SignedDuration::from_secs(secs)));
                }
                _ => return Err(format!("unrecognized descriptor: {spec}")),
            };
            return Ok(Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                tz,
            });
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        Ok(Schedule::Spec {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
            tz,
        })
    }

    /// The first activation strictly after `t` (robfig's `Next`); `None` if none within five
    /// years (an impossible date such as February 31st).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let (minute, hour, dom, month, dow, tz) = match self {
            Schedule::Every(d) => {
                let base = Timestamp::from_second(t.as_second()).ok()?;
                return base.checked_add(*d).ok();
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                tz,
            } => (*minute, *hour, *dom, *month, *dow, tz),
        };
        let tz = tz.clone().unwrap_or_else(TimeZone::system);
        // The upcoming whole second.
        let start = Timestamp::from_second(t.as_second() + 1).ok()?;
        let mut z = start.to_zoned(tz.clone());
        let mut added = false;
        let year_limit = z.year() + 5;
        let at = |d: civil::DateTime| tz.to_zoned(d).ok();
        'wrap: loop {
            if z.year() > year_limit {
                return None;
            }
            while (1u64 << z.month()) & month == 0 {
                if !added {
                    added = true;
                    z = at(civil::date(z.year(), z.month(), 1).at(0, 0, 0, 0))?;
                }
                z = at(z.datetime().checked_add(1.month()).ok()?)?;
                if z.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(dom, dow, &z) {
                if !added {
                    added = true;
                    z = at(z.date().at(0, 0, 0, 0))?;
                }
                z = at(z.datetime().checked_add(1.day()).ok()?)?;
                // Midnight may not exist (DST): move back to the day's start.
                if z.hour() != 0 {
                    let h = i64::from(z.hour());
                    let shift = if h > 12 { 24 - h } else { -h };
                    z = z
                        .timestamp()
                        .checked_add(SignedDuration::from_hours(shift))
                        .ok()?
                        .to_zoned(tz.clone());
                }
                if z.day() == 1 {
                    continue 'wrap;
                }
            }
            while (1u64 << z.hour()) & hour == 0 {
                if !added {
                    added = true;
                    z = at(z.date().at(z.hour(), 0, 0, 0))?;
                }
                z = z
                    .timestamp()
                    .checked_add(SignedDuration::from_hours(1))
                    .ok()?
                    .to_zoned(tz.clone());
                if z.hour() == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << z.minute()) & minute == 0 {
                if !added {
                    added = true;
                    z = Timestamp::from_second(z.timestamp().as_second() / 60 * 60)
                        .ok()?
                        .to_zoned(tz.clone());
                }
                z = z
                    .timestamp()
                    .checked_add(SignedDuration::from_mins(1))
                    .ok()?
                    .to_zoned(tz.clone());
                if z.minute() == 0 {
                    continue 'wrap;
                }
            }
            // Seconds: always 0 in standard specs.
            while z.second() != 0 {
                if !added {
                    added = true;
                    z = Timestamp::from_second(z.timestamp().as_second())
                        .ok()?
                        .to_zoned(tz.clone());
                }
                z = z
                    .timestamp()
                    .checked_add(SignedDuration::from_secs(1))
                    .ok()?
                    .to_zoned(tz.clone());
                if z.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(z.timestamp());
        }
    }
}

fn day_matches(dom: u64, dow: u64, z: &Zoned) -> bool {
    let dom_match = (1u64 << z.day()) & dom != 0;
    let weekday = z.weekday().to_sunday_zero_offset();
    let dow_match = (1u64 << weekday) & dow != 0;
    if dom & STAR != 0 || dow & STAR != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
}

/// A zone as Go's `time.LoadLocation` finds it (`""` and `UTC` are UTC).
pub fn load_location(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    if name == "Local" {
        return Ok(TimeZone::system());
    }
    TimeZone::get(name)
        .map_err(|_| format!("provided bad location {name}: unknown time zone {name}"))
}

fn field(f: &str, b: &Bounds) -> Result<u64, String> {
    let mut out = 0;
    for expr in f.split(',') {
        out |= range(expr, b)?;
    }
    Ok(out)
}

fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = b.min;
        end = b.max;
        extra = STAR;
    } else {
        start = name_or_int(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => name_or_int(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if s > 1 {
                extra = 0;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn name_or_int(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    int(s)
}

fn int(s: &str) -> Result<u32, String> {
    let n: i64 = s.parse().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {s}"));
    }
    u32::try_from(n).map_err(|_| format!("end of range ({n}) above maximum: {s}"))
}

/// Go's `time.ParseDuration`, enough for `@every`.
fn parse_go_duration(s: &str) -> Option<SignedDuration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += num * unit;
        rest = &rest[u..];
    }
    let d = SignedDuration::from_nanos(nanos as i64);
    Some(if neg { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str) -> Result<(), String> {
        Schedule::parse(spec).map(|_| ())
    }

    #[test]
    fn accepts_standard_specs() {
        for ok in [
            "* * * * *",
            "*/5 * * * *",
            "0 0 1 1 *",
            "0 12 * * MON-FRI",
            "15 3 * jan,jul sun",
            "0-30/10 1,2 ? * *",
            "@hourly",
            "@every 1h30m",
            "5 4 * * 6",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    /// `spec.schedule` validation quotes these, so they must read as robfig's.
    #[test]
    fn rejects_with_robfig_messages() {
        for (bad, msg) in [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            (
                "* * * * * *",
                "expected exactly 5 fields, found 6: [* * * * * *]",
            ),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("", "empty spec string"),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            (
                "TZ=Nowhere/Nothing * * * * *",
                "provided bad location Nowhere/Nothing: unknown time zone Nowhere/Nothing",
            ),
        ] {
            assert_eq!(check(bad), Err(msg.to_string()), "{bad}");
        }
        assert!(check("@every xyz").is_err());
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next_utc(spec: &str, after: &str) -> String {
        Schedule::parse_in(spec, Some(TimeZone::UTC))
            .expect("parse")
            .next(ts(after))
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_minute_and_steps() {
        assert_eq!(
            next_utc("* * * * *", "2024-05-01T10:00:00Z"),
            "2024-05-01T10:01:00Z"
        );
        assert_eq!(
            next_utc("* * * * *", "2024-05-01T10:00:30.5Z"),
            "2024-05-01T10:01:00Z"
        );
        assert_eq!(
            next_utc("*/15 * * * *", "2024-05-01T10:07:00Z"),
            "2024-05-01T10:15:00Z"
        );
        assert_eq!(
            next_utc("*/15 * * * *", "2024-05-01T10:45:00Z"),
            "2024-05-01T11:00:00Z"
        );
        assert_eq!(
            next_utc("5/20 * * * *", "2024-05-01T10:26:00Z"),
            "2024-05-01T10:45:00Z"
        );
        assert_eq!(
            next_utc("0-30/10 1,2 * * *", "2024-05-01T01:31:00Z"),
            "2024-05-01T02:00:00Z"
        );
    }

    #[test]
    fn days_months_and_weekdays() {
        // 2024-05-01 is a Wednesday.
        assert_eq!(
            next_utc("0 12 * * MON-FRI", "2024-05-03T13:00:00Z"),
            "2024-05-06T12:00:00Z"
        );
        assert_eq!(
            next_utc("30 4 1 * *", "2024-05-01T05:00:00Z"),
            "2024-06-01T04:30:00Z"
        );
        assert_eq!(
            next_utc("0 0 1 jan *", "2024-05-01T00:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 29 2 *", "2024-03-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        // Both day fields restricted: either one matches (Vixie cron).
        assert_eq!(
            next_utc("0 0 13 * 5", "2024-05-01T00:00:00Z"),
            "2024-05-03T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 13 * 5", "2024-05-10T00:00:00Z"),
            "2024-05-13T00:00:00Z"
        );
        // One of them `*`: both must match, i.e. only the other counts.
        assert_eq!(
            next_utc("0 0 * * 0", "2024-05-01T00:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        assert_eq!(
            next_utc("0 0 ? * sun", "2024-05-01T00:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        // An impossible date never fires.
        assert_eq!(next_utc("0 0 31 2 *", "2024-01-01T00:00:00Z"), "");
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next_utc("@hourly", "2024-05-01T10:00:00Z"),
            "2024-05-01T11:00:00Z"
        );
        assert_eq!(
            next_utc("@daily", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(
            next_utc("@midnight", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(
            next_utc("@weekly", "2024-05-01T10:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        assert_eq!(
            next_utc("@monthly", "2024-05-01T10:00:00Z"),
            "2024-06-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("@yearly", "2024-05-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("@annually", "2024-05-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next_utc("@every 90s", "2024-05-01T10:00:00.7Z"),
            "2024-05-01T10:01:30Z"
        );
        assert_eq!(
            next_utc("@every 1h30m", "2024-05-01T10:00:00Z"),
            "2024-05-01T11:30:00Z"
        );
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        let ny = Some(TimeZone::get("America/New_York").expect("tz"));
        let s = Schedule::parse_in("0 9 * * *", ny.clone()).expect("parse");
        // 09:00 EDT is 13:00 UTC.
        assert_eq!(
            s.next(ts("2024-05-01T12:00:00Z"))
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-05-01T13:00:00Z")
        );
        // A TZ= prefix wins over the given zone.
        let s = Schedule::parse_in("TZ=Asia/Tokyo 0 9 * * *", ny.clone()).expect("parse");
        assert_eq!(
            s.next(ts("2024-05-01T01:00:00Z"))
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-05-02T00:00:00Z")
        );
        // 02:30 does not exist on 2024-03-10 in New York: robfig skips that day.
        let s = Schedule::parse_in("30 2 * * *", ny).expect("parse");
        assert_eq!(
            s.next(ts("2024-03-10T05:00:00Z"))
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-03-11T06:30:00Z")
        );
        assert!(Schedule::parse("TZ=Mars/Olympus * * * * *").is_err());
    }

    #[test]
    fn errors_read_like_robfig() {
        let e = |s: &str| Schedule::parse(s).err().unwrap_or_default();
        assert_eq!(
            e("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(e("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(e("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(
            e("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(e("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(e(""), "empty spec string");
    }
}
