//! Small request/response types so that handlers are plain synchronous
//! functions over the state (easy to test, never holding a lock across I/O).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    /// Percent-decoded, empty segments dropped.
    pub segments: Vec<String>,
    pub params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn new(
        method: Method,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Req {
        let query = query.unwrap_or("").to_string();
        let params = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(pct_decode)
            .collect();
        Req {
            method,
            path: path.to_string(),
            query,
            segments,
            params,
            headers,
            body,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes one path segment for the URLs the mock hands out.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) enum ReplyBody {
    Empty,
    Json(Value),
    /// A page for a person (the sign-in's user chooser).
    Html(String),
}

pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(v),
        }
    }

    pub fn html(status: u16, page: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Html(page),
        }
    }

    /// A `302 Found` to `location` (the sign-in's answers to the browser).
    pub fn redirect(location: String) -> Reply {
        Reply::empty(302).header("location", location)
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    /// ARM's error envelope.
    pub fn arm_error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }

    /// Entra ID's (token endpoint) error shape.
    pub fn entra_error(
        status: u16,
        error: &str,
        code: i32,
        description: &str,
        now: DateTime<Utc>,
    ) -> Reply {
        let trace = uuid::Uuid::new_v4().to_string();
        Reply::json(
            status,
            json!({
                "error": error,
                "error_description": description,
                "error_codes": if code == 0 { vec![] } else { vec![code] },
                "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                "trace_id": trace,
                "correlation_id": trace,
            }),
        )
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut b = Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        let body = match self.body {
            ReplyBody::Empty => Body::empty(),
            ReplyBody::Json(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json; charset=utf-8");
                Body::from(v.to_string())
            }
            ReplyBody::Html(page) => {
                b = b.header(header::CONTENT_TYPE, "text/html; charset=utf-8");
                Body::from(page)
            }
        };
        if let Some(h) = b.headers_mut() {
            for (name, value) in self.headers {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.append(name, v);
                }
            }
        }
        b.body(body).unwrap_or_else(|_| {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(pct_decode("a%20b"), "a b");
        assert_eq!(pct_decode("a%2"), "a%2");
        assert_eq!(pct_decode("%"), "%");
        assert_eq!(pct_decode("%zz"), "%zz");
        assert_eq!(pct_decode("%41%42"), "AB");
        assert_eq!(enc("West Europe"), "West%20Europe");
        assert_eq!(enc("AxDB_pitr-1.x"), "AxDB_pitr-1.x");
    }
}
