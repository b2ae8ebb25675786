//! What a fault on an edge does: the kinds `lab fault` injects, their direction and share.
//! `.lab/faults.json` holds these (under each fault's `edge`), written by the CLI and read by
//! the edges process.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One kind of edge fault, with its amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Each piece of data waits `ms` (± `jitter_ms`) before it is passed on.
    Latency {
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// At most this many KB (1000 bytes) a second pass.
    Bandwidth { kb_per_s: u64 },
    /// Data is held, nothing passed on: the peer waits until it gives up (the connection is
    /// closed when the fault ends).
    Timeout,
    /// The connection is reset (RST) at its next exchange.
    Reset,
    /// The end of the stream is passed on `ms` late.
    SlowClose { ms: u64 },
    /// The connection is closed once this many bytes passed in an exchange.
    LimitData { bytes: u64 },
    /// HTTP: the request is answered `code` by the edge, never reaching the server.
    Status { code: u16 },
    /// HTTP: the first `n` requests after the fault starts are answered `code`, or (`code` 0,
    /// [`CLOSE`]) have their connection closed with no answer at all.
    FailFirst { n: u64, code: u16 },
    /// HTTP: the response's first byte waits `ms`.
    SlowFirstByte { ms: u64 },
    /// HTTP: the response's head is passed on, then the connection is closed.
    AbortAfterHeaders,
    /// Nothing gets through: new connections are refused (`refuse`: the edge stops
    /// listening, open connections are reset at their next exchange) or black-holed (`drop`:
    /// taken, then nothing passes either way until the fault ends).
    Partition {
        #[serde(default)]
        mode: PartitionMode,
    },
}

/// How a partition cuts an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionMode {
    /// Connections refused (ECONNREFUSED), open ones reset.
    #[default]
    Refuse,
    /// Connections black-holed: the peer waits until it gives up.
    Drop,
}

impl PartitionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionMode::Refuse => "refuse",
            PartitionMode::Drop => "drop",
        }
    }
}

/// The `code` of a `fail-first` that answers nothing: the connection is closed.
pub const CLOSE: u16 = 0;

/// Which way the data a fault hits flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the consumer to the server (requests).
    Upstream,
    /// From the server back to the consumer (responses).
    #[default]
    Downstream,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

fn always() -> f64 {
    1.0
}

/// A fault on the edges into a service (or one instance of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeFault {
    #[serde(flatten)]
    pub kind: EdgeKind,
    /// Where a fault that moves data hits (latency, bandwidth, timeout, slow-close, limit-data).
    #[serde(default)]
    pub direction: Direction,
    /// The share of exchanges (requests on an HTTP edge) it hits, 0 to 1.
    #[serde(default = "always")]
    pub probability: f64,
}

impl EdgeKind {
    /// `latency`, `fail-first`, …: as `lab fault` names it.
    pub fn name(&self) -> &'static str {
        match self {
            EdgeKind::Latency { .. } => "latency",
            EdgeKind::Bandwidth { .. } => "bandwidth",
            EdgeKind::Timeout => "timeout",
            EdgeKind::Reset => "reset",
            EdgeKind::SlowClose { .. } => "slow-close",
            EdgeKind::LimitData { .. } => "limit-data",
            EdgeKind::Status { .. } => "status",
            EdgeKind::FailFirst { .. } => "fail-first",
            EdgeKind::SlowFirstByte { .. } => "slow-first-byte",
            EdgeKind::AbortAfterHeaders => "abort-after-headers",
            EdgeKind::Partition { .. } => "partition",
        }
    }

    /// Needs HTTP/1.1 framing: only on edges into services that speak it.
    pub fn is_http(&self) -> bool {
        matches!(
            self,
            EdgeKind::Status { .. }
                | EdgeKind::FailFirst { .. }
                | EdgeKind::SlowFirstByte { .. }
                | EdgeKind::AbortAfterHeaders
        )
    }

    /// Hits one direction of the data (the others hit the exchange as a whole).
    pub fn has_direction(&self) -> bool {
        matches!(
            self,
            EdgeKind::Latency { .. }
                | EdgeKind::Bandwidth { .. }
                | EdgeKind::Timeout
                | EdgeKind::SlowClose { .. }
                | EdgeKind::LimitData { .. }
        )
    }

    /// `latency:200ms`, `status:503`: the kind with its amount (log documents, span tags,
    /// the `x-lab-fault` header of an answer the edge gives itself).
    pub fn label(&self) -> String {
        let ms = |ms: &u64| format_ms(Duration::from_millis(*ms));
        match self {
            EdgeKind::Latency { ms: l, jitter_ms } if *jitter_ms > 0 => {
                format!("latency:{}±{}", ms(l), ms(jitter_ms))
            }
            EdgeKind::Latency { ms: l, .. } => format!("latency:{}", ms(l)),
            EdgeKind::Bandwidth { kb_per_s } => format!("bandwidth:{kb_per_s}KB/s"),
            EdgeKind::SlowClose { ms: d } => format!("slow-close:{}", ms(d)),
            EdgeKind::LimitData { bytes } => format!("limit-data:{bytes}B"),
            EdgeKind::Status { code } => format!("status:{code}"),
            EdgeKind::FailFirst { n, code: CLOSE } => format!("fail-first:{n}xclose"),
            EdgeKind::FailFirst { n, code } => format!("fail-first:{n}x{code}"),
            EdgeKind::SlowFirstByte { ms: d } => format!("slow-first-byte:{}", ms(d)),
            EdgeKind::Partition { mode } => format!("partition:{}", mode.as_str()),
            EdgeKind::Timeout | EdgeKind::Reset | EdgeKind::AbortAfterHeaders => {
                self.name().to_owned()
            }
        }
    }
}

/// `200ms`, `1.5s`.
fn format_ms(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(100) {
        format!("{}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

impl EdgeFault {
    /// What `lab fault list` shows: `latency:200ms downstream 50%`.
    pub fn describe(&self) -> String {
        let mut s = self.kind.label();
        if self.kind.has_direction() {
            s.push(' ');
            s.push_str(self.direction.as_str());
        }
        if self.probability < 1.0 {
            s.push_str(&format!(" {}%", (self.probability * 1000.0).round() / 10.0));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_reads_back_as_written_and_is_labelled() {
        let f = EdgeFault {
            kind: EdgeKind::Latency {
                ms: 200,
                jitter_ms: 50,
            },
            direction: Direction::Upstream,
            probability: 0.25,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"latency","ms":200,"jitter_ms":50,"direction":"upstream","probability":0.25}"#
        );
        assert_eq!(serde_json::from_str::<EdgeFault>(&json).unwrap(), f);
        assert_eq!(f.describe(), "latency:200ms±50ms upstream 25%");
        let s: EdgeFault = serde_json::from_str(r#"{"kind":"status","code":503}"#).unwrap();
        assert_eq!(s.probability, 1.0);
        assert_eq!(s.describe(), "status:503");
        assert!(s.kind.is_http() && !s.kind.has_direction());
        assert_eq!(EdgeKind::SlowClose { ms: 1500 }.label(), "slow-close:1.5s");
        let p: EdgeFault = serde_json::from_str(r#"{"kind":"partition"}"#).unwrap();
        assert_eq!(p.describe(), "partition:refuse", "refuse unless told");
        let p: EdgeFault = serde_json::from_str(r#"{"kind":"partition","mode":"drop"}"#).unwrap();
        assert_eq!(
            p.kind,
            EdgeKind::Partition {
                mode: PartitionMode::Drop
            }
        );
    }
}
