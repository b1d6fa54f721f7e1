//! TLS to etcd (`--etcd-ca`, `--etcd-cert`, `--etcd-key`): rustls with ring,
//! in a build with the `etcd-tls` feature. The CA is the one that signed the
//! members' certificates; no system roots are trusted for etcd.

use std::path::PathBuf;

/// The files `--etcd-ca`, `--etcd-cert` and `--etcd-key` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates of the CA(s) the members' certificates must chain to.
    pub ca: PathBuf,
    /// This gateway's client certificate (PEM), if etcd asks for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub key: Option<PathBuf>,
}

#[cfg(feature = "etcd-tls")]
pub(crate) use with_tls::{Tls, load};

#[cfg(not(feature = "etcd-tls"))]
pub(crate) use without_tls::{Tls, load};

#[cfg(feature = "etcd-tls")]
mod with_tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::TlsFiles;

    /// A client configuration for every connection to the cluster.
    #[derive(Debug, Clone)]
    pub(crate) struct Tls(pub(crate) Arc<rustls::ClientConfig>);

    fn certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
        let read = |e: rustls::pki_types::pem::Error| format!("{}: {e}", path.display());
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(read)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read)?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        Ok(certs)
    }

    /// Reads the files and builds the configuration.
    pub(crate) fn load(files: &TlsFiles) -> Result<Tls, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&files.ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", files.ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                // The key is a secret: only its owner may read the file.
                let pem = crate::secret_file::read_private(key, "the etcd client key")
                    .map_err(|e| crate::error_chain(&e))?;
                let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certificates(cert)?, key)
                    .map_err(|e| format!("--etcd-cert and --etcd-key: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("--etcd-cert and --etcd-key go together".into()),
        };
        Ok(Tls(Arc::new(config)))
    }
}

#[cfg(not(feature = "etcd-tls"))]
mod without_tls {
    use super::TlsFiles;

    /// No TLS in this build: never made.
    #[derive(Debug, Clone)]
    pub(crate) enum Tls {}

    pub(crate) fn load(_: &TlsFiles) -> Result<Tls, String> {
        Err("this status_server was built without TLS to etcd; \
             build it with `cargo build --release --features etcd-tls`"
            .into())
    }
}
