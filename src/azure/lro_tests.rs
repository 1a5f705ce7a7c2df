use super::*;

#[test]
fn zero_or_absent_retry_after_means_the_floor_and_large_is_capped() {
    let p = PollSettings {
        floor: Duration::from_millis(500),
        cap: Duration::from_secs(30),
    };
    assert_eq!(p.interval(None), Duration::from_millis(500));
    assert_eq!(p.interval(Some(Duration::ZERO)), Duration::from_millis(500));
    assert_eq!(
        p.interval(Some(Duration::from_secs(5))),
        Duration::from_secs(5)
    );
    assert_eq!(
        p.interval(Some(Duration::from_secs(600))),
        Duration::from_secs(30)
    );
}

fn op() -> Operation {
    Operation {
        op: "PUT AxDB_pitr_0123abcd".into(),
        async_url: Some("https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseAzureAsyncOperation/6f1c?api-version=2023-08-01".into()),
        location_url: Some("https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseOperationResults/6f1c?api-version=2023-08-01".into()),
        retry_after_secs: Some(0),
        resource_url: Some("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql/databases/AxDB_pitr_0123abcd?api-version=2023-08-01".into()),
        final_state: FinalState::OriginalUri,
    }
}

#[test]
fn checkpoint_roundtrip() {
    let op = op();
    assert_eq!(Operation::from_checkpoint(&op.to_checkpoint()), Some(op));
}

/// A restore checkpoint as pitr wrote it before the final state was
/// recorded: it still loads, and is followed without a final read.
#[test]
fn a_checkpoint_written_by_an_older_pitr_still_loads() {
    let stored = r#"{"op":"PUT AxDB_pitr_0123abcd","async_url":"https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseAzureAsyncOperation/6f1c?api-version=2023-08-01","location_url":"https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseOperationResults/6f1c?api-version=2023-08-01","retry_after_secs":0}"#;
    let loaded = Operation::from_checkpoint(stored).expect("an old checkpoint loads");
    assert_eq!(
        loaded,
        Operation {
            resource_url: None,
            final_state: FinalState::Nothing,
            ..op()
        }
    );
}

/// The checkpoint this pitr writes, kept as text: a later pitr must load it.
#[test]
fn the_current_checkpoint_format_is_fixed() {
    let stored = r#"{"op":"PUT AxDB_pitr_0123abcd","async_url":"https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseAzureAsyncOperation/6f1c?api-version=2023-08-01","location_url":"https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/databaseOperationResults/6f1c?api-version=2023-08-01","retry_after_secs":0,"resource_url":"https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql/databases/AxDB_pitr_0123abcd?api-version=2023-08-01","final_state":"original_uri"}"#;
    assert_eq!(op().to_checkpoint(), stored);
    assert_eq!(Operation::from_checkpoint(stored), Some(op()));
}

fn answer(status: u16, aso: bool, loc: bool, body: &str) -> ArmResponse {
    ArmResponse {
        status,
        retry_after: None,
        azure_async_operation: aso.then(|| "https://arm/op/1".to_string()),
        location: loc.then(|| "https://arm/loc/1".to_string()),
        body: body.as_bytes().to_vec(),
    }
}

fn begin(method: Method, r: &ArmResponse) -> Result<Begun, AzureError> {
    let url = Url::parse("https://arm/res?api-version=1").unwrap();
    Operation::begin("op", method, &url, r)
}

#[test]
fn the_first_answer_decides_how_an_operation_is_followed() {
    let done = |b: Result<Begun, AzureError>| matches!(b, Ok(Begun::Done(_)));
    let polled = |b: Result<Begun, AzureError>| b.ok().and_then(Begun::into_operation);
    // Headers: followed, with ARM's final state for the method.
    for (m, fs) in [
        (Method::Put, FinalState::OriginalUri),
        (Method::Post, FinalState::Location),
        (Method::Delete, FinalState::Nothing),
    ] {
        for status in [200, 201, 202] {
            let op = polled(begin(m, &answer(status, true, true, ""))).expect("followed");
            assert_eq!(op.final_state, fs, "{m:?} {status}");
            assert_eq!(op.async_url.as_deref(), Some("https://arm/op/1"));
            assert_eq!(
                op.resource_url.as_deref(),
                Some("https://arm/res?api-version=1")
            );
        }
    }
    // A PUT without headers: by its provisioningState.
    let state = |s: &str| format!(r#"{{"properties":{{"provisioningState":"{s}"}}}}"#);
    assert!(done(begin(
        Method::Put,
        &answer(200, false, false, &state("Succeeded"))
    )));
    assert!(done(begin(
        Method::Put,
        &answer(201, false, false, &state("succeeded"))
    )));
    assert!(done(begin(
        Method::Put,
        &answer(200, false, false, r#"{"id":"1"}"#)
    )));
    let body_polled = polled(begin(
        Method::Put,
        &answer(201, false, false, &state("Creating")),
    ))
    .expect("polled by its state");
    assert_eq!(
        (body_polled.async_url, body_polled.location_url),
        (None, None)
    );
    assert!(polled(begin(Method::Put, &answer(201, false, false, ""))).is_some());
    assert!(matches!(
        begin(Method::Put, &answer(200, false, false, &state("Canceled"))),
        Err(AzureError::OperationFailed { status, .. }) if status == "Canceled"
    ));
    assert!(matches!(
        begin(Method::Put, &answer(200, false, false, "{ \"id\": ")),
        Err(AzureError::Protocol { .. })
    ));
    // 204, or a DELETE/POST 200: done; a 202 with nothing to follow: refused.
    for m in [Method::Put, Method::Post, Method::Delete] {
        assert!(done(begin(m, &answer(204, false, false, ""))), "{m:?}");
        assert!(
            matches!(
                begin(m, &answer(202, false, false, "")),
                Err(AzureError::Protocol { .. })
            ),
            "{m:?}"
        );
    }
    assert!(done(begin(Method::Delete, &answer(200, false, false, ""))));
    assert!(done(begin(
        Method::Post,
        &answer(200, false, false, r#"{"id":"1"}"#)
    )));
}

#[test]
fn failures_keep_azures_code_even_a_numeric_one() {
    let v: Value = serde_json::from_str(
        r#"{"status":"Failed","error":{"code":500,"message":"Internal Server Error"}}"#,
    )
    .unwrap();
    match ended("op", "Failed", Some(&v)) {
        AzureError::OperationFailed { code, message, .. } => {
            assert_eq!(code, "500");
            assert_eq!(message, "Internal Server Error");
        }
        e => panic!("{e}"),
    }
    assert_eq!(
        ended("op", "Canceled", None).code(),
        Some("Unknown"),
        "no error object"
    );
    assert_eq!(Terminal::of("SUCCEEDED"), Terminal::Succeeded);
    assert_eq!(Terminal::of("cancelled"), Terminal::Ended);
    assert_eq!(Terminal::of("InProgress"), Terminal::Running);
}
