//! A private certificate authority for TLS tests: a CA made in the test
//! (rcgen), server certificates it signs for `localhost` and `127.0.0.1`,
//! all as PEM files in a directory of its own (removed on drop), and a
//! rustls client configuration that trusts only this CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A CA and the files it wrote.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    /// The CA's certificate (what `--ca-cert` takes).
    pub cert: PathBuf,
    issued: usize,
}

/// A server certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name` (its files in a fresh temporary directory).
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "collab-test-ca-{}-{name}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("CA directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("collab test CA {name}"));
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let cert = dir.join("ca.pem");
        std::fs::write(&cert, issuer.pem()).expect("CA file");
        Self {
            issuer,
            dir,
            cert,
            issued: 0,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, signed by
    /// this CA.
    pub fn issue(&mut self) -> Issued {
        self.issued += 1;
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        let issued = Issued {
            cert: self.dir.join(format!("server{}.pem", self.issued)),
            key: self.dir.join(format!("server{}.key", self.issued)),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("cert file");
        std::fs::write(&issued.key, key.serialize_pem()).expect("key file");
        issued
    }

    /// A rustls client configuration trusting only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config_for(&self.cert)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A rustls client configuration trusting only the CA certificate(s) in
/// the PEM file `ca`.
pub fn client_config_for(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("CA added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
