//! An adversarial review of the sign-in and the pages: each finding is a
//! test that failed before its fix.
use super::sessions::*;
use super::*;

/// `return_to` leads only to a path of this site: browsers drop tabs and
/// newlines from a `Location` (`/\t/evil.example` is `//evil.example`, a
/// link to another site), and a control character must not break the
/// redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_never_leaves_the_site() {
    let local = Service::start_with(Backend::Sqlite, "", "mode = \"none\"", "", &[]).await;
    let entra = web_service(Backend::Sqlite).await;
    let http = client(&entra);
    let tricks = [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d%0a/evil.example",
        "/%5c/evil.example",
        "//evil.example",
        "/%20/evil.example",
        "https://evil.example/",
        "/%00",
    ];
    for trick in tricks {
        let r = http
            .get(local.url(&format!("/auth/login?return_to={trick}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, "/".to_string()),
            "mode none, return_to={trick}"
        );
    }
    // With Entra ID, the place is kept through the sign-in.
    for trick in tricks {
        let r = http
            .get(format!(
                "{}/auth/login?login_hint=rita@contoso.com&return_to={trick}",
                entra.base
            ))
            .send()
            .await
            .unwrap();
        let login = cookie_value(&set_cookie(&r, "pitr_login"));
        let auth = url::Url::parse(&location(&r)).unwrap();
        let cb = authorize(&http, &auth).await;
        let r = callback(&http, &entra.base, &cb, Some(&login)).await;
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, "/".to_string()),
            "entra, return_to={trick}"
        );
    }
    // A local path with a query still works.
    let r = http
        .get(local.url("/auth/login?return_to=%2F%3Fstatus%3Dsubmitted%26page%3D2"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/?status=submitted&page=2");
}
