//! TLS to PostgreSQL with rustls on the crypto provider the rest of pitr
//! uses (aws-lc-rs), following libpq's `sslmode`:
//!
//! | sslmode | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | - |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | yes | no; with `sslrootcert`, the chain (as libpq does) |
//! | `verify-ca` | yes | the chain, against `sslrootcert` or the system's CAs |
//! | `verify-full` | yes | the chain and the host name |
//!
//! Managed PostgreSQL (Azure Database for PostgreSQL) wants `verify-full`,
//! with the CA's PEM file in `sslrootcert` or from the system trust store.
use super::options::{ConnectOptions, RootCert, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `options` (also for `disable`, where it is never used).
/// Errors are the cause of a `StoreError::Open`.
pub(super) fn connector(options: &ConnectOptions) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier(options, provider)?)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// What checks the server's certificate, per the table above.
fn verifier(
    options: &ConnectOptions,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let check = match (options.sslmode, &options.sslrootcert) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Check::Nothing,
        (SslMode::Require | SslMode::VerifyCa, _) => Check::Chain,
        (SslMode::VerifyFull, _) => Check::ChainAndName,
    };
    if check == Check::Nothing {
        return Ok(Arc::new(Unchecked(provider)));
    }
    let roots = roots(options.sslrootcert.as_ref().unwrap_or(&RootCert::System))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("setting up TLS: {e}"))?;
    Ok(if check == Check::Chain {
        Arc::new(ChainOnly(webpki))
    } else {
        webpki
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

fn roots(source: &RootCert) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match source {
        RootCert::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read sslrootcert {shown}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {shown} is not a PEM file: {e}"))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {shown} holds no certificate; give the PEM file of the CA \
                     that signed the server's certificate"
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {shown}: a certificate is unusable: {e}"))?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no CA certificate found in the system trust store; install the \
                     ca-certificates package or give sslrootcert=/path/ca.pem"
                        .into(),
                );
            }
        }
    }
    Ok(roots)
}

/// `prefer` and `require` without a CA: encrypted, the server's identity is
/// not checked (libpq's meaning). The handshake signatures still are, so
/// the session is bound to the certificate the server sent.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    /// A CA, and a server certificate it signed for `db.example.com`.
    fn ca_and_server() -> (String, CertificateDer<'static>) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = CertificateParams::new(vec!["db.example.com".to_string()])
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), &ca)
            .unwrap();
        (ca.pem(), leaf.der().clone())
    }

    fn check(url: &str, leaf: &CertificateDer<'_>, name: &str) -> Result<(), String> {
        let options = ConnectOptions::parse(url, None).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        verifier(&options, provider)?
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_sslmode_checks_what_libpq_checks() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, leaf) = ca_and_server();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let (_, stranger) = ca_and_server();
        let url = |mode: &str| {
            format!(
                "postgres://u@db.example.com/db?sslmode={mode}&sslrootcert={}",
                ca.display()
            )
        };
        // verify-full: the chain and the name.
        assert_eq!(check(&url("verify-full"), &leaf, "db.example.com"), Ok(()));
        let wrong_name = check(&url("verify-full"), &leaf, "other.example.com").unwrap_err();
        assert!(wrong_name.contains("not valid for name"), "{wrong_name}");
        let wrong_ca = check(&url("verify-full"), &stranger, "db.example.com").unwrap_err();
        assert!(wrong_ca.contains("invalid peer certificate"), "{wrong_ca}");
        // verify-ca, and require with a CA file (as libpq): the chain only.
        for mode in ["verify-ca", "require"] {
            assert_eq!(
                check(&url(mode), &leaf, "other.example.com"),
                Ok(()),
                "{mode}"
            );
            assert!(
                check(&url(mode), &stranger, "db.example.com").is_err(),
                "{mode}"
            );
        }
        // prefer, and require without a CA file: encrypted, not checked.
        assert_eq!(check(&url("prefer"), &stranger, "x.example.com"), Ok(()));
        let require = "postgres://u@db.example.com/db?sslmode=require";
        assert_eq!(check(require, &stranger, "x.example.com"), Ok(()));
    }

    #[test]
    fn an_unusable_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for (file, expected) in [
            (dir.path().join("missing.pem"), "cannot read sslrootcert"),
            (empty, "holds no certificate"),
        ] {
            let url = format!(
                "postgres://u@h/db?sslmode=verify-full&sslrootcert={}",
                file.display()
            );
            let options = ConnectOptions::parse(&url, None).unwrap();
            let err = connector(&options).map(|_| ()).unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains(&file.display().to_string()), "{err}");
        }
    }
}
