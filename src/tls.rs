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

fn ca_params() -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
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
        let params = ca_params()?;
        let key_pair = if crt.exists() && key.exists() {
            let pem = std::fs::read_to_string(&key).map_err(io(&key))?;
            KeyPair::from_pem(&pem)?
        } else {
            let kp = KeyPair::generate()?;
            let cert = params.self_signed(&kp)?;
            write_private(&key, &kp.serialize_pem())?;
            std::fs::write(&crt, cert.pem()).map_err(io(&crt))?;
            kp
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
