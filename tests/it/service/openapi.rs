//! The OpenAPI document is valid OpenAPI 3.1, names the routes the service
//! serves, and the live service keeps to it: schemathesis (from PyPI, in
//! the virtualenv `.ci/run` makes under target/) finds no server error and
//! no response that breaks the schema.
use super::*;
use std::path::PathBuf;

fn venv_bin(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/schemathesis-venv/bin")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: the OpenAPI tests need schemathesis and openapi-spec-validator from PyPI; \
         `.ci/run` installs them (pinned in tests/python/requirements-openapi.txt)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_service_keeps_to_its_openapi_document() {
    let svc = Service::start(Backend::Sqlite, "", &[]).await;
    let op = svc.token("operator").await;
    let (s, doc) = svc
        .call("GET", "/api/v1/openapi.json", Some(&op), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let file = svc.env.path("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    // Valid OpenAPI 3.1.
    let out = std::process::Command::new(venv_bin("python"))
        .args([
            "-c",
            "import json,sys; from openapi_spec_validator import validate; from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator; validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator); print('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every documented operation is served (nothing answers 405, and only
    // unknown ids answer 404).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "nope").replace("{name}", "uat");
            let (s, body) = svc
                .call(&method.to_uppercase(), &concrete, Some(&op), None)
                .await;
            assert_ne!(s, 405, "{method} {path}");
            if s == 404 {
                assert!(path.contains("{id}"), "{method} {path}: {body}");
            }
        }
    }

    // The live service against the document, with the id of a real
    // (cancelled: its event stream ends at once) request to reach past 404.
    let (s, r) = svc
        .call(
            "POST",
            "/api/v1/requests",
            Some(&op),
            Some(Service::new_request(false)),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let (s, _) = svc
        .call(
            "POST",
            &format!("/api/v1/requests/{id}/cancel"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let out = tokio::task::spawn_blocking({
        let (file, base, dir) = (file.clone(), svc.base.clone(), svc.env.path("st"));
        move || {
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("schemathesis.toml");
            std::fs::write(&config, format!("[parameters]\n\"path.id\" = \"{id}\"\n")).unwrap();
            std::process::Command::new(venv_bin("schemathesis"))
                .arg("--config-file")
                .arg(&config)
                .arg("run")
                .arg(&file)
                .args(["--url", &base])
                .args(["-H", &format!("Authorization: Bearer {op}")])
                .args([
                    "--checks",
                    "not_a_server_error,response_schema_conformance,content_type_conformance",
                ])
                .args(["--max-examples", "25", "--seed", "20261126"])
                .args(["--request-timeout", "20"])
                .env("HOME", &dir)
                .current_dir(&dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
}
