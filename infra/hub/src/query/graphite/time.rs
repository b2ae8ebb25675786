//! Graphite's time forms: `-1h`, `now`, `HH:MM_YYYYMMDD`, epoch seconds; intervals (`1min`).

#[allow(unused_imports)]
use super::series::*;
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::collections::BTreeMap;

/// Graphite's time forms: `now`, `-10min`, `now-5minutes`, `-1h`, epoch seconds, `HH:MM_YYYYMMDD`,
/// `YYYYMMDD`. `now` is epoch seconds.
pub fn parse_time(s: &str, now: i64) -> Result<i64, RenderError> {
    let s = s.trim();
    let bad = || {
        RenderError(format!(
            "cannot read the time {s:?} (try -10min, -1h, now or epoch seconds)"
        ))
    };
    if s.is_empty() || s == "now" {
        return Ok(now);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let ymd = s.len() == 8
            && s[..4].parse::<i64>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<i64>().is_ok_and(|m| m < 13)
            && s[6..].parse::<i64>().is_ok_and(|d| d < 32);
        if !ymd {
            return s.parse().map_err(|_| bad());
        }
        return ymd_to_epoch(s, 0, 0).ok_or_else(bad);
    }
    let rel = s.strip_prefix("now").unwrap_or(s);
    if let Some(sign) = rel.chars().next().filter(|c| *c == '-' || *c == '+') {
        let secs = parse_interval(&rel[1..]).ok_or_else(bad)?;
        let t = if sign == '-' {
            now.checked_sub(secs)
        } else {
            now.checked_add(secs)
        };
        return t.ok_or_else(bad);
    }
    if let Some((hm, ymd)) = s.split_once('_') {
        let (h, m) = hm.split_once(':').ok_or_else(bad)?;
        let (h, m) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        return ymd_to_epoch(ymd, h, m).ok_or_else(bad);
    }
    Err(bad())
}

pub(crate) fn ymd_to_epoch(ymd: &str, h: u8, m: u8) -> Option<i64> {
    if ymd.len() != 8 {
        return None;
    }
    let y: i32 = ymd[..4].parse().ok()?;
    let mo: u8 = ymd[4..6].parse().ok()?;
    let d: u8 = ymd[6..].parse().ok()?;
    let date = ::time::Date::from_calendar_date(y, ::time::Month::try_from(mo).ok()?, d).ok()?;
    let t = ::time::Time::from_hms(h, m, 0).ok()?;
    Some(
        ::time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// `10min`, `5minutes`, `30s`, `1h`, `2d`, `1w`, `1mon`, `1y` → seconds.
pub fn parse_interval(s: &str) -> Option<i64> {
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = if n.is_empty() { 1 } else { n.parse().ok()? };
    let unit_s = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mon" | "month" | "months" => 30 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_s)
}
