//! Times, in one place, on jiff: what people read is local time with its offset
//! (`14:02:31 +01:00`), from the system's time zone (`TZ`, else /etc/localtime); what machines
//! keep (the audit log, backup file names) is UTC. Nothing else in nfscope formats a date.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static ZONE: OnceLock<TimeZone> = OnceLock::new();

/// Show times in UTC from now on, whatever the system's zone (tests and snapshots, so that they
/// do not depend on where they run). The first call wins.
pub fn use_utc() {
    let _ = ZONE.set(TimeZone::UTC);
}

/// The zone times are shown in: the system's (`TZ`, else /etc/localtime), unless `use_utc`.
fn zone() -> TimeZone {
    ZONE.get().cloned().unwrap_or_else(TimeZone::system)
}

fn timestamp_ms(ms: u64) -> Timestamp {
    Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Milliseconds since 1970 as the local time of day with its offset: `14:02:31 +01:00`.
pub fn local_time(ms: u64) -> String {
    time_in(ms, zone())
}

fn time_in(ms: u64, tz: TimeZone) -> String {
    timestamp_ms(ms)
        .to_zoned_datetime(tz)
        .strftime("%H:%M:%S %:z")
        .to_string()
}

/// Milliseconds since 1970 as the local date and time with its offset:
/// `2026-12-05 14:02:31 +01:00`.
pub fn local_datetime(ms: u64) -> String {
    timestamp_ms(ms)
        .to_zoned_datetime(zone())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// Nanoseconds since 1970 (conntrack's timestamps) as `local_datetime`.
pub fn local_datetime_ns(ns: u64) -> String {
    local_datetime(ns / 1_000_000)
}

/// A `SystemTime` as milliseconds since 1970.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// UTC for logs: `2026-12-04T19:57:25.123Z`.
pub fn utc_iso(t: SystemTime) -> String {
    timestamp(t).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// UTC for file names, sorting as it should: `20261204T195725.123456789Z`.
pub fn utc_stamp(t: SystemTime) -> String {
    timestamp(t).strftime("%Y%m%dT%H%M%S%.9fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_for_machines() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_764_878_245_123_456_789);
        assert_eq!(utc_iso(t), "2025-12-04T19:57:25.123Z");
        assert_eq!(utc_stamp(t), "20251204T195725.123456789Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000.000000000Z");
    }

    #[test]
    fn a_zone_with_a_half_hour_offset() {
        let tz = TimeZone::posix("IST-5:30").expect("a POSIX zone");
        assert_eq!(time_in(1_764_878_245_123, tz), "01:27:25 +05:30");
    }

    #[test]
    fn local_times_carry_their_offset() {
        // Whatever zone this machine is in, the offset is said.
        let s = local_time(1_764_878_245_123);
        assert!(
            s.len() == 15 && (s.contains(" +") || s.contains(" -")),
            "{s}"
        );
        let d = local_datetime(0);
        assert!(d.starts_with("19") && d.len() == 26, "{d}");
    }
}
