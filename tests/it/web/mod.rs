//! The work-items page in a real browser: Debian's Chromium, headless,
//! driven through chromedriver (WebDriver) on an ephemeral port, against
//! the real `pitr serve` and the real `pitr mock-azure`, which stands in
//! for Entra ID's sign-in (its authorize endpoint signs in the scenario
//! user named by `login_hint`). Screenshots go to `target/screenshots/`.
mod load;
mod review;
mod sessions;
mod stories;

use crate::service::{Backend, Service};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_ID: &str = "pitr-web-test";
pub const SECRET_ENV: &str = "PITR_TEST_WEB_SECRET";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// `pitr serve` with the web page's app registered.
pub async fn web_service(backend: Backend) -> Service {
    web_service_at(backend, "").await
}

/// As [`web_service`], with `[serve]` keys (a `public_url`).
pub async fn web_service_at(backend: Backend, serve: &str) -> Service {
    Service::start_with(
        backend,
        serve,
        &format!("client_id = \"{CLIENT_ID}\"\nclient_secret_env = \"{SECRET_ENV}\""),
        "",
        &[(SECRET_ENV, "web-secret-test-only")],
    )
    .await
}

/// chromedriver on an ephemeral port, and one headless Chromium session
/// with a fresh profile; both end when this is dropped.
pub struct Browser {
    pub c: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: `apt-get install chromium chromium-driver` (.ci/run does it)"
            );
        }
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let out = driver.stdout.take().expect("chromedriver's output");
        let mut lines = BufReader::new(out).lines();
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.expect("chromedriver's output");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                port = rest.trim_end_matches('.').trim().parse::<u16>().ok();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let port = port.expect("chromedriver printed its port");
        let profile = tempfile::tempdir().expect("a profile directory");
        let caps = json!({
            "browserName": "chrome",
            // The mock Azure's certificate is made by the test's own CA.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,900",
                ],
            },
        });
        let caps: serde_json::Map<String, Value> =
            serde_json::from_value(caps).expect("capabilities");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last = None;
        // chromedriver listens as soon as it printed its port; Chromium may
        // take a moment to start: a bounded number of attempts.
        for _ in 0..5 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    return Browser {
                        c,
                        driver,
                        _profile: profile,
                    }
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
        panic!("no Chromium session: {last:?}");
    }

    /// Signs in as the scenario user `who` (their `preferred_username`),
    /// landing on `return_to`.
    pub async fn sign_in(&self, svc: &Service, who: &str, return_to: &str) {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("login_hint", who)
            .append_pair("return_to", return_to)
            .finish();
        self.c
            .goto(&svc.url(&format!("/auth/login?{q}")))
            .await
            .expect("sign in");
        let url = self.c.current_url().await.expect("url");
        assert!(
            url.as_str().starts_with(&svc.base) && url.path() == return_to,
            "signed in, {who} should be at {return_to}, is at {url}: {}",
            self.text("body").await
        );
    }

    pub async fn sign_out(&self) {
        self.c
            .find(Locator::Css("header form[action='/auth/logout'] button"))
            .await
            .expect("the sign-out button")
            .click()
            .await
            .expect("sign out");
        self.wait_for("h1", |t| t == "Signed out").await;
    }

    pub async fn text(&self, css: &str) -> String {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.c
            .find(Locator::Css(css))
            .await
            .ok()?
            .attr(name)
            .await
            .ok()
            .flatten()
    }

    pub async fn value(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .expect(css)
            .prop("value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.c.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    pub async fn is_checked(&self, css: &str) -> bool {
        self.c
            .find(Locator::Css(css))
            .await
            .expect(css)
            .prop("checked")
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some("true")
    }

    /// Waits (bounded: 90 s, for a loaded machine) until the text of `css`
    /// satisfies `ok`; the page is not reloaded meanwhile.
    pub async fn wait_for(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{css} never became what was expected; it says {t:?}; page: {}",
                    self.text("body").await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A screenshot of the page at `width` (desktop 1920 or 360 px), as
    /// tall as the page, under `target/screenshots/NAME-WIDTH.png`.
    pub async fn screenshot(&self, name: &str, width: u32) -> std::path::PathBuf {
        self.c
            .set_window_size(width, 900)
            .await
            .expect("window size");
        // The window is the page's height plus the browser's own frame.
        let height = self
            .c
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight + window.outerHeight - window.innerHeight)",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(900)
            .clamp(600, 5000) as u32;
        self.c
            .set_window_size(width, height)
            .await
            .expect("window size");
        let png = self.c.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}-{width}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        self.c
            .set_window_size(1280, 900)
            .await
            .expect("window size");
        path
    }

    /// The value of cookie `name` (HttpOnly ones too: WebDriver sees them).
    pub async fn cookie(&self, name: &str) -> String {
        self.c
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("cookie {name}: {e}"))
            .value()
            .to_string()
    }
}

/// A POST of a form as a browser would send it, without following a
/// redirect: (status, body).
pub async fn post_form(
    svc: &Service,
    path: &str,
    session: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut rb = http
        .post(svc.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = session {
        rb = rb.header("cookie", format!("pitr_session={s}"));
    }
    let r = rb.send().await.expect("the service answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A GET without following redirects: (status, Location, body).
pub async fn get_page(svc: &Service, path: &str, session: Option<&str>) -> (u16, String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut rb = http.get(svc.url(path));
    if let Some(s) = session {
        rb = rb.header("cookie", format!("pitr_session={s}"));
    }
    let r = rb.send().await.expect("the service answers");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), loc, r.text().await.unwrap_or_default())
}

/// `YYYY-MM-DD HH:MM`, as people type into the form.
pub fn typed(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}
