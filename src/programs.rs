//! Programs on this machine: the one place that looks a program up.

use std::path::PathBuf;

/// The full path of `program`: on PATH, else in the sbin folders Debian puts daemons in
/// (`/usr/sbin/haproxy` is not on a normal user's PATH).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
