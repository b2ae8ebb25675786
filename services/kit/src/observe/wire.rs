//! What goes on the wire, shaped as the book's services send it: log documents and their
//! fields, Zipkin v2 spans.

/// A Logstash document, serialised straight from borrowed parts.
#[derive(serde::Serialize)]
pub(super) struct LogDoc<'a, F> {
    #[serde(rename = "@timestamp")]
    pub(super) timestamp: String,
    #[serde(rename = "@version")]
    pub(super) version: u8,
    pub(super) app: &'a str,
    pub(super) environment: &'a str,
    pub(super) severity: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    pub(super) fields: F,
    pub(super) host: &'a str,
}

#[derive(serde::Serialize)]
pub(super) struct IncomingFields<'a> {
    pub(super) path: &'a str,
    pub(super) method: &'a str,
    pub(super) ip: Option<&'a str>,
    pub(super) ua: Option<&'a str>,
    /// The request's trace (B3), so a trace's log lines can be found from it.
    pub(super) trace_id: &'a str,
}

#[derive(serde::Serialize)]
pub(super) struct OutgoingFields<'a> {
    pub(super) url: &'a str,
    pub(super) svc: &'a str,
    pub(super) trace_id: &'a str,
}

#[derive(serde::Serialize)]
pub(super) struct FailureFields<'a> {
    pub(super) stack: &'a str,
    pub(super) path: &'a str,
    pub(super) method: &'a str,
    pub(super) trace_id: &'a str,
}

/// A Zipkin v2 span, serialised straight from borrowed parts.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpanOut<'a> {
    pub(super) trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parent_id: Option<&'a str>,
    pub(super) id: &'a str,
    pub(super) kind: &'a str,
    pub(super) name: &'a str,
    pub(super) timestamp: i64,
    pub(super) duration: i64,
    pub(super) local_endpoint: &'a serde_json::value::RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) remote_endpoint: Option<RemoteEndpoint<'a>>,
    pub(super) tags: Tags<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RemoteEndpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ipv4: Option<&'a str>,
}

#[derive(serde::Serialize)]
pub(super) struct Tags<'a> {
    #[serde(rename = "http.method", skip_serializing_if = "Option::is_none")]
    pub(super) method: Option<&'a str>,
    #[serde(rename = "http.path", skip_serializing_if = "Option::is_none")]
    pub(super) path: Option<&'a str>,
    #[serde(rename = "http.status_code", skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

/// Serialised documents back to back, and where each ends: what a request adds to a queue
/// is written straight into it (no buffer of its own, no copy), and the sending thread hands
/// the spent outbox back with its capacity ([`Outbox::recycle`]).
#[derive(Default)]
pub(super) struct Outbox {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Outbox {
    /// Append `v` as JSON; false (nothing added) when it does not serialise.
    pub(super) fn push_json(&mut self, v: &impl serde::Serialize) -> bool {
        let at = self.bytes.len();
        if serde_json::to_writer(&mut self.bytes, v).is_ok() {
            self.ends.push(self.bytes.len());
            true
        } else {
            self.bytes.truncate(at);
            false
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The documents, in order.
    pub(super) fn docs(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let d = &self.bytes[start..end];
            start = end;
            d
        })
    }

    /// Take what `queue` holds, leaving it empty.
    pub(super) fn take(queue: &std::sync::Mutex<Outbox>) -> Outbox {
        std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Give a sent outbox back to `queue` to fill again (its memory kept), with whatever was
    /// queued meanwhile moved into it.
    pub(super) fn recycle(queue: &std::sync::Mutex<Outbox>, mut spent: Outbox) {
        spent.bytes.clear();
        spent.ends.clear();
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        spent.bytes.extend_from_slice(&q.bytes);
        spent.ends.extend_from_slice(&q.ends);
        *q = spent;
    }
}
