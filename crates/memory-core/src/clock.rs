//! Time, injectable: the engine asks a [`Clock`] instead of the system so that tests of
//! time-to-live and recency decay are deterministic.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The UTC calendar day of this timestamp (proleptic Gregorian), e.g. `2023-05-08`.
    ///
    /// ```
    /// use memory_core::Timestamp;
    ///
    /// assert_eq!(Timestamp(0).date().to_string(), "1970-01-01");
    /// assert_eq!(Timestamp(1_683_504_000_000_000).date().to_string(), "2023-05-08");
    /// assert_eq!(Timestamp(-1).date().to_string(), "1969-12-31");
    /// ```
    pub fn date(self) -> Date {
        Date::from_days(self.0.div_euclid(MICROS_PER_DAY))
    }

    /// The timestamp `d` later than `self` (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_micros(d)))
    }

    /// The timestamp `d` earlier than `self` (saturating).
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_micros(d)))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}us", self.0)
    }
}

fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(duration_micros)
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// A clock that moves only when told to, for deterministic tests.
///
/// ```
/// use std::time::Duration;
/// use memory_core::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp(1_000_000));
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now(), Timestamp(3_000_000));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            micros: AtomicI64::new(start.0),
        }
    }

    /// Moves the clock forward by `d`, stopping at the last representable timestamp (as
    /// [`Timestamp::plus`] does) rather than wrapping around to one before the epoch.
    pub fn advance(&self, d: Duration) {
        let step = duration_micros(d);
        // The closure always returns `Some`: the update cannot fail.
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(step))
            });
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A UTC calendar day, shown as `YYYY-MM-DD` (see [`Timestamp::date`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i64,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// The day `days` after 1970-01-01 (Hinnant's `civil_from_days`, exact over the whole
    /// range of `i64` timestamps in microseconds).
    fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // [0, 146096]
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        let mp = (5 * doy + 2) / 153; // [0, 11], March first
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn dates_walk_the_calendar_day_by_day() {
        // Walks from 1600-01-01 to 2400-12-31 counting days by hand, leap years included.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = -135_140; // 1600-01-01
        for year in 1600..=2400 {
            for month in 1..=12u8 {
                let len = match month {
                    2 if leap(year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for day in 1..=len {
                    assert_eq!(Date::from_days(days), Date { year, month, day });
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn a_manual_clock_stops_at_the_last_timestamp_instead_of_wrapping() {
        let clock = ManualClock::new(Timestamp(i64::MAX - 5));
        clock.advance(Duration::from_micros(3));
        assert_eq!(clock.now(), Timestamp(i64::MAX - 2));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Timestamp(i64::MAX));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Timestamp(i64::MAX));
    }

    #[test]
    fn every_timestamp_has_a_date() {
        for t in [i64::MIN, -1, 0, 1, i64::MAX] {
            let d = Timestamp(t).date();
            assert!(
                (1..=12).contains(&d.month) && (1..=31).contains(&d.day),
                "{d:?}"
            );
        }
    }
}
