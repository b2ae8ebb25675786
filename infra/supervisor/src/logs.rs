//! Per-instance log files (`.lab/logs/<service>.<n>.log`) and a tailer over several of them.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub fn log_file_name(service: &str, index: usize) -> String {
    format!("{service}.{index}.log")
}

/// How big one instance's log grows before it is rotated (the previous part is kept as
/// `<file>.1`, so an instance's output takes at most twice this on disk).
pub const MAX_LOG_BYTES: u64 = 10 << 20;

/// Rotate `path` past `max` bytes: copy it to `<path>.1` and truncate it in place (the
/// instance writes with O_APPEND, so its next line lands at the new end: logrotate's
/// copytruncate). True when it rotated.
pub fn rotate_if_big(path: &std::path::Path, max: u64) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.len() <= max {
        return false;
    }
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    if std::fs::copy(path, &old).is_err() {
        return false;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .is_ok()
}

/// A file to tail, with the label its lines are shown under.
#[derive(Debug, Clone)]
pub struct Source {
    pub label: String,
    pub path: PathBuf,
}

/// The last `n` lines of a file (all of them if `n` is `None`).
pub fn last_lines(path: &std::path::Path, n: Option<usize>) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let skip = n.map_or(0, |n| lines.len().saturating_sub(n));
    lines.into_iter().skip(skip).collect()
}

/// Follow `sources` from their current ends (or from `start_at_beginning`), calling `emit` for
/// each complete new line, until `cancel` fires (after which one last pass prints what was
/// written in the meantime). Files that do not exist yet are picked up when
/// they appear; a truncated file is read again from its start.
pub async fn follow(
    sources: Vec<Source>,
    start_at_beginning: bool,
    cancel: CancellationToken,
    mut emit: impl FnMut(&str, &str),
) {
    const PERIOD: Duration = Duration::from_millis(100);
    let mut offsets: Vec<u64> = sources
        .iter()
        .map(|s| {
            if start_at_beginning {
                0
            } else {
                std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0)
            }
        })
        .collect();
    let mut partial: Vec<String> = vec![String::new(); sources.len()];
    let mut last_pass = false;
    loop {
        for (i, s) in sources.iter().enumerate() {
            let Ok(mut f) = std::fs::File::open(&s.path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offsets[i] {
                offsets[i] = 0;
                partial[i].clear();
            }
            if len == offsets[i] || f.seek(SeekFrom::Start(offsets[i])).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_err() {
                continue;
            }
            offsets[i] += buf.len() as u64;
            partial[i].push_str(&String::from_utf8_lossy(&buf));
            while let Some(nl) = partial[i].find('\n') {
                let line: String = partial[i].drain(..=nl).collect();
                emit(&s.label, line.trim_end_matches(['\n', '\r']));
            }
        }
        if last_pass {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => last_pass = true,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_big_log_is_rotated_in_place_and_the_previous_part_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.1.log");
        std::fs::write(&p, vec![b'a'; 100]).unwrap();
        assert!(!super::rotate_if_big(&p, 100));
        std::fs::write(&p, vec![b'a'; 101]).unwrap();
        assert!(super::rotate_if_big(&p, 100));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        assert_eq!(
            std::fs::metadata(d.path().join("x.1.log.1")).unwrap().len(),
            101
        );
    }
}
