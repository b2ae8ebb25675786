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
