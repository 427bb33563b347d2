//! The serving certificate, reloaded when cert-manager (or anyone) replaces the files.
//!
//! Every TLS handshake asks [`ReloadingCert`] for the current certificate, so a swap takes effect
//! for the next connection while open connections keep the one they negotiated: nothing is
//! dropped and nothing restarts. A new pair that does not load (a half-written file, a key that
//! does not match) is logged and the previous one stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use notify::{RecursiveMode, Watcher};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file cannot be read or holds no PEM of the right kind.
    #[error("{path}: {what}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no CERTIFICATE block")]
    NoCertificate(PathBuf),
    /// The key is of a type rustls cannot sign with.
    #[error("{path}: unusable private key: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error("{key} does not match the certificate in {cert}: {source}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The files cannot be watched.
    #[error("cannot watch {path} for certificate rotation: {source}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

/// Reads a certificate chain and its key.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|source| CertError::Pem {
            path: cert.to_owned(),
            what: "cannot read the certificate chain",
            source,
        })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate(cert.to_owned()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| CertError::Pem {
        path: key.to_owned(),
        what: "cannot read the private key",
        source,
    })?;
    let signing = any_supported_type(&private).map_err(|source| CertError::Key {
        path: key.to_owned(),
        source,
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|source| CertError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    Ok(certified)
}

/// The current certificate, swapped when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    reloads: AtomicU64,
    failures: AtomicU64,
}

impl ReloadingCert {
    /// Loads the pair; fails when it cannot be used (the webhook must not start without one).
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Result<Arc<Self>, CertError> {
        let certified = load(&cert_file, &key_file)?;
        Ok(Arc::new(Self {
            cert_file,
            key_file,
            current: RwLock::new(Arc::new(certified)),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }))
    }

    /// Reads the files again; swaps the certificate if they hold a new, usable pair.
    pub fn reload(&self) {
        match load(&self.cert_file, &self.key_file) {
            Ok(certified) => {
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                if current.cert == certified.cert {
                    return;
                }
                *current = Arc::new(certified);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.cert_file.display(), "loaded the new serving certificate");
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("certificate files changed but cannot be used yet, keeping the current certificate: {error}");
            }
        }
    }

    /// How many new certificates were loaded, and how many reloads failed.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Watches the directories of both files (a Secret volume swaps a `..data` symlink, so the
    /// files themselves are never written) and reloads on every change. The watcher stops when
    /// the returned value is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<notify::RecommendedWatcher, CertError> {
        let this = Arc::clone(self);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if event.kind.is_access() => {}
                Ok(_) => this.reload(),
                Err(error) => tracing::warn!("certificate watch: {error}"),
            })
            .map_err(|source| CertError::Watch {
                path: self.cert_file.clone(),
                source,
            })?;
        let mut dirs: Vec<PathBuf> = [&self.cert_file, &self.key_file]
            .iter()
            .map(|file| match file.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.dedup();
        for dir in dirs {
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|source| CertError::Watch { path: dir, source })?;
        }
        Ok(watcher)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// A rustls server configuration that serves the reloading certificate over HTTP/1.1.
pub fn server_config(cert: Arc<ReloadingCert>) -> rustls::ServerConfig {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_no_client_auth()
    .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}
