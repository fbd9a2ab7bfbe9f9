//! TLS for `https://` and `wss://` servers: one rustls configuration (ring,
//! no OpenSSL) shared by REST (reqwest) and the WebSocket
//! (tokio-tungstenite), so both trust the same roots:
//!
//! - `--ca-cert FILE` / `COLLAB_CA_CERT`: only the CA certificates in that
//!   PEM file (a private CA, a self-signed server);
//! - otherwise the system's roots, or the bundled Mozilla roots
//!   (webpki-roots) on a system that has none.
//!
//! There is no way to skip verification: a certificate that does not
//! verify is a clear one-line error ([`certificate_problem`]), never a
//! silent fallback.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS set-up could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The `--ca-cert` file cannot be read or holds no certificate.
    #[error("cannot use the CA certificate {path}: {why}")]
    CaCert { path: PathBuf, why: String },
}

/// The client configuration: roots as the module docs say, HTTP/1.1 (a
/// WebSocket upgrade is HTTP/1.1).
pub fn client_config(ca_cert: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            let bad = |why: String| TlsError::CaCert {
                path: path.to_owned(),
                why,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no CERTIFICATE in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            let (added, _) =
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// When `e` (or what caused it) is a certificate that did not verify, what
/// to tell the user, in one line. (The HTTP and WebSocket stacks wrap the
/// rustls error differently, in `io::Error`s and boxed errors: it is found
/// by type where it can be, else by rustls' own wording.)
pub fn certificate_problem(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn StdError + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(why)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(describe(&format!("{why:?}")));
            }
            let text = candidate.to_string();
            if let Some(why) = text.strip_prefix("invalid peer certificate: ") {
                return Some(describe(why));
            }
        }
        cur = err.source();
    }
    None
}

fn describe(why: &str) -> String {
    format!(
        "the server's TLS certificate does not verify ({why}); if it is signed by a private CA, pass that CA with --ca-cert FILE (or COLLAB_CA_CERT)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_found_inside_io_errors() {
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        let told = certificate_problem(&io).expect("found");
        assert!(
            told.contains("UnknownIssuer") && told.contains("--ca-cert"),
            "{told}"
        );
        let other = std::io::Error::other("connection refused");
        assert!(certificate_problem(&other).is_none());
    }
}
