//! `GET /health` with dependencies, as the book's `basic-http-healthcheck.js`: `200 OK`;
//! `200 DEGRADED` when an optional dependency (Redis, `HEALTH_REDIS`) fails `PING`; `500 DOWN`
//! when a required one (PostgreSQL, `HEALTH_POSTGRES`) fails `SELECT 'ACK'`. Both are probed for
//! real over their wire protocols, each within [`PROBE_TIMEOUT`]. With no dependency set the
//! answer is a plain `OK`, with no probe.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest one dependency probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub const HEALTH_POSTGRES: &str = "HEALTH_POSTGRES";
pub const HEALTH_REDIS: &str = "HEALTH_REDIS";

/// What `/health` checks.
#[derive(Debug, Clone, Default)]
pub struct Dependencies {
    pub postgres: Option<String>,
    pub redis: Option<String>,
}

static FROM_ENV: LazyLock<Dependencies> = LazyLock::new(Dependencies::from_env);

impl Dependencies {
    pub fn from_env() -> Self {
        let var = |k| {
            std::env::var(k)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Self {
            postgres: var(HEALTH_POSTGRES),
            redis: var(HEALTH_REDIS),
        }
    }

    /// Probe every dependency: the status and body `/health` answers.
    pub async fn check(&self) -> (StatusCode, &'static str) {
        let (pg, redis) = tokio::join!(
            async {
                match &self.postgres {
                    Some(url) => Some(postgres_ack(url).await),
                    None => None,
                }
            },
            async {
                match &self.redis {
                    Some(addr) => Some(redis_ping(addr).await),
                    None => None,
                }
            }
        );
        if let Some(Err(e)) = &pg {
            tracing::warn!(error = %e, "health: postgres is down");
            return (StatusCode::INTERNAL_SERVER_ERROR, "DOWN");
        }
        if let Some(Err(e)) = &redis {
            tracing::warn!(error = %e, "health: redis is down");
            return (StatusCode::OK, "DEGRADED");
        }
        (StatusCode::OK, "OK")
    }
}

/// The book's three states of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Degraded,
    Down,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Degraded => "DEGRADED",
            Level::Down => "DOWN",
        }
    }
    /// 2 / 1 / 0, as the hub records it (`hub.health.<service>`).
    pub fn value(self) -> f64 {
        match self {
            Level::Ok => 2.0,
            Level::Degraded => 1.0,
            Level::Down => 0.0,
        }
    }
}

/// Classify a `/health` answer: 2xx with a body starting `DEGRADED` is degraded, other 2xx OK,
/// anything else down (unreachable and timeouts too, decided by the caller).
pub fn classify(status: u16, body: &str) -> Level {
    match status {
        200..=299
            if body
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("DEGRADED") =>
        {
            Level::Degraded
        }
        200..=299 => Level::Ok,
        _ => Level::Down,
    }
}

/// The `/health` handler over the dependencies named in the environment.
pub async fn handler() -> (StatusCode, &'static str) {
    if FROM_ENV.postgres.is_none() && FROM_ENV.redis.is_none() {
        return (StatusCode::OK, "OK");
    }
    FROM_ENV.check().await
}

/// `PING` → `+PONG`.
pub async fn redis_ping(addr: &str) -> Result<(), String> {
    let probe = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply.starts_with("+PONG") {
            Ok(())
        } else {
            Err(format!("PING answered {:?}", reply.trim()))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .map_err(|_| format!("{addr}: no answer within {PROBE_TIMEOUT:?}"))?
}

/// The parts of a `postgres://user[:password]@host[:port][/db]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub user: String,
    pub password: Option<String>,
    pub addr: String,
    pub database: String,
}

pub fn parse_pg_url(url: &str) -> Result<PgUrl, String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| format!("{url:?} is not a postgres:// URL"))?;
    let (auth, hostdb) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (user, password) = match auth {
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
            None => (a.to_owned(), None),
        },
        None => ("postgres".to_owned(), None),
    };
    let (hostport, db) = hostdb.split_once('/').unwrap_or((hostdb, ""));
    let db = db.split('?').next().unwrap_or("");
    let addr = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    Ok(PgUrl {
        database: if db.is_empty() {
            user.clone()
        } else {
            db.to_owned()
        },
        user,
        password,
        addr,
    })
}

/// Connect, authenticate (trust or cleartext password), run `SELECT 'ACK'::text`, expect `ACK`.
pub async fn postgres_ack(url: &str) -> Result<(), String> {
    let u = parse_pg_url(url)?;
    let probe = async {
        let mut s = TcpStream::connect(&u.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", u.addr))?;
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes()); // protocol 3.0
        for (k, v) in [("user", u.user.as_str()), ("database", u.database.as_str())] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        s.write_all(&msg).await.map_err(|e| e.to_string())?;
        let mut queried = false;
        loop {
            let mut head = [0u8; 5];
            s.read_exact(&mut head)
                .await
                .map_err(|e| format!("postgres closed the connection: {e}"))?;
            let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut payload = vec![0u8; len.saturating_sub(4)];
            s.read_exact(&mut payload)
                .await
                .map_err(|e| e.to_string())?;
            match head[0] {
                b'R' => {
                    let code = i32::from_be_bytes(
                        payload
                            .get(..4)
                            .and_then(|b| b.try_into().ok())
                            .unwrap_or([0; 4]),
                    );
                    match code {
                        0 => {}
                        3 => {
                            let pw = u
                                .password
                                .clone()
                                .ok_or("postgres asks for a password; put it in the URL")?;
                            let mut m = vec![b'p'];
                            m.extend_from_slice(&((pw.len() + 5) as i32).to_be_bytes());
                            m.extend_from_slice(pw.as_bytes());
                            m.push(0);
                            s.write_all(&m).await.map_err(|e| e.to_string())?;
                        }
                        other => {
                            return Err(format!(
                                "postgres wants authentication method {other} (trust and password are supported)"
                            ));
                        }
                    }
                }
                b'E' => {
                    let text: String = payload
                        .split(|b| *b == 0)
                        .filter(|f| f.first() == Some(&b'M'))
                        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                        .collect();
                    return Err(format!("postgres: {text}"));
                }
                b'Z' if !queried => {
                    queried = true;
                    let q = b"SELECT 'ACK'::text\0";
                    let mut m = vec![b'Q'];
                    m.extend_from_slice(&((q.len() + 4) as i32).to_be_bytes());
                    m.extend_from_slice(q);
                    s.write_all(&m).await.map_err(|e| e.to_string())?;
                }
                b'D' => {
                    // int16 columns, then int32 length and the value.
                    let value = payload
                        .get(6..)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    let _ = s.write_all(&[b'X', 0, 0, 0, 4]).await;
                    return if value == "ACK" {
                        Ok(())
                    } else {
                        Err(format!("SELECT 'ACK' returned {value:?}"))
                    };
                }
                b'Z' => return Err("the query returned no row".into()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .map_err(|_| format!("{}: no answer within {PROBE_TIMEOUT:?}", u.addr))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(200, "OK"), Level::Ok);
        assert_eq!(classify(200, "DEGRADED"), Level::Degraded);
        assert_eq!(classify(500, "DOWN"), Level::Down);
        assert_eq!(classify(503, ""), Level::Down);
    }

    #[test]
    fn pg_urls() {
        let u = parse_pg_url("postgres://app:secret@127.0.0.1:5433/recipes").unwrap();
        assert_eq!(
            (
                u.user.as_str(),
                u.password.as_deref(),
                u.addr.as_str(),
                u.database.as_str()
            ),
            ("app", Some("secret"), "127.0.0.1:5433", "recipes")
        );
        let u = parse_pg_url("postgresql://localhost").unwrap();
        assert_eq!(
            (u.user.as_str(), u.addr.as_str(), u.database.as_str()),
            ("postgres", "localhost:5432", "postgres")
        );
        assert!(parse_pg_url("mysql://x").is_err());
    }

    #[tokio::test]
    async fn a_dependency_that_refuses_is_down_or_degraded() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let deps = Dependencies {
            postgres: None,
            redis: Some(format!("127.0.0.1:{port}")),
        };
        assert_eq!(deps.check().await, (StatusCode::OK, "DEGRADED"));
        let deps = Dependencies {
            postgres: Some(format!("postgres://u@127.0.0.1:{port}/d")),
            redis: None,
        };
        assert_eq!(
            deps.check().await,
            (StatusCode::INTERNAL_SERVER_ERROR, "DOWN")
        );
        assert_eq!(
            Dependencies::default().check().await,
            (StatusCode::OK, "OK")
        );
    }

    #[tokio::test]
    async fn a_fake_redis_that_pongs_is_ok() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 16];
            let _ = s.read(&mut b).await;
            s.write_all(b"+PONG\r\n").await.unwrap();
        });
        assert_eq!(redis_ping(&addr).await, Ok(()));
    }
}
