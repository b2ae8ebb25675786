//! The services' own output (stdout and stderr, as the supervisor writes them to
//! `.lab/logs/<service>.<n>.log`) into the log store, one document per line: `app` the
//! service, `instance`, `type: output`, `message` the line; the severity and time of a
//! `tracing` line (`<RFC 3339>  WARN target: …`) are read from it. Only lines written after the
//! hub started are taken. The kit's per-request lines are skipped: the services' own
//! request-incoming documents say the same, and storing both would double every request.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use serde_json::Value;

use crate::ingest::logs::{LogEvent, parse_time};
use crate::shared::Shared;
use crate::store::Write;

pub use crate::config::TailFile;

/// How often the files are read.
const EVERY: Duration = Duration::from_millis(250);

struct Cursor {
    file: TailFile,
    offset: u64,
    partial: Vec<u8>,
}

/// One output line as a document.
pub fn line_event(
    file: &TailFile,
    line: &str,
    now: time::OffsetDateTime,
    prefix: &str,
) -> LogEvent {
    let (service, instance) = (file.service.as_str(), file.instance);
    let mut words = line.split_whitespace();
    let stamp = words.next().and_then(parse_time);
    let level = words.next().and_then(|l| match l {
        "ERROR" => Some("error"),
        "WARN" => Some("warn"),
        "INFO" => Some("info"),
        "DEBUG" => Some("debug"),
        "TRACE" => Some("trace"),
        _ => None,
    });
    let mut e =
        crate::ingest::logs::plain_line(service, "output", line, stamp.unwrap_or(now), prefix);
    e.doc.insert("instance".into(), Value::from(instance));
    if let Some(env) = &file.environment {
        e.doc
            .insert("environment".into(), Value::from(env.as_str()));
    }
    e.doc
        .insert("severity".into(), Value::from(level.unwrap_or("info")));
    e
}

/// The kit's one line per request (`INFO request: method=… path=…`): the request-incoming
/// documents services send already say it, so storing these too would double every request.
fn is_request_line(line: &str) -> bool {
    line.contains(" request: method=")
}

pub fn run(shared: &Shared, stop: &AtomicBool) {
    let prefix = shared.config.index_prefix.clone();
    // Start at each file's current end: what was written before the hub started is not news.
    let mut cursors: Vec<Cursor> = shared
        .config
        .tail
        .iter()
        .map(|f| Cursor {
            offset: std::fs::metadata(&f.path).map_or(0, |m| m.len()),
            file: f.clone(),
            partial: Vec::new(),
        })
        .collect();
    while !stop.load(Relaxed) {
        let now = time::OffsetDateTime::now_utc();
        let mut events = Vec::new();
        for c in &mut cursors {
            let Ok(mut f) = std::fs::File::open(&c.file.path) else {
                continue;
            };
            let len = f.metadata().map_or(0, |m| m.len());
            if len < c.offset {
                // Truncated or replaced: from its start.
                c.offset = 0;
                c.partial.clear();
            }
            if len == c.offset || f.seek(SeekFrom::Start(c.offset)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            // At most 4 MB per round, so one chatty service cannot stall the others.
            if f.take(4 << 20).read_to_end(&mut buf).is_err() {
                continue;
            }
            c.offset += buf.len() as u64;
            c.partial.extend_from_slice(&buf);
            // Whole lines, in one pass; what follows the last newline waits for the next round.
            let complete = c
                .partial
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            for raw in c.partial[..complete].split(|b| *b == b'\n') {
                let line = String::from_utf8_lossy(raw);
                let line = line.trim_end();
                if line.is_empty() || is_request_line(line) {
                    continue;
                }
                events.push(line_event(&c.file, line, now, &prefix));
            }
            c.partial.drain(..complete);
        }
        if !events.is_empty() && shared.store.write(Write::logs(events)).is_err() {
            return;
        }
        std::thread::sleep(EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn tracing_lines_keep_their_time_and_level() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
        let file = |s: &str, i| TailFile {
            service: s.into(),
            instance: i,
            path: PathBuf::new(),
            environment: None,
        };
        let e = line_event(
            &file("web-api", 2),
            "2026-11-25T17:23:57.714304Z  WARN lab_service_kit::health: health: redis is down",
            now,
            "nodejs-",
        );
        assert_eq!(e.doc["severity"], "warn");
        assert_eq!(e.doc["instance"], 2);
        assert_eq!(e.doc["app"], "web-api");
        assert_eq!(e.doc["@timestamp"], "2026-11-25T17:23:57.714Z");
        let e = line_event(
            &file("x", 1),
            "plain text from a Node service",
            now,
            "nodejs-",
        );
        assert_eq!(e.doc["severity"], "info");
        assert_eq!(e.ts_ms, 1_795_000_000_000);
        assert!(is_request_line(
            "2026-11-25T17:23:57Z  INFO request: method=GET path=/health status=200 latency_us=39"
        ));
    }
}
