//! Why the hub could not start or run.

use std::net::SocketAddr;

use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hub: cannot read the config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("hub: cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("hub: {0}")]
    Io(#[from] std::io::Error),
}
