//! Scalar values with units: durations, byte sizes, counts.

use std::time::Duration;

/// Why a scalar could not be read. Messages quote the offending text, so
/// these are only used for values that are never secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnitError {
    #[error("invalid duration {text:?}: {reason}")]
    Duration { text: String, reason: String },
    #[error(
        "invalid size {text:?}: expected a number of bytes or a number with a unit \
         B, KiB, MiB or GiB (e.g. 4194304, \"512KiB\", \"4MiB\")"
    )]
    Size { text: String },
    #[error("size {text:?} is too large")]
    SizeOverflow { text: String },
    #[error("invalid number {text:?}: expected a non-negative integer")]
    Count { text: String },
    #[error("invalid rate {text:?}: expected a size per second, e.g. \"1KiB/s\", \"512B/s\"")]
    Rate { text: String },
}

/// `"30s"`, `"5m"`, `"1h 30m"`, `"250ms"` (humantime syntax). A bare number
/// is refused: its unit would be a guess.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|e| UnitError::Duration {
        text: text.to_owned(),
        reason: match e {
            // Its own message already gives examples.
            humantime::DurationError::NumberExpected(_) => {
                "expected a number with a unit, e.g. \"500ms\", \"30s\", \"5m\", \"1h\"".to_owned()
            }
            other => other.to_string(),
        },
    })
}

/// A byte count: a plain integer, or an integer with a binary unit
/// (`B`, `KiB`, `MiB`, `GiB`; the unit is case-insensitive and may be
/// separated by spaces). Decimal units (`KB`, `MB`) are refused because
/// readers disagree on whether they mean 1000 or 1024.
pub(crate) fn parse_size(text: &str) -> Result<usize, UnitError> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(UnitError::Size {
            text: text.to_owned(),
        });
    }
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(UnitError::Size {
                text: text.to_owned(),
            })
        }
    };
    let overflow = || UnitError::SizeOverflow {
        text: text.to_owned(),
    };
    let number: usize = digits.parse().map_err(|_| overflow())?;
    number.checked_mul(multiplier).ok_or_else(overflow)
}

/// A byte rate: a size followed by `/s` (`"1KiB/s"`), in bytes per second.
pub(crate) fn parse_rate(text: &str) -> Result<usize, UnitError> {
    let size = text
        .trim()
        .strip_suffix("/s")
        .ok_or_else(|| UnitError::Rate {
            text: text.to_owned(),
        })?;
    parse_size(size).map_err(|e| match e {
        UnitError::SizeOverflow { .. } => UnitError::SizeOverflow {
            text: text.to_owned(),
        },
        _ => UnitError::Rate {
            text: text.to_owned(),
        },
    })
}

/// A plain non-negative integer.
pub(crate) fn parse_count(text: &str) -> Result<usize, UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnitError::Count {
            text: text.to_owned(),
        });
    }
    trimmed.parse().map_err(|_| UnitError::Count {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4194304"), Ok(4_194_304));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("512 kib"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10B"), Ok(10));
        assert!(parse_size("4MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(
            parse_size("99999999999999999999999GiB"),
            Err(UnitError::SizeOverflow {
                text: "99999999999999999999999GiB".into()
            })
        );
        assert!(matches!(
            parse_size("18446744073709551615GiB"),
            Err(UnitError::SizeOverflow { .. })
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1KiB/s"), Ok(1024));
        assert_eq!(parse_rate("512 B/s"), Ok(512));
        assert_eq!(parse_rate(" 2MiB/s "), Ok(2 << 20));
        assert!(matches!(parse_rate("1KiB"), Err(UnitError::Rate { .. })));
        assert!(matches!(parse_rate("fast/s"), Err(UnitError::Rate { .. })));
        assert!(matches!(parse_rate("1KB/s"), Err(UnitError::Rate { .. })));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("64"), Ok(64));
        assert!(parse_count("-1").is_err());
        assert!(parse_count("+1").is_err());
        assert!(parse_count("1e3").is_err());
        assert!(parse_count("99999999999999999999999").is_err());
    }
}
