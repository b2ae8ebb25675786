//! What chapter 2's scenarios share: the TLS client, content types, GraphQL and gRPC calls,
//! the built-in TLS helper, text helpers.

use super::super::scenario::{Ctx, Endpoint};
use crate::config::model::{Builtin, Protocol};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Requests per measurement.
pub(super) const SAMPLES: usize = 20;

/// A client that trusts the lab's CA, for a producer over TLS.
pub(super) fn tls_client(ctx: &Ctx, e: &Endpoint) -> anyhow::Result<lab_net::client::Client> {
    match (&e.protocol, &ctx.tls_ca) {
        (Protocol::Https, Some(ca)) => Ok(lab_net::client::Client::with_tls(
            lab_net::tls::client_config(ca)?,
        )),
        (Protocol::Https, None) => anyhow::bail!(
            "`{}` serves https but the lab has no CA file under {}",
            e.service,
            ctx.tls_dir.display()
        ),
        (Protocol::Http, _) => Ok(ctx.client.clone()),
    }
}

pub(super) fn content_type(r: &lab_net::client::Response) -> String {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A built-in recipe-api over TLS on a free port, with a certificate from a CA made for the
/// check in a temp dir: its process, the CA file, and the dir (removed when dropped).
pub(super) async fn tls_recipe_api_helper() -> anyhow::Result<(
    super::super::spawn::Spawned,
    std::path::PathBuf,
    tempfile::TempDir,
)> {
    let dir = tempfile::tempdir()?;
    let ca = crate::tls::LabCa::ensure(dir.path())?;
    let issued = ca.server_cert("recipe-api")?;
    let (cert, key, ca_path) = (
        issued.cert.display().to_string(),
        issued.key.display().to_string(),
        ca.ca_cert(),
    );
    let ca_s = ca_path.display().to_string();
    let spawned = super::super::spawn::builtin(
        Builtin::RecipeApi,
        &[
            ("TLS_CERT", cert.as_str()),
            ("TLS_KEY", key.as_str()),
            ("TLS_CA", ca_s.as_str()),
        ],
    )
    .await?;
    Ok((spawned, ca_path, dir))
}

pub(super) async fn gql(
    client: &lab_net::client::Client,
    ctx: &Ctx,
    base: &str,
    body: Value,
) -> anyhow::Result<(u16, Value, Duration)> {
    let t0 = Instant::now();
    let r = client
        .post_json(&format!("{base}/graphql"), &body, ctx.timeout)
        .await?;
    Ok((
        r.status.as_u16(),
        r.json().unwrap_or(Value::Null),
        t0.elapsed(),
    ))
}

/// The TLS config of a gRPC call to `e` (none over plain HTTP/2).
pub(super) fn grpc_tls(
    ctx: &Ctx,
    e: &Endpoint,
) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
    match (e.protocol, &ctx.tls_ca) {
        (Protocol::Http, _) => Ok(None),
        (Protocol::Https, Some(ca)) => Ok(Some(lab_net::tls::client_config(ca)?)),
        (Protocol::Https, None) => {
            anyhow::bail!("`{}` serves TLS but the lab has no CA", e.service)
        }
    }
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    super::super::scenario::truncate(s, n)
}

/// "id, name" for a list of names; "none" when empty.
pub(super) fn names(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
