//! Carbon plaintext in (TCP): `<path> <value> <epoch-seconds>\n`, many lines per connection, as
//! a real StatsD daemon's graphite backend writes them. Points go straight to the store (no
//! aggregation: they were aggregated by whoever sent them). Bad lines are counted.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::shared::Shared;
use crate::store::Write;

/// Parse one plaintext line.
pub fn parse_line(line: &str) -> Option<(String, i64, f64)> {
    let mut it = line.split_whitespace();
    let (path, value, ts) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let value: f64 = value.parse().ok()?;
    let ts: f64 = ts.parse().ok()?;
    (ts.is_finite() && ts >= 0.0).then(|| (path.to_owned(), ts as i64, value))
}

/// The longest carbon line taken (longer ones are skipped and counted).
const MAX_LINE: usize = 64 * 1024;

pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    // Bytes, not text: a line that is not UTF-8 (or too long) is skipped and
                    // counted, and the lines after it still count.
                    let mut reader = BufReader::new(sock);
                    let mut buf = Vec::new();
                    let mut skipping = false;
                    let mut batch = Vec::new();
                    loop {
                        buf.clear();
                        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        let complete = buf.ends_with(b"\n");
                        if skipping {
                            skipping = !complete;
                            continue;
                        }
                        if !complete && buf.len() >= MAX_LINE {
                            shared.counters.carbon_bad_lines.fetch_add(1, Relaxed);
                            skipping = true;
                            continue;
                        }
                        let Ok(line) = std::str::from_utf8(&buf) else {
                            shared.counters.carbon_bad_lines.fetch_add(1, Relaxed);
                            continue;
                        };
                        if line.trim().is_empty() {
                            continue;
                        }
                        match parse_line(line) {
                            Some(p) => {
                                shared.counters.carbon_lines.fetch_add(1, Relaxed);
                                batch.push(p);
                            }
                            None => {
                                shared.counters.carbon_bad_lines.fetch_add(1, Relaxed);
                            }
                        }
                        if batch.len() >= 1000 {
                            write(&shared, std::mem::take(&mut batch));
                        }
                    }
                    if !batch.is_empty() {
                        write(&shared, batch);
                    }
                });
            }
        }
    }
}

fn write(shared: &Shared, batch: Vec<(String, i64, f64)>) {
    let n = batch.len() as u64;
    if !shared.store.try_write(Write::Points(batch)) {
        shared.counters.carbon_bad_lines.fetch_add(n, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines() {
        assert_eq!(
            super::parse_line("a.b 1.5 1700000000"),
            Some(("a.b".into(), 1_700_000_000, 1.5))
        );
        assert_eq!(super::parse_line("a.b 1.5"), None);
        assert_eq!(super::parse_line("a.b x 1"), None);
        assert_eq!(super::parse_line("a.b 1 2 3"), None);
    }
}
