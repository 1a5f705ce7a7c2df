use super::*;

#[test]
fn names_that_would_change_an_arm_request_target_are_refused() {
    for bad in [
        "AxDB/../../x",
        "AxDB?x=1",
        "AxDB#x",
        "..",
        "",
        "a\nb",
        "db.",
    ] {
        assert!(database(bad).is_err(), "{bad:?}");
    }
    assert!(database("AxDB").is_ok());
    assert!(database("AxDB_pitr_0123abcd").is_ok());
    for bad in ["SQL-UAT", "-x", "x-", "a/b", ""] {
        assert!(server(bad).is_err(), "{bad:?}");
    }
    for bad in ["rg/x", "rg?", "rg.", ""] {
        assert!(resource_group(bad).is_err(), "{bad:?}");
    }
    assert!(resource_group("rg-uat_(1).x").is_ok());
    assert!(!is_uuid("not-a-uuid"));
    assert!(is_uuid("00000000-0000-0000-0000-00000000aaaa"));
    assert!(!is_location("West Europe"));
    assert!(!is_env_var_name(""));
    assert!(!is_env_var_name("1X"));
    assert!(is_env_var_name("PITR_SQL_PASSWORD"));
}

/// The web page's sign-in needs HTTPS off loopback: its cookies are
/// `Secure` there (a browser drops them over plain HTTP, and the
/// sign-in would loop) and Entra ID takes no plain-HTTP redirect URI
/// but localhost's.
#[test]
fn a_web_app_off_loopback_needs_an_https_public_url() {
    let check = |url: &str, client: bool| {
        let c: Config = toml::from_str(&format!(
            "[serve]\npublic_url = \"{url}\"\n[auth]\n{}",
            if client { "client_id = \"c\"" } else { "" }
        ))
        .unwrap();
        c.check_serve_shape()
    };
    let e = check("http://pitr.contoso.com", true).unwrap_err();
    assert!(e.contains("public_url") && e.contains("https"), "{e}");
    assert!(check("http://10.0.0.5:8080", true).is_err());
    assert!(check("HTTP://pitr.contoso.com", true).is_err());
    assert!(check("https://pitr.contoso.com", true).is_ok());
    assert!(check("http://127.0.0.1:8080", true).is_ok());
    assert!(check("http://localhost:8080", true).is_ok());
    assert!(check("http://[::1]:8080", true).is_ok());
    assert!(
        check("http://pitr.contoso.com", false).is_ok(),
        "no web app"
    );
    // No public_url: the default http://{listen} is checked the same way.
    let implicit = |listen: &str, tls: bool| {
        let c: Config = toml::from_str(&format!(
            "[serve]\nlisten = \"{listen}\"\n{}[auth]\nclient_id = \"c\"",
            if tls {
                "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
            } else {
                ""
            }
        ))
        .unwrap();
        c.check_serve_shape()
    };
    let e = implicit("0.0.0.0:8080", false).unwrap_err();
    assert!(
        e.contains("public_url is needed") && e.contains("0.0.0.0:8080"),
        "{e}"
    );
    assert!(implicit("127.0.0.1:8080", false).is_ok());
    assert!(implicit("0.0.0.0:8443", true).is_ok(), "https://{{listen}}");
}

#[test]
fn vm_ids() {
    let sub = "00000000-0000-0000-0000-00000000aaaa";
    let id = format!(
        "/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    );
    assert_eq!(parse_vm_id(&id), Some((sub, "rg", "vm1")));
    assert_eq!(parse_vm_id("vm1"), None);
    assert_eq!(parse_vm_id(&id.replace("vm1", "vm1?x")), None);
    assert_eq!(parse_vm_id(&id.replace("/rg/", "/../")), None);
    assert_eq!(parse_vm_id(&format!("{id}/extra")), None);
}
