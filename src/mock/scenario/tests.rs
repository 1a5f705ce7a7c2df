use super::*;

#[test]
fn parses_full_scenario() {
    let s = Scenario::from_toml_str(
        r#"
        [settings]
        restore_polls = 3
        restore_headers = "location_only"

        [[servers]]
        subscription_id = "sub"
        resource_group = "rg"
        name = "srv"
        location = "westeurope"

        [[servers.databases]]
        name = "AxDB"
        earliest_restore = "-30d"
        sku = { name = "GP_Gen5", capacity = 8 }
        history = [
          { at = "-20d", content = "a" },
          { at = 2026-01-01T00:00:00Z, content = "b" },
        ]

        [[vms]]
        subscription_id = "sub"
        resource_group = "rg"
        name = "vm1"
        location = "westeurope"
        services = ["W3SVC"]

        [[faults]]
        path_contains = "/databases/"
        status = 429
        retry_after = 1

        [[faults]]
        operation = "restore"
        outcome = "fail"
        error_code = "InternalServerError"
        "#,
    )
    .unwrap();
    assert_eq!(s.settings.restore_polls, 3);
    assert_eq!(s.settings.delete_polls, 1);
    assert_eq!(s.settings.restore_headers, RestoreHeaders::LocationOnly);
    let db = &s.servers[0].databases[0];
    assert_eq!(db.history.len(), 2);
    assert_eq!(
        db.history[1].at,
        TimeSpec::At("2026-01-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(db.sku.as_ref().unwrap().capacity, Some(8));
    assert_eq!(s.vms[0].services, vec!["W3SVC"]);
    assert_eq!(s.faults.len(), 2);
    assert!(s.faults[1].is_operation_fault());
}

#[test]
fn scenario_errors_say_what_to_do() {
    let e = Scenario::from_toml_str("[settings]\nrestore_pols = 1\n").unwrap_err();
    assert!(e.to_string().contains("restore_pols"), "{e}");

    let e = Scenario::from_toml_str(
        "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
         [[servers]]\nsubscription_id='s'\nresource_group='r'\nname='A'\nlocation='l'\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");

    let e = Scenario::from_toml_str("[[faults]]\noperation='restore'\n").unwrap_err();
    assert!(e.to_string().contains("outcome"), "{e}");

    let e = Scenario::from_toml_str("[[faults]]\npath_contains='x'\n").unwrap_err();
    assert!(e.to_string().contains("needs `status`"), "{e}");

    let e = Scenario::from_toml_str(
        "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
         [[servers.databases]]\nname='x'\nhistory=[{at='-2q', content='c'}]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown unit"), "{e}");

    let e = Scenario::from_file(Path::new("/nonexistent/scenario.toml")).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("cannot read scenario file /nonexistent/scenario.toml"));
}

#[test]
fn example_scenario_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mock-scenario.toml");
    let s = Scenario::from_file(&path).unwrap();
    assert_eq!(s.servers[0].name, "sql-contoso-uat");
    assert_eq!(s.vms.len(), 3);
    assert!(s.vms[0].aos.is_some(), "the AOS has its configuration");
    assert!(s.vms[2].aos.is_none(), "the BI VM is no AOS");
    assert_eq!(s.servers[0].databases[0].retention_days, Some(35));
}

/// The example scenario file (from which the scale benchmark's mock takes
/// its buckets) and the mock's own defaults write ARM's documented token
/// buckets: reads 250 at 25/s, writes and deletes 200 at 10/s
/// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
/// "Regional throttling and token bucket algorithm"), independently of the
/// client's defaults.
#[test]
fn the_throttle_is_arms_documented_buckets() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mock-scenario.toml");
    let file = Scenario::from_file(&path).unwrap().settings.throttle;
    for t in [*file, crate::mock::throttle::ThrottleSpec::default()] {
        let b = |b: crate::mock::throttle::BucketSpec| (b.capacity, b.per_second);
        assert_eq!(b(t.reads), (250, 25.0));
        assert_eq!(b(t.writes), (200, 10.0));
        assert_eq!(b(t.deletes), (200, 10.0));
    }
}

#[test]
fn new_fields_and_their_checks() {
    let base = "[[servers]]\nsubscription_id='s'\nresource_group='r'\nname='a'\nlocation='l'\n\
                [[servers.databases]]\nname='x'\n";
    let s = Scenario::from_toml_str(&format!(
        "[settings]\nscript_seconds = {{ sync = 14400, stop_services = 30 }}\n{base}\
         retention_days = 14\ntags = {{ env = 'uat' }}\nzone_redundant = true\nbackup_storage_redundancy = 'geozone'\n\
         [[vms]]\nsubscription_id='s'\nresource_group='r'\nname='v'\nlocation='l'\n\
         aos = {{ server = 'a.database.windows.net', database = 'x', sql_user = 'u', sql_password = 'p' }}\n"
    ))
    .unwrap();
    assert_eq!(s.settings.script_seconds.sync, 14400);
    assert_eq!(s.settings.script_seconds.stop_services, 30);
    assert_eq!(s.settings.script_seconds.other, 0);
    let db = &s.servers[0].databases[0];
    assert_eq!(db.retention_days, Some(14));
    assert_eq!(db.tags.get("env").map(String::as_str), Some("uat"));
    assert!(db.zone_redundant);
    assert_eq!(backup_redundancy("geozone"), Some("GeoZone"));
    assert_eq!(s.vms[0].aos.as_ref().unwrap().sql_user, "u");

    for (bad, says) in [
        ("retention_days = 0", "retention_days"),
        ("retention_days = 36", "retention_days"),
        (
            "backup_storage_redundancy = 'RA-GRS'",
            "backup_storage_redundancy",
        ),
        ("tags = { '' = 'x' }", "tags"),
    ] {
        let e = Scenario::from_toml_str(&format!("{base}{bad}\n")).unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
    let e = Scenario::from_toml_str(
        "[[vms]]\nsubscription_id='s'\nresource_group='r'\nname='v'\nlocation='l'\naos = { server = '', database = 'x', sql_user = 'u' }\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("aos.server"), "{e}");
    let e = Scenario::from_toml_str("[settings]\nscript_seconds = { sink = 1 }\n").unwrap_err();
    assert!(e.to_string().contains("sink"), "{e}");
}
