//! The same frontends for the real HAProxy: [`render`] writes an `haproxy.cfg` (HAProxy 2.4+
//! syntax, as Debian 12's 2.6) from a [`ProxyConfig`], mirroring the book's configs
//! (load-balance, compression, tls, backpressure, passthru, stats).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Balance, Mode, ProxyConfig, TlsFiles};

/// The haproxy.cfg text. `pem_of` names the PEM file (certificate then key, as HAProxy's
/// `crt` wants) made from a frontend's TLS files; the caller writes it.
pub fn render(cfg: &ProxyConfig, pem_of: impl Fn(&TlsFiles) -> PathBuf) -> String {
    let mut out = String::new();
    let maxconn: usize = cfg
        .frontends
        .iter()
        .map(|f| f.maxconn)
        .sum::<usize>()
        .max(256);
    let _ = writeln!(
        out,
        "# Rendered by `lab` from lab.toml's [proxy] section; edits are overwritten by `lab up`.\n\
         global\n  maxconn {maxconn}\n\n\
         defaults\n  log stdout format raw local0\n  option dontlognull\n  option redispatch"
    );
    for f in &cfg.frontends {
        let mode = match f.mode {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        };
        let backend = format!("{}-servers", f.name);
        let _ = writeln!(out, "\nfrontend {}", f.name);
        let bind = match &f.tls {
            Some(t) => format!(
                "{} ssl crt {} alpn h2,http/1.1",
                f.bind,
                pem_of(t).display()
            ),
            None => f.bind.clone(),
        };
        let _ = writeln!(out, "  bind {bind}");
        let _ = writeln!(out, "  mode {mode}");
        let _ = writeln!(out, "  maxconn {}", f.maxconn);
        let _ = writeln!(out, "  timeout client {}ms", f.client_timeout_ms);
        if f.mode == Mode::Http {
            let _ = writeln!(out, "  timeout http-request {}ms", f.client_timeout_ms);
            let _ = writeln!(out, "  option forwardfor");
            let _ = writeln!(
                out,
                "  http-request set-header X-Forwarded-Proto {}",
                if f.tls.is_some() { "https" } else { "http" }
            );
            if let Some(uri) = &f.stats_uri {
                let _ = writeln!(out, "  stats enable\n  stats uri {uri}\n  stats refresh 5s");
            }
        }
        let _ = writeln!(out, "  default_backend {backend}");

        let _ = writeln!(out, "\nbackend {backend}");
        let _ = writeln!(out, "  mode {mode}");
        let _ = writeln!(
            out,
            "  balance {}",
            match f.balance {
                Balance::Roundrobin => "roundrobin",
                Balance::Leastconn => "leastconn",
            }
        );
        let _ = writeln!(out, "  timeout connect {}ms", f.connect_timeout_ms);
        let _ = writeln!(out, "  timeout server {}ms", f.server_timeout_ms);
        let _ = writeln!(out, "  timeout queue {}ms", f.queue_timeout_ms);
        let _ = writeln!(out, "  retries {}", f.retries);
        if f.mode == Mode::Http {
            let _ = writeln!(
                out,
                "  retry-on conn-failure empty-response response-timeout"
            );
        }
        let mut server_opts = String::new();
        if let Some(c) = &f.check {
            if let (Some(path), Mode::Http) = (&c.path, f.mode) {
                let _ = writeln!(
                    out,
                    "  option httpchk\n  http-check send meth GET uri {path}"
                );
            }
            let _ = write!(
                server_opts,
                " check inter {}ms rise {} fall {}",
                c.interval_ms, c.rise, c.fall
            );
            let _ = writeln!(out, "  timeout check {}ms", c.timeout_ms);
        }
        if let Some(m) = f.server_maxconn.filter(|&m| m > 0) {
            let _ = write!(server_opts, " maxconn {m}");
        }
        if f.mode == Mode::Http && !f.compression.is_empty() {
            let _ = writeln!(
                out,
                "  compression algo gzip\n  compression type {}\n  compression offload",
                f.compression.join(" ")
            );
        }
        for s in &f.servers {
            let _ = writeln!(out, "  server {} {}{server_opts}", s.name, s.addr);
        }
    }
    out
}

/// The PEM HAProxy's `crt` reads: `cert` then `key`, concatenated into `dest`.
pub fn write_pem(tls: &TlsFiles, dest: &Path) -> std::io::Result<()> {
    let mut pem = std::fs::read(&tls.cert)?;
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend(std::fs::read(&tls.key)?);
    std::fs::write(dest, pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Check, Frontend, Server};

    #[test]
    fn renders_the_books_backpressure_and_compression_settings() {
        let mut f = Frontend::new(
            "web",
            "127.0.0.1:3000",
            vec![
                Server {
                    name: "web-api-1".into(),
                    addr: "127.0.0.1:3001".into(),
                },
                Server {
                    name: "web-api-2".into(),
                    addr: "127.0.0.1:3002".into(),
                },
            ],
        );
        f.balance = Balance::Leastconn;
        f.server_maxconn = Some(2);
        f.compression = vec!["application/json".into(), "text/plain".into()];
        f.stats_uri = Some("/admin?stats".into());
        f.check = Some(Check {
            path: Some("/health".into()),
            interval_ms: 500,
            timeout_ms: 400,
            rise: 2,
            fall: 3,
        });
        let text = render(&ProxyConfig { frontends: vec![f] }, |_| {
            PathBuf::from("/x.pem")
        });
        for want in [
            "frontend web\n  bind 127.0.0.1:3000\n  mode http\n",
            "  stats uri /admin?stats\n",
            "backend web-servers\n  mode http\n  balance leastconn\n",
            "  option httpchk\n  http-check send meth GET uri /health\n",
            "  compression type application/json text/plain\n  compression offload\n",
            "  server web-api-2 127.0.0.1:3002 check inter 500ms rise 2 fall 3 maxconn 2\n",
            "  timeout queue 5000ms\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
