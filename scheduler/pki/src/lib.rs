//! A cluster's own certificate authority (`shoal ca init`, `shoal ca
//! issue`): ECDSA P-256 keys, PEM files, private keys readable by their
//! owner only. The scheduler's worker listener and every worker trust
//! exactly this CA (mutual TLS), and a worker's certificate names it (CN).
//!
//! Layout of a CA directory:
//!
//! - `ca.pem`, `ca.key`: the CA;
//! - `NAME.pem`, `NAME.key`: a certificate issued to NAME (a worker's node
//!   name, or `scheduler` for the scheduler's worker listener).

mod listener;
pub use listener::{TlsListener, TlsPeer, HANDSHAKE_TIMEOUT};

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The CA's certificate file in a CA directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key file in a CA directory.
pub const CA_KEY: &str = "ca.key";
/// The name the scheduler's certificate is issued to, and the DNS name in
/// it that workers may use (with a static resolution) instead of an IP.
pub const SCHEDULER_NAME: &str = "scheduler";
/// A DNS name every scheduler certificate carries.
pub const SCHEDULER_DNS: &str = "shoal-scheduler";

/// Errors of the CA commands.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory already holds a CA (or the certificate exists).
    #[error("{0} already exists; give --force to replace it (certificates it issued stop being trusted)")]
    Exists(PathBuf),
    /// No CA where one was expected.
    #[error("no CA in {0}: create one with `shoal ca init {0}`")]
    NoCa(PathBuf),
    /// A bad name, address or file.
    #[error("{0}")]
    Invalid(String),
    /// Generating or signing failed.
    #[error("cannot make the certificate: {0}")]
    Crypto(#[from] rcgen::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError::Io { what, source }
}

/// Write `contents` to `path`, replacing it; private files get mode 0600
/// from the start (never world-readable, not even briefly).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io(format!("cannot create {}", tmp.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot write {}", path.display())))
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))
}

/// The current year (UTC), for validity periods.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

fn validity(p: &mut rcgen::CertificateParams, years: i32) {
    let y = this_year();
    p.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    p.not_after = rcgen::date_time_ymd(y + years, 1, 1);
}

/// `shoal ca init DIR`: a new CA in `dir` (created if missing). Refuses to
/// replace an existing CA unless `force`.
pub fn init_ca(dir: &Path, force: bool) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    for f in [CA_CERT, CA_KEY] {
        let p = dir.join(f);
        if p.exists() && !force {
            return Err(PkiError::Exists(p));
        }
    }
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    let id = random_bytes(4)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("Shoal cluster CA {}", hex::encode(&id)),
    );
    dn.push(rcgen::DnType::OrganizationName, "Shoal");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, 20);
    let cert = params.self_signed(&key)?;
    write_file(&dir.join(CA_KEY), &key.serialize_pem(), true)?;
    write_file(&dir.join(CA_CERT), &cert.pem(), false)
}

/// Whether `dir` holds a CA (both files).
pub fn has_ca(dir: &Path) -> bool {
    dir.join(CA_CERT).is_file() && dir.join(CA_KEY).is_file()
}

/// A name certificates may be issued to: it becomes a file name and the
/// certificate's CN.
pub fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "ca";
    if ok {
        Ok(())
    } else {
        Err(PkiError::Invalid(format!(
            "{name:?}: give a name of 1 to 64 letters, digits, '-', '_' or '.', not starting with '.' and not \"ca\""
        )))
    }
}

/// `shoal ca issue DIR NAME`: a certificate for NAME (CN=NAME; SANs: NAME
/// when it is a valid DNS name, plus `dns` and `ips`), usable both as a
/// TLS server and a TLS client certificate, signed by the CA in `dir`.
/// Writes `DIR/NAME.pem` and `DIR/NAME.key` (0600); refuses to replace
/// them unless `force`.
pub fn issue(
    dir: &Path,
    name: &str,
    ips: &[IpAddr],
    dns: &[String],
    force: bool,
) -> Result<(PathBuf, PathBuf), PkiError> {
    check_name(name)?;
    if !has_ca(dir) {
        return Err(PkiError::NoCa(dir.to_path_buf()));
    }
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    for p in [&cert_path, &key_path] {
        if p.exists() && !force {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let mut sans = Vec::new();
    if let Ok(n) = rcgen::Ia5String::try_from(name.to_string()) {
        if name.chars().any(|c| c.is_ascii_alphabetic()) && !name.contains('_') {
            sans.push(rcgen::SanType::DnsName(n));
        }
    }
    for d in dns {
        let n = rcgen::Ia5String::try_from(d.clone())
            .map_err(|_| PkiError::Invalid(format!("--dns {d:?} is not a DNS name")))?;
        sans.push(rcgen::SanType::DnsName(n));
    }
    sans.extend(ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
    let (cert, key) = sign(dir, name, sans)?;
    write_file(&key_path, &key, true)?;
    write_file(&cert_path, &cert, false)?;
    Ok((cert_path, key_path))
}

/// The suffix of an allocation certificate's CN: the CN `PREFIX*` lets
/// its holders register under names that begin with PREFIX.
pub const ALLOCATION_WILDCARD: char = '*';

/// A certificate for the workers of one allocation (a MANAGED
/// environment's Slurm job), signed by the CA in `ca_dir`: CN `PREFIX*`
/// (its workers register as `PREFIX` + their node's name), valid for its
/// nodes' addresses `ips` and names `dns`. Writes `out/ca.pem`,
/// `out/worker.pem` and `out/worker.key` (0600); the certificate last.
pub fn issue_allocation(
    ca_dir: &Path,
    out: &Path,
    prefix: &str,
    ips: &[IpAddr],
    dns: &[String],
) -> Result<(), PkiError> {
    if !has_ca(ca_dir) {
        return Err(PkiError::NoCa(ca_dir.to_path_buf()));
    }
    let mut sans: Vec<rcgen::SanType> = ips
        .iter()
        .map(|ip| rcgen::SanType::IpAddress(*ip))
        .collect();
    for d in dns {
        if let Ok(n) = rcgen::Ia5String::try_from(d.clone()) {
            sans.push(rcgen::SanType::DnsName(n));
        }
    }
    let (cert, key) = sign(ca_dir, &format!("{prefix}{ALLOCATION_WILDCARD}"), sans)?;
    write_file(&out.join("worker.key"), &key, true)?;
    write_file(&out.join(CA_CERT), &read(&ca_dir.join(CA_CERT))?, false)?;
    write_file(&out.join("worker.pem"), &cert, false)
}

/// A certificate (PEM) and its new key (PEM) for CN `cn` with `sans`,
/// usable both as a TLS server and a TLS client certificate, signed by the
/// CA in `dir`.
fn sign(dir: &Path, cn: &str, sans: Vec<rcgen::SanType>) -> Result<(String, String), PkiError> {
    let ca_key = rcgen::KeyPair::from_pem(&read(&dir.join(CA_KEY))?).map_err(|e| {
        PkiError::Invalid(format!(
            "{} is not a private key: {e}",
            dir.join(CA_KEY).display()
        ))
    })?;
    let ca_params = rcgen::CertificateParams::from_ca_cert_pem(&read(&dir.join(CA_CERT))?)
        .map_err(|e| {
            PkiError::Invalid(format!(
                "{} is not a certificate: {e}",
                dir.join(CA_CERT).display()
            ))
        })?;
    let ca = ca_params.self_signed(&ca_key)?;

    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cn);
    dn.push(rcgen::DnType::OrganizationName, "Shoal");
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, 5);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Files a TLS peer uses: the CA it trusts and its own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA's certificate.
    pub ca: PathBuf,
    /// This peer's certificate.
    pub cert: PathBuf,
    /// This peer's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of `name` in the CA directory `dir`.
    pub fn in_dir(dir: &Path, name: &str) -> TlsFiles {
        TlsFiles {
            ca: dir.join(CA_CERT),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// `n` bytes from the system's secure random source (keys, secrets).
pub fn random_bytes(n: usize) -> Result<Vec<u8>, PkiError> {
    let mut buf = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| PkiError::Invalid("the system's random source failed".into()))?;
    Ok(buf)
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    let v = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            PkiError::Invalid(format!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
    if v.is_empty() {
        return Err(PkiError::Invalid(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(v)
}

/// A trust store holding exactly the CA certificate(s) of a PEM file.
pub fn root_store(ca: &Path) -> Result<rustls::RootCertStore, PkiError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| PkiError::Invalid(format!("{} is not a usable CA: {e}", ca.display())))?;
    }
    Ok(roots)
}

/// The crypto provider of every TLS configuration here (ring).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTP/1.1 TLS server configuration with the certificate chain `cert`
/// and its key `key`, verifying client certificates with `clients` (None:
/// no client certificates), on `provider`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    clients: Option<std::sync::Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
) -> Result<std::sync::Arc<rustls::ServerConfig>, PkiError> {
    let chain = load_certs(cert)?;
    let private = load_key(key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Invalid(e.to_string()))?;
    let builder = match clients {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        PkiError::Invalid(format!(
            "{} and {} do not make a usable certificate: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// The private key of a PEM file.
pub fn load_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).map_err(|e| {
        PkiError::Invalid(format!(
            "cannot read the private key {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_refuses_to_replace_a_ca_and_issue_writes_private_keys() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("ca");
        assert!(matches!(
            issue(&dir, "n1", &[], &[], false),
            Err(PkiError::NoCa(_))
        ));
        init_ca(&dir, false).unwrap();
        let before = std::fs::read_to_string(dir.join(CA_CERT)).unwrap();
        let e = init_ca(&dir, false).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(before, std::fs::read_to_string(dir.join(CA_CERT)).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        let (cert, key) = issue(
            &dir,
            "node1",
            &["10.0.0.1".parse().unwrap()],
            &["a.example".into()],
            false,
        )
        .unwrap();
        assert_eq!(mode(&key), 0o600);
        assert!(std::fs::read_to_string(&cert)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(matches!(
            issue(&dir, "node1", &[], &[], false),
            Err(PkiError::Exists(_))
        ));
        issue(&dir, "node1", &[], &[], true).unwrap();
        init_ca(&dir, true).unwrap();
        assert_ne!(before, std::fs::read_to_string(dir.join(CA_CERT)).unwrap());
        for bad in ["", "../x", ".hidden", "ca", "a/b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
