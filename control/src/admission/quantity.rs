//! Resource quantities (`k8s.io/apimachinery/pkg/api/resource.Quantity`):
//! parsing, comparison and the canonical string form the apiserver writes back
//! (`0.5` -> `500m`, `1024Mi` -> `1Gi`, `1000000000` -> `1G`).
//!
//! Values are held exactly as `mantissa * 10^exp`; binary suffixes are expanded
//! into that form, which is exact because powers of 1024 are integers.

use std::cmp::Ordering;

/// How the quantity was written; decides the canonical suffix family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    mantissa: i128,
    exp: i32,
    format: Format,
}

const BINARY: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: [(&str, i32); 9] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Quantity {
    /// Parses `<signedNumber><suffix>` as `resource.ParseQuantity` does.
    pub(crate) fn parse(input: &str) -> Option<Quantity> {
        let s = input.trim();
        if s.is_empty() {
            return None;
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if bytes[0] == b'+' || bytes[0] == b'-' {
            negative = bytes[0] == b'-';
            pos = 1;
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[int_start..pos];
        let mut frac_part = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let fs = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[fs..pos];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let suffix = &s[pos..];
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        // Beyond i128 the value is of no practical use for resources.
        if digits.len() > 36 {
            return None;
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let mut exp: i32 = -(i32::try_from(frac_part.len()).ok()?);
        let format;
        if suffix.is_empty() {
            format = Format::DecimalSi;
        } else if let Some((_, k)) = BINARY.iter().find(|(n, _)| *n == suffix) {
            format = Format::BinarySi;
            mantissa = mantissa.checked_mul(1024i128.checked_pow(*k)?)?;
        } else if let Some((_, e)) = DECIMAL.iter().find(|(n, _)| *n == suffix) {
            format = Format::DecimalSi;
            exp += e;
        } else if let Some(rest) = suffix.strip_prefix(['e', 'E']) {
            let e: i32 = rest.parse().ok()?;
            if rest.starts_with('+') && rest.len() == 1 {
                return None;
            }
            format = Format::DecimalExponent;
            exp = exp.checked_add(e)?;
        } else {
            return None;
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut q = Quantity {
            mantissa,
            exp,
            format,
        };
        q.normalize();
        Some(q)
    }

    fn normalize(&mut self) {
        if self.mantissa == 0 {
            self.exp = 0;
            return;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exp += 1;
        }
    }

    pub(crate) fn sign(&self) -> Ordering {
        self.mantissa.cmp(&0)
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Whether the value has no fractional part.
    pub(crate) fn is_integer(&self) -> bool {
        self.exp >= 0 || self.mantissa == 0
    }

    /// `Quantity.Value()`: the value rounded up to an integer (saturating).
    pub(crate) fn value(&self) -> i64 {
        if self.exp >= 0 {
            let v = pow10(self.exp.unsigned_abs())
                .and_then(|p| self.mantissa.checked_mul(p))
                .unwrap_or(if self.mantissa < 0 {
                    i128::MIN
                } else {
                    i128::MAX
                });
            return clamp_i64(v);
        }
        let Some(div) = pow10(self.exp.unsigned_abs()) else {
            return if self.mantissa > 0 { 1 } else { 0 };
        };
        let q = self.mantissa / div;
        let r = self.mantissa % div;
        // Round away from zero, like inf.Dec's RoundUp used by Value().
        let v = if r > 0 {
            q + 1
        } else if r < 0 {
            q - 1
        } else {
            q
        };
        clamp_i64(v)
    }

    /// `Quantity.MilliValue()`: thousandths, rounded up (saturating). CPU is counted so.
    pub(crate) fn milli_value(&self) -> i64 {
        let mut q = *self;
        q.exp += 3;
        q.value()
    }

    /// Rounds up to milli precision (`SetDefaults_ResourceList`).
    pub(crate) fn round_up_milli(&mut self) {
        if self.exp >= -3 {
            return;
        }
        let shift = (-3 - self.exp).unsigned_abs();
        match pow10(shift) {
            Some(div) => {
                let q = self.mantissa / div;
                let r = self.mantissa % div;
                self.mantissa = if r > 0 {
                    q + 1
                } else if r < 0 {
                    q - 1
                } else {
                    q
                };
            }
            None => {
                self.mantissa = self.mantissa.signum();
            }
        }
        self.exp = -3;
        self.normalize();
    }

    /// Exact comparison (falls back to floating point on overflow).
    pub(crate) fn cmp_value(&self, other: &Quantity) -> Ordering {
        let (a, b) = (self, other);
        let e = a.exp.min(b.exp);
        let scale = |q: &Quantity| -> Option<i128> {
            pow10((q.exp - e).unsigned_abs()).and_then(|p| q.mantissa.checked_mul(p))
        };
        match (scale(a), scale(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a
                .as_f64()
                .partial_cmp(&b.as_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    fn as_f64(&self) -> f64 {
        (self.mantissa as f64) * 10f64.powi(self.exp)
    }

    /// The canonical string (`Quantity.String()` / `CanonicalizeBytes`).
    pub(crate) fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySi {
            let small = self.cmp_value(&Quantity::from_int(1024)) == Ordering::Less
                && self.cmp_value(&Quantity::from_int(-1024)) == Ordering::Greater;
            if small || !self.is_integer() {
                format = Format::DecimalSi;
            }
        }
        if format == Format::BinarySi {
            let Some(mut v) =
                pow10(self.exp.unsigned_abs()).and_then(|p| self.mantissa.checked_mul(p))
            else {
                return self.decimal_canonical(Format::DecimalSi);
            };
            let mut k = 0usize;
            while k < 6 && v % 1024 == 0 {
                v /= 1024;
                k += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
            return format!("{v}{suffix}");
        }
        self.decimal_canonical(format)
    }

    fn decimal_canonical(&self, format: Format) -> String {
        let mut m = self.mantissa;
        let mut e = self.exp;
        let r = e.rem_euclid(3);
        if r != 0 {
            match pow10(r.unsigned_abs()).and_then(|p| m.checked_mul(p)) {
                Some(v) => {
                    m = v;
                    e -= r;
                }
                None => return format!("{}e{}", self.mantissa, self.exp),
            }
        }
        let suffix = if e == 0 {
            String::new()
        } else if format == Format::DecimalSi {
            match DECIMAL.iter().find(|(_, x)| *x == e) {
                Some((s, _)) => s.to_string(),
                None => format!("e{e}"),
            }
        } else {
            format!("e{e}")
        };
        format!("{m}{suffix}")
    }

    pub(crate) fn from_int(v: i64) -> Quantity {
        let mut q = Quantity {
            mantissa: i128::from(v),
            exp: 0,
            format: Format::DecimalSi,
        };
        q.normalize();
        q
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Canonical form of a quantity string, or `None` when it does not parse.
pub(crate) fn canonicalize(s: &str, round_milli: bool) -> Option<String> {
    let mut q = Quantity::parse(s)?;
    if round_milli {
        q.round_up_milli();
    }
    Some(q.canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        canonicalize(s, true).unwrap()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1"), "1");
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("1Gi"), "1Gi");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1536Mi"), "1536Mi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("0.5Gi"), "512Mi");
        assert_eq!(c("1000000000"), "1G");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(c("1500000"), "1500k");
        assert_eq!(c("512"), "512");
        assert_eq!(c("100Ki"), "100Ki");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0"), "0");
        assert_eq!(c("0Gi"), "0");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("1n"), "1m");
        assert_eq!(canonicalize("1n", false).unwrap(), "1n");
        assert_eq!(c("+2G"), "2G");
        assert!(canonicalize("abc", true).is_none());
        assert!(canonicalize("1.2.3", true).is_none());
        assert!(canonicalize("", true).is_none());
        assert!(canonicalize("1X", true).is_none());
    }

    #[test]
    fn comparisons_and_values() {
        let a = Quantity::parse("500m").unwrap();
        let b = Quantity::parse("0.5").unwrap();
        assert_eq!(a.cmp_value(&b), Ordering::Equal);
        let g = Quantity::parse("1Gi").unwrap();
        let m = Quantity::parse("1000Mi").unwrap();
        assert_eq!(g.cmp_value(&m), Ordering::Greater);
        assert_eq!(Quantity::parse("-1").unwrap().sign(), Ordering::Less);
        assert!(Quantity::parse("0").unwrap().is_zero());
        assert!(Quantity::parse("2").unwrap().is_integer());
        assert!(!Quantity::parse("1500m").unwrap().is_integer());
        assert_eq!(Quantity::parse("1500m").unwrap().value(), 2);
        assert_eq!(Quantity::parse("1Ki").unwrap().value(), 1024);
        assert_eq!(Quantity::parse("-0.5").unwrap().value(), -1);
    }
}
