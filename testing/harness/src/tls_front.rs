//! An HTTPS front for a plain-HTTP upstream (moto, or a proxy in front of
//! it), with a certificate for `localhost` from a CA made for the run: the
//! functions reach it with `AWS_ENDPOINT_URL=https://localhost:PORT` and
//! `AWS_CA_BUNDLE` naming [`TlsFront::ca_file`]. An optional delay before
//! each handshake stands for the network's round trips of a new connection
//! (TCP, then TLS 1.3: two), so that a connection opened during init shows
//! what it saves the first invocation.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// A running front; it serves until the process ends.
#[derive(Debug, Clone)]
pub struct TlsFront {
    pub url: String,
    pub ca_file: PathBuf,
    /// TLS handshakes completed.
    pub handshakes: Arc<AtomicU64>,
    /// Handshakes the client refused (an untrusted CA).
    pub refused: Arc<AtomicU64>,
}

fn err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl TlsFront {
    /// Starts a front for `upstream` (`http://host:port`); `tag` names the
    /// CA file; `connect_delay` is held before each new connection's
    /// handshake.
    pub async fn start(
        upstream: &str,
        tag: &str,
        connect_delay: Duration,
    ) -> std::io::Result<Self> {
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "cognito-mfa-triggers test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(err)?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = server.signed_by(&key, &issuer).map_err(err)?;

        let ca_file =
            std::env::temp_dir().join(format!("custom-ca-{tag}-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca_cert.pem())?;

        let certs: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(err)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let (handshakes, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (h, r) = (handshakes.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream, h, r) =
                    (acceptor.clone(), upstream.clone(), h.clone(), r.clone());
                tokio::spawn(async move {
                    if !connect_delay.is_zero() {
                        tokio::time::sleep(connect_delay).await;
                    }
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        r.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut up) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                });
            }
        });
        Ok(Self {
            url: format!("https://localhost:{port}"),
            ca_file,
            handshakes,
            refused,
        })
    }
}
