//! What stands between pitr's `ArmClient` and the Azure SDK test server,
//! which speaks plain HTTP and keeps each scenario's progress in a cookie:
//! - HTTPS on loopback with a CA made here (azure_core's bearer policy
//!   refuses plain http, as it should);
//! - Entra ID's token endpoint (any client secret is accepted);
//! - one cookie jar (pitr's HTTP client keeps none, rightly: ARM uses none);
//! - absolute `http://` poll URLs turned into this front's `https://` ones;
//!   relative or garbage URLs are passed through untouched (they are the
//!   test);
//! - a log of what reached the server, to count requests.
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A request the test server answered.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub status: u16,
}

struct Shared {
    /// `http://127.0.0.1:<server port>`.
    backend: String,
    /// `https://127.0.0.1:<front port>`.
    public: String,
    jar: Mutex<BTreeMap<String, String>>,
    hits: Mutex<Vec<Hit>>,
    http: reqwest::Client,
}

pub struct Front {
    pub url: String,
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Front {
    pub async fn start(server_port: u16) -> Front {
        let (ca_pem, config) = tls();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the front");
        let port = listener.local_addr().expect("front address").port();
        let public = format!("https://127.0.0.1:{port}");
        let shared = Arc::new(Shared {
            backend: format!("http://127.0.0.1:{server_port}"),
            public: public.clone(),
            jar: Mutex::new(BTreeMap::new()),
            hits: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy client"),
        });
        let acceptor = TlsAcceptor::from(config);
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, shared) = (acceptor.clone(), serving.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Front {
            url: public,
            ca_pem,
            shared,
            task,
        }
    }

    /// Forgets the cookies and the log: the next scenario starts afresh.
    pub fn reset(&self) {
        lock(&self.shared.jar).clear();
        lock(&self.shared.hits).clear();
    }

    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.shared.hits).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), 1 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    if path.ends_with("/oauth2/v2.0/token") {
        return Ok(json(
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"lro-test-token"}"#.into(),
        ));
    }
    if path.ends_with("/.well-known/openid-configuration") {
        let tenant = path.split('/').nth(1).unwrap_or("common");
        return Ok(json(format!(
            r#"{{"token_endpoint":"{p}/{tenant}/oauth2/v2.0/token","issuer":"{p}/{tenant}/v2.0","authorization_endpoint":"{p}/{tenant}/oauth2/v2.0/authorize"}}"#,
            p = shared.public
        )));
    }
    let target = format!(
        "{}{}",
        shared.backend,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut forward = shared.http.request(method, &target).body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "cookie"
        ) {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    let cookies = lock(&shared.jar)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    if !cookies.is_empty() {
        forward = forward.header("cookie", cookies);
    }
    let answer = match forward.send().await {
        Ok(a) => a,
        Err(e) => {
            let mut r = Response::new(Body::from(format!("front: {e}")));
            *r.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
            return Ok(r);
        }
    };
    let status = answer.status().as_u16();
    let mut out = Response::builder().status(status);
    for (name, value) in answer.headers() {
        let text = value.to_str().unwrap_or("");
        match name.as_str() {
            "set-cookie" => keep_cookie(&shared, text),
            "content-length" | "transfer-encoding" | "connection" => {}
            "azure-asyncoperation" | "location" => {
                let moved = match text.strip_prefix(&shared.backend) {
                    Some(rest) => format!("{}{rest}", shared.public),
                    None => text.to_string(),
                };
                out = out.header(name.as_str(), moved);
            }
            _ => out = out.header(name.as_str(), value.as_bytes()),
        }
    }
    lock(&shared.hits).push(Hit {
        method: parts.method.to_string(),
        path,
        status,
    });
    let body = answer.bytes().await.unwrap_or_default();
    Ok(out
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// `name=value; Max-Age=..` sets a cookie; an empty value or an expiry in
/// the past (how Express clears one) removes it.
fn keep_cookie(shared: &Shared, header: &str) {
    let mut parts = header.split(';').map(str::trim);
    let Some((name, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
        return;
    };
    let expired = parts.any(|a| a.eq_ignore_ascii_case("Max-Age=0") || a.contains("1970"));
    let mut jar = lock(&shared.jar);
    if value.is_empty() || expired {
        jar.remove(name);
    } else {
        jar.insert(name.to_string(), value.to_string());
    }
}

fn json(text: String) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A CA and a certificate for 127.0.0.1, made for this run.
fn tls() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pitr LRO test front CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    leaf.is_ca = IsCa::NoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&leaf_key, &ca).expect("server certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .expect("TLS config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca.pem(), Arc::new(config))
}
