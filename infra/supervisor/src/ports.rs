//! Ports: is one free, who holds it, pick free ones.

use std::net::TcpListener;

use crate::procfs::{self, PortHolder};

/// Whether `host:port` can be bound right now; if not, who holds it (when /proc tells).
pub fn check(host: &str, port: u16) -> Result<(), Option<PortHolder>> {
    match TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        Err(_) => Err(procfs::port_holder(port)),
    }
}

/// Pick `n` distinct free ports on `host` (held together so none repeats, then released).
///
/// A port picked here stays free until the program it is given binds it, so two labs starting
/// at once (parallel tests) could be handed the same one and the second to bind would find it
/// taken — or, worse, probe the first's program and take it for its own. Every pick is noted in
/// a machine-wide reservation file for [`RESERVED_FOR`], and ports another pick reserved are
/// skipped; a file that cannot be used only loses that guard.
pub fn pick_free(host: &str, n: usize) -> std::io::Result<Vec<u16>> {
    let mut book = Reservations::open();
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut skipped: Vec<TcpListener> = Vec::new();
    while held.len() < n {
        let l = TcpListener::bind((host, 0))?;
        let port = l.local_addr()?.port();
        if book.as_ref().is_some_and(|b| b.is_reserved(port)) && skipped.len() < 1000 {
            // Kept bound until the end so the kernel offers another port.
            skipped.push(l);
            continue;
        }
        held.push(l);
    }
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    if let Some(b) = book.as_mut() {
        b.reserve(&ports);
    }
    Ok(ports)
}

/// How long a picked port stays reserved: long enough for any program to bind it.
pub const RESERVED_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// The reservation file, locked while open: one `port unix_ms` line a pick.
struct Reservations {
    file: std::fs::File,
    live: Vec<(u16, u128)>,
}

impl Reservations {
    fn path() -> std::path::PathBuf {
        std::env::temp_dir().join("lab-port-reservations")
    }

    fn now_ms() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    }

    fn open() -> Option<Self> {
        use std::io::Read;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(Self::path())
            .ok()?;
        file.lock().ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        let oldest = Self::now_ms().saturating_sub(RESERVED_FOR.as_millis());
        let live = text
            .lines()
            .filter_map(|l| {
                let (p, t) = l.split_once(' ')?;
                Some((p.parse().ok()?, t.parse().ok()?))
            })
            .filter(|&(_, t)| t >= oldest)
            .collect();
        Some(Self { file, live })
    }

    fn is_reserved(&self, port: u16) -> bool {
        self.live.iter().any(|&(p, _)| p == port)
    }

    /// Note `ports` and write back the live reservations (the lock ends when `self` drops).
    fn reserve(&mut self, ports: &[u16]) {
        use std::io::{Seek, Write};
        let now = Self::now_ms();
        self.live.extend(ports.iter().map(|&p| (p, now)));
        let text: String = self
            .live
            .iter()
            .map(|(p, t)| format!("{p} {t}\n"))
            .collect();
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(text.as_bytes());
    }
}

/// Whether nothing listens on `port` any more (used after a stop to prove no port was left bound).
pub fn is_released(host: &str, port: u16) -> bool {
    check(host, port).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_are_distinct_and_reserved_for_other_picks() {
        let a = pick_free("127.0.0.1", 5).unwrap();
        let b = pick_free("127.0.0.1", 5).unwrap();
        let mut all: Vec<u16> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10, "{a:?} {b:?}");
        let book = Reservations::open().expect("the reservation file opens");
        for p in a.iter().chain(&b) {
            assert!(book.is_reserved(*p), "port {p} is reserved");
        }
    }
}
