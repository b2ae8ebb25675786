//! The lab's local CA and per-service certificates, under `.lab/tls/`, made on first use with
//! rcgen. Nothing here is committed: a fresh clone makes its own CA.
//!
//! - `ca.crt` / `ca.key`: the lab CA (10 years). Consumers trust `ca.crt` (`TLS_CA`, and
//!   `NODE_EXTRA_CA_CERTS` for Node.js code).
//! - `<service>.crt` / `<service>.key`: a server certificate for `localhost`, `127.0.0.1`, `::1`
//!   and the service name, reissued when older than [`REISSUE_AFTER_DAYS`].

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// Leaf certificates live this many days.
pub const LEAF_DAYS: i64 = 90;
/// ... and are reissued once older than this.
pub const REISSUE_AFTER_DAYS: u64 = 30;

const CA_NAME: &str = "lab local CA";

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The lab CA, able to issue service certificates.
pub struct LabCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// Paths of one issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The CA's parameters. Its name carries a fingerprint of its key, so two labs' CAs never share
/// a name (a certificate from one is then reported as from an unknown issuer by the other).
fn ca_params(key: &KeyPair) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    let fingerprint = key
        .public_key_raw()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
    dn.push(
        DnType::CommonName,
        format!("{CA_NAME} {:08x}", fingerprint as u32),
    );
    dn.push(DnType::OrganizationName, "lab");
    p.distinguished_name = dn;
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    Ok(p)
}

impl LabCa {
    /// Load the CA under `dir`, or create it (and `dir`) on first use.
    pub fn ensure(dir: &Path) -> Result<Self, CaError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (params, key_pair) = if crt.exists() && key.exists() {
            let pem = std::fs::read_to_string(&key).map_err(io(&key))?;
            let kp = KeyPair::from_pem(&pem)?;
            (ca_params(&kp)?, kp)
        } else {
            let kp = KeyPair::generate()?;
            let params = ca_params(&kp)?;
            let cert = params.self_signed(&kp)?;
            write_private(&key, &kp.serialize_pem())?;
            std::fs::write(&crt, cert.pem()).map_err(io(&crt))?;
            (params, kp)
        };
        // Same name and key as ca.crt, so what it signs chains to the file on disk.
        Ok(Self {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key_pair),
        })
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A server certificate for `service`, reusing a recent one.
    pub fn server_cert(&self, service: &str) -> Result<Issued, CaError> {
        let issued = Issued {
            cert: self.dir.join(format!("{service}.crt")),
            key: self.dir.join(format!("{service}.key")),
        };
        let fresh = std::fs::metadata(&issued.cert)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() < REISSUE_AFTER_DAYS * 86_400);
        if fresh && issued.key.exists() {
            return Ok(issued);
        }
        self.issue(
            service,
            &issued,
            OffsetDateTime::now_utc() - Duration::days(1),
            OffsetDateTime::now_utc() + Duration::days(LEAF_DAYS),
        )?;
        Ok(issued)
    }

    /// Issue a certificate for `service` valid from `not_before` to `not_after` (tests use this
    /// to make an expired one).
    pub fn issue(
        &self,
        service: &str,
        to: &Issued,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<(), CaError> {
        let mut p = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            service.to_owned(),
        ])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, service);
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.not_before = not_before;
        p.not_after = not_after;
        let kp = KeyPair::generate()?;
        let cert = p.signed_by(&kp, &self.issuer)?;
        std::fs::write(&to.cert, cert.pem()).map_err(io(&to.cert))?;
        write_private(&to.key, &kp.serialize_pem())
    }
}

/// Write a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<(), CaError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(pem.as_bytes()).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    use lab_net::client;
    use lab_web_api::{AppState, TargetProtocol, router};

    const T: StdDuration = StdDuration::from_secs(5);

    /// recipe-api over TLS with `cert`; returns its `host:port`.
    async fn tls_recipe_api(cert: &Issued) -> String {
        let cfg = lab_net::tls::server_config(&cert.cert, &cert.key).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(lab_net::serve::serve_tls(
            listener,
            lab_recipe_api::router(),
            std::future::pending(),
            cfg,
            T,
        ));
        addr
    }

    /// web-api calling `target`; returns `GET /` as (status, body).
    async fn consume(state: AppState) -> (u16, serde_json::Value) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(lab_net::serve::serve(
            listener,
            router(state),
            std::future::pending(),
        ));
        let r = client::get(&format!("http://{addr}/"), T).await.unwrap();
        (r.status.as_u16(), r.json().unwrap())
    }

    fn trust(ca: &LabCa) -> std::sync::Arc<rustls::ClientConfig> {
        lab_net::tls::client_config(&ca.ca_cert()).unwrap()
    }

    #[tokio::test]
    async fn web_api_over_https_trusts_the_lab_ca_and_nothing_else() {
        let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ca, other) = (
            LabCa::ensure(dir.path()).unwrap(),
            LabCa::ensure(other_dir.path()).unwrap(),
        );
        let producer = tls_recipe_api(&ca.server_cert("recipe-api").unwrap()).await;

        let (s, v) = consume(AppState::https(producer.clone(), T, trust(&ca))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["producer_data"]["recipe"]["id"], 42);

        let (s, v) = consume(AppState::https(producer.clone(), T, trust(&other))).await;
        assert_eq!((s, v["error"].as_str()), (502, Some("upstream_tls")), "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("UnknownIssuer"),
            "{v}"
        );

        // A plain-HTTP consumer gets a 502, never an answer by falling back or by accident.
        let (s, v) = consume(AppState::new(producer, T, TargetProtocol::Http)).await;
        assert_eq!(s, 502, "{v}");
    }

    #[tokio::test]
    async fn an_expired_certificate_is_a_clear_tls_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LabCa::ensure(dir.path()).unwrap();
        let expired = Issued {
            cert: dir.path().join("old.crt"),
            key: dir.path().join("old.key"),
        };
        let now = OffsetDateTime::now_utc();
        ca.issue(
            "recipe-api",
            &expired,
            now - Duration::days(30),
            now - Duration::days(1),
        )
        .unwrap();
        let producer = tls_recipe_api(&expired).await;
        let (s, v) = consume(AppState::https(producer, T, trust(&ca))).await;
        assert_eq!((s, v["error"].as_str()), (502, Some("upstream_tls")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
    }

    #[tokio::test]
    async fn https_to_a_plain_port_fails_as_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = listener.local_addr().unwrap().to_string();
        tokio::spawn(lab_net::serve::serve(
            listener,
            lab_recipe_api::router(),
            std::future::pending(),
        ));
        let dir = tempfile::tempdir().unwrap();
        let ca = LabCa::ensure(dir.path()).unwrap();
        let (s, v) = consume(AppState::https(plain, T, trust(&ca))).await;
        assert_eq!((s, v["error"].as_str()), (502, Some("upstream_tls")), "{v}");
    }

    #[test]
    fn the_ca_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LabCa::ensure(dir.path()).unwrap();
        let first = std::fs::read(ca.ca_cert()).unwrap();
        let a = ca.server_cert("recipe-api").unwrap();
        assert!(
            std::fs::read_to_string(&a.cert)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&a.key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "keys are private");
        drop(ca);
        let again = LabCa::ensure(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(again.ca_cert()).unwrap(),
            first,
            "the CA is not remade"
        );
    }
}
