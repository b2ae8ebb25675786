//! The one port resolver: every port the lab listens on (each instance, each frontend, each hub
//! listener) is asked for as a [`Request`] and decided together, so no two get the same free
//! port and a taken one is reported with its holder and the lab.toml span that asked for it.
//!
//! This is the only part of lowering that asks the machine anything (is the port free? who
//! holds it?); [`super::build`] then works from the [`Resolved`] answer alone.

use std::ops::Range;

use lab_supervisor::ports;

use crate::config::diagnostic::Diagnostic;

/// How `lab up` treats the ports lab.toml asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PortMode {
    /// Use the configured ports; a taken one is an error naming its holder.
    #[default]
    Strict,
    /// Use the configured ports, shifting each taken one to a free port.
    Auto,
    /// Ignore the configured ports: every instance gets a free one (tests, parallel labs).
    Ephemeral,
    /// The configured ports as written, not checked on this machine; a port left free gets
    /// the listener's default in its container and a host port the engine picks (`lab export`).
    #[value(skip)]
    Declared,
}

/// One port the lab will listen on.
pub struct Request {
    /// Where it binds (`127.0.0.1`, `0.0.0.0`, …).
    pub host: String,
    /// As configured; 0: any free port.
    pub port: u16,
    pub udp: bool,
    /// In [`PortMode::Ephemeral`], keep the configured port when it is free; the note says what
    /// a free port instead would cost.
    pub keep_when_free: Option<String>,
    /// `recipe-api#1`, `frontend web`, `hub StatsD (UDP)`: in the error's parentheses.
    pub label: String,
    /// `recipe-api#1`, `frontend web`, `the hub StatsD (UDP)`: who gets a free port instead.
    pub subject: String,
    /// What to do about a taken one.
    pub hint: &'static str,
    /// The lab.toml text that asked for it.
    pub span: Option<Range<usize>>,
    /// [`PortMode::Declared`]: the port inside a container when none is configured.
    pub fallback: u16,
}

/// The ports decided, in the order of the requests.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub ports: Vec<u16>,
    /// [`PortMode::Declared`] only: no port was configured, so the engine publishes any host
    /// port (and `ports` holds the container's default).
    pub any_host_port: Vec<bool>,
    /// For the user: ports shifted by `--ports auto`, kept ports that were taken.
    pub notes: Vec<String>,
}

pub const SERVICE_HINT: &str =
    "stop that process, choose another port, or run `lab up --ports auto` to shift to free ones";
pub const HUB_HINT: &str = "stop that process (another lab's hub?), set another port in [hub], or run `lab up --ports auto`";

/// Who holds `port` on `host`, if it is taken (`Some(None)`: taken, holder unknown).
fn taken(host: &str, port: u16, udp: bool) -> Option<Option<String>> {
    if udp {
        std::net::UdpSocket::bind((host, port)).err().map(|_| None)
    } else {
        ports::check(host, port)
            .err()
            .map(|holder| holder.map(|h| format!("pid {} ({})", h.pid, h.command)))
    }
}

/// Decide every requested port: configured ones checked (as `mode` says), the rest picked free
/// together.
pub fn resolve(requests: &[Request], mode: PortMode) -> Result<Resolved, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut wanted: Vec<Option<u16>> = Vec::with_capacity(requests.len());
    for r in requests {
        let decided = match (r.port, mode) {
            (_, PortMode::Declared) => Some(if r.port == 0 { r.fallback } else { r.port }),
            (p, PortMode::Ephemeral) if p != 0 && r.keep_when_free.is_some() => {
                match taken(&r.host, p, r.udp) {
                    None => Some(p),
                    Some(_) => {
                        notes.push(r.keep_when_free.clone().unwrap_or_default());
                        None
                    }
                }
            }
            (0, _) | (_, PortMode::Ephemeral) => None,
            (p, mode) => match taken(&r.host, p, r.udp) {
                None => Some(p),
                Some(who) => {
                    let who = who.unwrap_or_else(|| "another process".to_owned());
                    if mode == PortMode::Auto {
                        notes.push(format!(
                            "port {p} is taken by {who}; {} gets a free port",
                            r.subject
                        ));
                        None
                    } else {
                        errors.push(
                            Diagnostic::new(
                                r.span.clone().unwrap_or_default(),
                                format!("port {p} ({}) is taken by {who}", r.label),
                            )
                            .hint(r.hint),
                        );
                        Some(p)
                    }
                }
            },
        };
        wanted.push(decided);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let needed = wanted.iter().filter(|w| w.is_none()).count();
    let mut free = ports::pick_free("127.0.0.1", needed)
        .map_err(|e| {
            vec![Diagnostic::new(
                0..0,
                format!("cannot find free ports: {e}"),
            )]
        })?
        .into_iter();
    let any_host_port = requests
        .iter()
        .map(|r| mode == PortMode::Declared && r.port == 0)
        .collect();
    let ports = wanted
        .into_iter()
        .map(|w| w.unwrap_or_else(|| free.next().expect("as many free ports as asked for")))
        .collect();
    Ok(Resolved {
        ports,
        any_host_port,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(port: u16) -> Request {
        Request {
            host: "127.0.0.1".into(),
            port,
            udp: false,
            keep_when_free: None,
            label: "svc#1".into(),
            subject: "svc#1".into(),
            hint: SERVICE_HINT,
            span: Some(3..7),
            fallback: 4000,
        }
    }

    #[test]
    fn free_ports_never_repeat_and_declared_ports_are_not_checked() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let r = resolve(&[req(0), req(0), req(0)], PortMode::Strict).unwrap();
        let mut seen = r.ports.clone();
        seen.dedup();
        assert_eq!(seen.len(), 3, "{:?}", r.ports);
        let d = resolve(&[req(port), req(0)], PortMode::Declared).unwrap();
        assert_eq!(d.ports, [port, 4000]);
        assert_eq!(d.any_host_port, [false, true]);
    }

    #[test]
    fn a_taken_port_is_an_error_with_its_span_or_a_note_in_auto_mode() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let errs = resolve(&[req(port)], PortMode::Strict).unwrap_err();
        assert_eq!(errs[0].span, Some(3..7));
        assert!(
            errs[0]
                .message
                .starts_with(&format!("port {port} (svc#1) is taken by"))
        );
        let auto = resolve(&[req(port)], PortMode::Auto).unwrap();
        assert_ne!(auto.ports[0], port);
        assert!(
            auto.notes[0].ends_with("; svc#1 gets a free port"),
            "{:?}",
            auto.notes
        );
        // Ephemeral keeps a free configured port only where asked to.
        let mut keep = req(port);
        keep.keep_when_free = Some("kept note".into());
        let e = resolve(&[keep], PortMode::Ephemeral).unwrap();
        assert_ne!(e.ports[0], port);
        assert_eq!(e.notes, ["kept note"]);
    }
}
