//! A throwaway CA and a loopback server certificate, made fresh at every start
//! (nothing to leak, nothing to expire between runs). Clients trust the CA PEM
//! the mock writes out; the Azure SDK's bearer policy refuses plain http, so
//! HTTPS is not optional.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::MockError;

pub(crate) struct TlsMaterial {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> MockError {
    MockError::Tls(format!("{what}: {e}"))
}

/// `extra_ip`: the listen address when it is neither loopback nor
/// unspecified, so that a mock bound to a specific interface is reachable by
/// that address too.
pub(crate) fn generate(extra_ip: Option<IpAddr>) -> Result<TlsMaterial, MockError> {
    let ca_key = KeyPair::generate().map_err(|e| tls_err("generating the CA key", e))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("CA parameters", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pitr mock Azure CA");
    dn.push(DnType::OrganizationName, "pitr dry run");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|e| tls_err("signing the CA certificate", e))?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(ip) = extra_ip {
        names.push(ip.to_string());
    }
    let leaf_key = KeyPair::generate().map_err(|e| tls_err("generating the server key", e))?;
    let mut leaf_params =
        CertificateParams::new(names).map_err(|e| tls_err("server certificate parameters", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = dn;
    leaf_params.is_ca = IsCa::NoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .map_err(|e| tls_err("signing the server certificate", e))?;

    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // Explicit provider: the process may have none installed, or another one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_err("installing the server certificate", e))?;
    // Only HTTP/1.1 is served; say so, so that h2-capable clients don't try.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca.pem(),
        config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_a_ca() {
        let m = super::generate(None).unwrap();
        assert!(m.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(m.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
