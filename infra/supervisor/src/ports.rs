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
pub fn pick_free(host: &str, n: usize) -> std::io::Result<Vec<u16>> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((host, 0)))
        .collect::<Result<_, _>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// Whether nothing listens on `port` any more (used after a stop to prove no port was left bound).
pub fn is_released(host: &str, port: u16) -> bool {
    check(host, port).is_ok()
}
