//! CronJob schedule syntax, checked the way `robfig/cron/v3`'s
//! `ParseStandard` does (5 fields, names for months/weekdays, `@descriptors`),
//! returning its error strings so `spec.schedule` errors read like upstream.

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
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
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Validates a standard cron spec; `Err` carries robfig's message.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let Some(sp) = spec.find(' ') else {
            // robfig slices to the first space; without one it panics, which
            // kube's ParseCronScheduleWithPanicRecovery reports like this.
            return Err("failed to parse cron schedule: no space after timezone".to_string());
        };
        let eq = spec.find('=').unwrap_or(0);
        let tz = &spec[eq + 1..sp];
        if jiff::tz::TimeZone::get(tz).is_err() {
            return Err(format!(
                "provided bad location {tz}: unknown time zone {tz}"
            ));
        }
        spec = spec[sp..].trim();
    }
    if let Some(desc) = spec.strip_prefix('@') {
        return parse_descriptor(desc, spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (f, b) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        get_field(f, b)?;
    }
    Ok(())
}

fn parse_descriptor(desc: &str, spec: &str) -> Result<(), String> {
    match desc {
        "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
        d if d.starts_with("every ") => {
            let dur = &d["every ".len()..];
            if go_duration_ok(dur) {
                Ok(())
            } else {
                Err(format!(
                    "failed to parse duration {spec}: time: invalid duration {}",
                    crate::admission::field::go_quote(dur)
                ))
            }
        }
        _ => Err(format!("unrecognized descriptor: {spec}")),
    }
}

/// Accepts Go `time.ParseDuration` syntax (e.g. `1h30m`, `1.5s`, `-2m`).
fn go_duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if num_len == 0 || rest[..num_len] == *"." {
            return false;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .bytes()
            .take_while(|c| !c.is_ascii_digit() && *c != b'.')
            .count();
        let unit = &rest[..unit_len];
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

fn get_field(field: &str, b: &Bounds) -> Result<(), String> {
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        get_range(expr, b)?;
    }
    Ok(())
}

fn get_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = b.min;
        end = b.max;
    } else {
        start = parse_int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
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
    Ok(())
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

fn must_parse_int(expr: &str) -> Result<u64, String> {
    // Mirrors strconv.Atoi, including its error text.
    let num: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            crate::admission::field::go_quote(expr)
        )
    })?;
    if num < 0 {
        return Err(format!("negative number ({num}) not allowed: {expr}"));
    }
    Ok(num.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_with_robfig_messages() {
        assert_eq!(
            parse_standard("foo"),
            Err("expected exactly 5 fields, found 1: [foo]".to_string())
        );
        assert_eq!(
            parse_standard("* * * * * *"),
            Err("expected exactly 5 fields, found 6: [* * * * * *]".to_string())
        );
        assert_eq!(
            parse_standard("60 * * * *"),
            Err("end of range (60) above maximum (59): 60".to_string())
        );
        assert_eq!(
            parse_standard("* * 0 * *"),
            Err("beginning of range (0) below minimum (1): 0".to_string())
        );
        assert_eq!(
            parse_standard("5-1 * * * *"),
            Err("beginning of range (5) beyond end of range (1): 5-1".to_string())
        );
        assert_eq!(
            parse_standard("*/0 * * * *"),
            Err("step of range should be a positive number: */0".to_string())
        );
        assert_eq!(
            parse_standard("x * * * *"),
            Err(
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
                    .to_string()
            )
        );
        assert_eq!(
            parse_standard("@fortnightly"),
            Err("unrecognized descriptor: @fortnightly".to_string())
        );
        assert_eq!(parse_standard(""), Err("empty spec string".to_string()));
        assert!(parse_standard("@every xyz").is_err());
        assert_eq!(
            parse_standard("1-2-3 * * * *"),
            Err("too many hyphens: 1-2-3".to_string())
        );
    }
}
