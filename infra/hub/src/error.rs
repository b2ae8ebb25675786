//! Why the hub could not start or run.

use std::net::SocketAddr;

use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hub: cannot read the config {path}: {reason}")]
    Config { path: String, reason: String },
    /// (`error` is said in the message and is not a `source`: a printer of the error's chain
    /// would say it twice.)
    #[error("hub: cannot listen for {what} on {addr}: {error}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("hub: {0}")]
    Io(#[from] std::io::Error),
}
