//! Calendar time in UTC, without a date library: the few places that print a date (kubelet's
//! version directory names, AWS request dates) need only the civil fields.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as UTC calendar fields (to the second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year, e.g. 2026.
    pub year: u64,
    /// Month, 1–12.
    pub month: u64,
    /// Day of the month, 1–31.
    pub day: u64,
    /// Hour, 0–23.
    pub hour: u64,
    /// Minute, 0–59.
    pub minute: u64,
    /// Second, 0–59.
    pub second: u64,
}

impl Utc {
    /// The calendar fields of a Unix time in seconds.
    pub fn from_unix(seconds: u64) -> Self {
        let (year, month, day) = civil_from_days(seconds / 86_400);
        let rest = seconds % 86_400;
        Self {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
        }
    }

    /// The calendar fields of a system time (times before 1970 read as 1970-01-01).
    pub fn from_system_time(time: SystemTime) -> Self {
        Self::from_unix(
            time.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_fields_of_known_instants() {
        assert_eq!(
            Utc::from_unix(0),
            Utc {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        // 2000-02-29 (a leap day of a century year) and the AWS test-suite instant.
        assert_eq!(
            Utc::from_unix(951_782_400),
            Utc {
                year: 2000,
                month: 2,
                day: 29,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        assert_eq!(
            Utc::from_unix(1_440_938_160),
            Utc {
                year: 2015,
                month: 8,
                day: 30,
                hour: 12,
                minute: 36,
                second: 0
            }
        );
    }
}
