//! TLS for services and their clients, with rustls (ring): a server config from PEM files
//! (ALPN h2 and http/1.1, so gRPC works over TLS too), and a client config that trusts exactly
//! the CAs it is given (the lab's CA), never the system's and never "insecure".

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Environment variables the lab sets for TLS.
pub mod env {
    /// PEM certificate chain the service serves (set on `protocol = "https"` services).
    pub const TLS_CERT: &str = "TLS_CERT";
    /// PEM private key of `TLS_CERT`.
    pub const TLS_KEY: &str = "TLS_KEY";
    /// PEM CA certificate(s) a client trusts (the lab's CA).
    pub const TLS_CA: &str = "TLS_CA";
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: p.clone(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: p,
            reason: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// A server config serving `cert` (PEM chain) with `key` (PEM), ALPN h2 then http/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(cert)?;
    let kp = key.display().to_string();
    let key_bytes = std::fs::read(key).map_err(|source| TlsError::Read {
        path: kp.clone(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsError::Pem {
        path: kp,
        reason: e.to_string(),
    })?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client config trusting the CA certificates in `ca` (PEM) and nothing else.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c)?;
    }
    Ok(Arc::new(client_with_roots(roots)?))
}

/// A client config that trusts nothing: https requests fail with an unknown-issuer error.
pub fn client_config_trusting_nothing() -> Arc<ClientConfig> {
    Arc::new(
        client_with_roots(RootCertStore::empty()).expect("default protocol versions are supported"),
    )
}

fn client_with_roots(roots: RootCertStore) -> Result<ClientConfig, TlsError> {
    // No ALPN here: the HTTPS connector sets it (http/1.1) for the protocols it enables.
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
