//! Each `/lro/...` scenario that applies to the operations pitr uses (a
//! restore PUT, DELETEs, and POST actions), run through the real
//! `ArmClient` (`begin_*` then `wait`), with what the official SDKs'
//! acceptance tests (autorest.python `test_lro.py`, autorest.go
//! `lrogroup_test.go`, autorest.csharp `LroTests.cs`) expect of it. Where
//! they expect an error, pitr must fail too, with the kind of error named.
//! The server counts each scenario's step in its coverage report: a
//! scenario only passes when the client got there.
use super::front::Front;
use super::TestServer;
use azure_core::http::Method;
use pitr::azure::client::Retry;
use pitr::azure::{ArmClient, AzureError, Begun, FinalState, RestoreSpec};
use serde_json::{json, Value};
use std::time::Duration;

/// How pitr starts the operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `begin_restore`: the restore PUT, sent once (only a 429 is retried).
    Restore,
    /// A PUT retried on transient failures, as the SDKs do.
    Put,
    /// `begin_delete_database`.
    Delete,
    /// A POST action (ARM's default: the result at its Location).
    Post,
    /// A POST declared `final-state-via: azure-async-operation`.
    PostResultInStatus,
}

/// What the SDKs expect.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Succeeds with this final body.
    Ok(Body),
    /// Fails: Azure refused with this HTTP status.
    Refused(u16),
    /// Fails: the operation ended with this status and Azure's error code
    /// (`Unknown` when the status gave none).
    Ended(&'static str, &'static str),
    /// Fails: the answers break ARM's rules (no status, not JSON, a
    /// relative URL, nothing to poll).
    Protocol,
    /// Fails: 5xx, not retried (the restore PUT is never sent twice blindly).
    Unavailable(u16),
}

#[derive(Debug, Clone, Copy)]
enum Body {
    Nothing,
    Id(&'static str),
    State(&'static str),
    List,
    Any,
}

struct Case {
    n: u8,
    op: Op,
    path: &'static str,
    coverage: &'static str,
    want: Want,
}

const fn case(n: u8, op: Op, path: &'static str, coverage: &'static str, want: Want) -> Case {
    Case {
        n,
        op,
        path,
        coverage,
        want,
    }
}

use Body::*;
use Op::*;
use Want::{Ended, Protocol, Refused, Unavailable};

#[rustfmt::skip]
const PUTS: &[Case] = &[
    case(1, Restore, "/lro/put/200/succeeded", "LROPutInlineComplete", Want::Ok(State("Succeeded"))),
    case(2, Restore, "/lro/put/201/succeeded", "LROPutInlineComplete201", Want::Ok(Id("100"))),
    case(3, Restore, "/lro/put/200/succeeded/nostate", "LROPut200InlineCompleteNoState", Want::Ok(Id("100"))),
    case(4, Restore, "/lro/put/201/creating/succeeded/200", "LROPutSucceededWithBody", Want::Ok(State("Succeeded"))),
    case(5, Restore, "/lro/put/200/updating/succeeded/200", "LROPutSucceededNoBody", Want::Ok(State("Succeeded"))),
    case(6, Restore, "/lro/put/201/created/failed/200", "LROPutFailed", Ended("Failed", "Unknown")),
    case(7, Restore, "/lro/put/200/accepted/canceled/200", "LROPutCanceled", Ended("Canceled", "Unknown")),
    case(8, Restore, "/lro/put/202/retry/200", "LROPut202Retry200", Want::Ok(Id("100"))),
    case(9, Restore, "/lro/put/noheader/202/200", "LROPutNoHeaderInRetry", Want::Ok(State("Succeeded"))),
    case(10, Restore, "/lro/putasync/retry/succeeded", "LROPutAsyncRetrySucceeded", Want::Ok(State("Succeeded"))),
    case(11, Restore, "/lro/putasync/noretry/succeeded", "LROPutAsyncNoRetrySucceeded", Want::Ok(State("Succeeded"))),
    case(12, Restore, "/lro/putasync/retry/failed", "LROPutAsyncRetryFailed", Ended("Failed", "Unknown")),
    case(13, Restore, "/lro/putasync/noretry/canceled", "LROPutAsyncNoRetryCanceled", Ended("Canceled", "Unknown")),
    case(14, Restore, "/lro/putasync/noheader/201/200", "LROPutAsyncNoHeaderInRetry", Want::Ok(State("Succeeded"))),
    case(15, Restore, "/lro/putsubresource/202/200", "LROPutSubResourceInRetry", Want::Ok(State("Succeeded"))),
    case(16, Restore, "/lro/putsubresourceasync/202/200", "LROPutSubResourceAsyncInRetry", Want::Ok(State("Succeeded"))),
    case(17, Restore, "/lro/putnonresource/202/200", "LROPutNonResourceInRetry", Want::Ok(Id("100"))),
    case(18, Restore, "/lro/putnonresourceasync/202/200", "LROPutNonResourceAsyncInRetry", Want::Ok(Id("100"))),
    // The SDKs resend the PUT after a 500; the restore PUT is sent once
    // (the engine looks at Azure before resending), a plain PUT retries.
    case(19, Restore, "/lro/retryerror/put/201/creating/succeeded/200", "LRORetryPutSucceededWithBody", Unavailable(500)),
    case(19, Put, "/lro/retryerror/put/201/creating/succeeded/200", "LRORetryPutSucceededWithBody", Want::Ok(State("Succeeded"))),
    case(20, Restore, "/lro/retryerror/putasync/retry/succeeded", "LRORetryErrorPutAsyncSucceeded", Unavailable(500)),
    case(20, Put, "/lro/retryerror/putasync/retry/succeeded", "LRORetryErrorPutAsyncSucceeded", Want::Ok(State("Succeeded"))),
    case(21, Restore, "/lro/nonretryerror/put/400", "LRONonRetryPut400", Refused(400)),
    case(22, Restore, "/lro/nonretryerror/put/201/creating/400", "LRONonRetryPut201Creating400", Refused(400)),
    case(23, Restore, "/lro/nonretryerror/put/201/creating/400/invalidjson", "LRONonRetryPut201Creating400InvalidJson", Refused(400)),
    case(24, Restore, "/lro/nonretryerror/putasync/retry/400", "LRONonRetryPutAsyncRetry400", Refused(400)),
    case(25, Restore, "/lro/error/put/201/noprovisioningstatepayload", "LROErrorPut201NoProvisioningStatePayload", Protocol),
    case(26, Restore, "/lro/error/putasync/retry/nostatus", "LROErrorPutAsyncNoPollingStatus", Protocol),
    case(27, Restore, "/lro/error/putasync/retry/nostatuspayload", "LROErrorPutAsyncNoPollingStatusPayload", Protocol),
    case(28, Restore, "/lro/error/put/200/invalidjson", "LROErrorPut200InvalidJson", Protocol),
    case(29, Restore, "/lro/error/putasync/retry/invalidheader", "LROErrorPutAsyncInvalidHeader", Protocol),
    case(30, Restore, "/lro/error/putasync/retry/invalidjsonpolling", "LROErrorPutAsyncInvalidJsonPolling", Protocol),
];

#[rustfmt::skip]
const DELETES: &[Case] = &[
    case(31, Delete, "/lro/delete/204/succeeded", "LRODeleteInlineComplete", Want::Ok(Nothing)),
    case(32, Delete, "/lro/error/delete/204/nolocation", "LROErrorDeleteNoLocation", Want::Ok(Nothing)),
    case(33, Delete, "/lro/delete/202/retry/200", "LRODelete200", Want::Ok(Nothing)),
    case(34, Delete, "/lro/delete/202/noretry/204", "LRODelete204", Want::Ok(Nothing)),
    case(35, Delete, "/lro/delete/noheader", "LRODeleteNoHeaderInRetry", Want::Ok(Nothing)),
    case(36, Delete, "/lro/delete/provisioning/202/accepted/200/succeeded", "LRODeleteProvisioningSucceededWithBody", Want::Ok(State("Succeeded"))),
    // Python and C# end these well with the body's state (Go fails them):
    // a Location answering 200 means the operation is over.
    case(37, Delete, "/lro/delete/provisioning/202/deleting/200/failed", "LRODeleteProvisioningFailed", Want::Ok(State("Failed"))),
    case(38, Delete, "/lro/delete/provisioning/202/deleting/200/canceled", "LRODeleteProvisioningCanceled", Want::Ok(State("Canceled"))),
    case(39, Delete, "/lro/deleteasync/retry/succeeded", "LRODeleteAsyncRetrySucceeded", Want::Ok(Nothing)),
    case(40, Delete, "/lro/deleteasync/noretry/succeeded", "LRODeleteAsyncNoRetrySucceeded", Want::Ok(Nothing)),
    case(41, Delete, "/lro/deleteasync/retry/failed", "LRODeleteAsyncRetryFailed", Ended("Failed", "Unknown")),
    case(42, Delete, "/lro/deleteasync/retry/canceled", "LRODeleteAsyncRetryCanceled", Ended("Canceled", "Unknown")),
    case(43, Delete, "/lro/deleteasync/noheader/202/204", "LRODeleteAsyncNoHeaderInRetry", Want::Ok(Nothing)),
    case(44, Delete, "/lro/retryerror/delete/provisioning/202/accepted/200/succeeded", "LRORetryErrorDelete202Accepted200Succeeded", Want::Ok(State("Succeeded"))),
    case(45, Delete, "/lro/retryerror/delete/202/retry/200", "LRORetryErrorDelete202Retry200Succeeded", Want::Ok(Any)),
    case(46, Delete, "/lro/retryerror/deleteasync/retry/succeeded", "LRORetryErrorDeleteAsyncRetrySucceeded", Want::Ok(Nothing)),
    case(47, Delete, "/lro/nonretryerror/delete/400", "LRONonRetryDelete400", Refused(400)),
    case(48, Delete, "/lro/nonretryerror/delete/202/retry/400", "LRONonRetryDelete202Retry400", Refused(400)),
    case(49, Delete, "/lro/nonretryerror/deleteasync/retry/400", "LRONonRetryDeleteAsyncRetry400", Refused(400)),
    case(50, Delete, "/lro/error/deleteasync/retry/nostatus", "LROErrorDeleteAsyncNoPollingStatus", Protocol),
    case(51, Delete, "/lro/error/delete/202/retry/invalidheader", "LROErrorDelete202RetryInvalidHeader", Protocol),
    case(52, Delete, "/lro/error/deleteasync/retry/invalidheader", "LROErrorDeleteAsyncInvalidHeader", Protocol),
    case(53, Delete, "/lro/error/deleteasync/retry/invalidjsonpolling", "LROErrorDeleteAsyncInvalidJsonPolling", Protocol),
];

#[rustfmt::skip]
const POSTS: &[Case] = &[
    case(54, Post, "/lro/post/payload/200", "LROPost200", Want::Ok(Id("1"))),
    case(55, Post, "/lro/post/202/retry/200", "LROPostSuccededWithBody", Want::Ok(Any)),
    case(56, Post, "/lro/post/202/noretry/204", "LROPostSuccededNoBody", Want::Ok(Nothing)),
    case(57, Post, "/lro/LROPostDoubleHeadersFinalLocationGet", "LROPostDoubleHeadersFinalLocationGet", Want::Ok(Id("100"))),
    case(58, PostResultInStatus, "/lro/LROPostDoubleHeadersFinalAzureHeaderGet", "LROPostDoubleHeadersFinalAzureHeaderGet", Want::Ok(Id("100"))),
    case(59, Post, "/lro/LROPostDoubleHeadersFinalAzureHeaderGetDefault", "LROPostDoubleHeadersFinalAzureHeaderGetDefault", Want::Ok(Id("100"))),
    case(60, Post, "/lro/postasync/retry/succeeded", "LROPostAsyncRetrySucceeded", Want::Ok(Id("100"))),
    case(61, Post, "/lro/postasync/noretry/succeeded", "LROPostAsyncNoRetrySucceeded", Want::Ok(Id("100"))),
    case(62, Post, "/lro/postasync/retry/failed", "LROPostAsyncRetryFailed", Ended("Failed", "500")),
    case(63, Post, "/lro/postasync/retry/canceled", "LROPostAsyncRetryCanceled", Ended("Canceled", "Unknown")),
    case(64, Post, "/lro/retryerror/post/202/retry/200", "LRORetryErrorPost202Retry200Succeeded", Want::Ok(Any)),
    case(65, Post, "/lro/retryerror/postasync/retry/succeeded", "LRORetryErrorPostAsyncRetrySucceeded", Want::Ok(Id("100"))),
    case(66, Post, "/lro/nonretryerror/post/400", "LRONonRetryPost400", Refused(400)),
    case(67, Post, "/lro/nonretryerror/post/202/retry/400", "LRONonRetryPost202Retry400", Refused(400)),
    case(68, Post, "/lro/nonretryerror/postasync/retry/400", "LRONonRetryPostAsyncRetry400", Refused(400)),
    // The SDKs disagree (Python ends well, Go and C# fail); the server's
    // own comment wants a failure: there is nothing to follow.
    case(69, Post, "/lro/error/post/202/nolocation", "LROErrorPostNoLocation", Protocol),
    case(70, Post, "/lro/error/postasync/retry/nopayload", "LROErrorPostAsyncNoPollingPayload", Protocol),
    case(71, Post, "/lro/error/post/202/retry/invalidheader", "LROErrorPost202RetryInvalidHeader", Protocol),
    case(72, Post, "/lro/error/postasync/retry/invalidheader", "LROErrorPostAsyncInvalidHeader", Protocol),
    case(73, Post, "/lro/error/postasync/retry/invalidjsonpolling", "LROErrorPostAsyncInvalidJsonPolling", Protocol),
    case(74, Post, "/lro/list", "LROPostAndGetList", Want::Ok(List)),
];

fn client(front: &Front) -> ArmClient {
    let cfg = pitr::config::AzureConfig {
        min_poll_interval_ms: 5,
        max_poll_interval_ms: 50,
        retry_min_delay_ms: 5,
        retry_max_delay_ms: 20,
        ..Default::default()
    };
    ArmClient::for_mock(&cfg, &front.url, &front.ca_pem).expect("an ARM client on the front")
}

fn restore_spec() -> RestoreSpec {
    RestoreSpec {
        location: "westeurope".into(),
        source_database_id:
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/sql/databases/AxDB"
                .into(),
        restore_point: chrono::Utc::now() - chrono::Duration::hours(3),
        sku: None,
        elastic_pool_id: None,
        tags: Default::default(),
        zone_redundant: None,
        backup_storage_redundancy: None,
        properties: Default::default(),
    }
}

/// Starts the operation as pitr does and follows it to its end.
async fn run(az: &ArmClient, c: &Case) -> Result<Option<Value>, AzureError> {
    let deadline = Duration::from_secs(10);
    let body = json!({"location": "westeurope"});
    let begun = match c.op {
        Restore => az.begin_restore(c.path, &restore_spec()).await?,
        Delete => match az.begin_delete_database(c.path).await? {
            Some(op) => Begun::Polling(op),
            None => Begun::Done(None),
        },
        Put | Post | PostResultInStatus => {
            let method = if c.op == Put {
                Method::Put
            } else {
                Method::Post
            };
            az.begin(
                c.path,
                method,
                c.path,
                "2024-07-01",
                Some(&body),
                Retry::Transient,
            )
            .await?
        }
    };
    match begun {
        Begun::Done(outcome) => Ok(outcome),
        Begun::Polling(mut op) => {
            if c.op == PostResultInStatus {
                op.final_state = FinalState::AzureAsyncOperation;
            }
            az.wait(&op, deadline, &mut |_| {}).await
        }
    }
}

/// Why the result is not what the SDKs expect, if it is not.
fn judge(want: Want, got: &Result<Option<Value>, AzureError>) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let fine = match (want, got) {
        (Want::Ok(Nothing), Ok(None)) => true,
        (Want::Ok(Any), Ok(_)) => true,
        (Want::Ok(Id(id)), Ok(Some(v))) => text(&v["id"]) == id,
        (Want::Ok(State(s)), Ok(Some(v))) => v["properties"]["provisioningState"] == s,
        (Want::Ok(List), Ok(Some(v))) => v.as_array().is_some_and(|a| a.len() == 1),
        (Refused(s), Err(AzureError::Refused { status, .. })) => *status == s,
        (Ended(s, c), Err(AzureError::OperationFailed { status, code, .. })) => {
            status == s && code == c
        }
        (Protocol, Err(AzureError::Protocol { .. })) => true,
        (
            Unavailable(s),
            Err(AzureError::Unavailable {
                status, attempts, ..
            }),
        ) => *status == s && *attempts == 1,
        _ => false,
    };
    (!fine).then(|| match got {
        Ok(v) => format!("ended well with {v:?}"),
        Err(e) => format!("failed: {e}"),
    })
}

/// One line of the result table.
fn describe(c: &Case, got: &Result<Option<Value>, AzureError>) -> String {
    let got = match got {
        Ok(None) => "ok, no body".to_string(),
        Ok(Some(v)) => format!("ok, {}", v.to_string().chars().take(60).collect::<String>()),
        Err(e) => format!(
            "error: {}",
            e.to_string().chars().take(90).collect::<String>()
        ),
    };
    format!(
        "| {} | {:?} | `{}` | {:?} | {got} |",
        c.n, c.op, c.path, c.want
    )
}

async fn run_all(cases: &[Case]) {
    let server = TestServer::start().await;
    let front = Front::start(server.port).await;
    let az = client(&front);
    let mut failures = Vec::new();
    for c in cases {
        front.reset();
        let counted = server.counter(c.coverage).await;
        let got = run(&az, c).await;
        println!("{}", describe(c, &got));
        if let Some(why) = judge(c.want, &got) {
            failures.push(format!("#{} {} ({:?}): {why}", c.n, c.path, c.want));
            continue;
        }
        // A restore PUT that stops at a 500 stops short on purpose.
        let stops_short = matches!(c.want, Unavailable(_));
        if !stops_short && server.counter(c.coverage).await <= counted {
            failures.push(format!(
                "#{} {}: the server never counted {}: the client stopped short",
                c.n, c.path, c.coverage
            ));
        }
        // The restore PUT reaches Azure once, whatever the answer.
        let hits = front.hits();
        let puts = hits.iter().filter(|h| h.method == "PUT").count();
        if c.op == Restore && puts != 1 {
            let seen: Vec<String> = hits
                .iter()
                .map(|h| format!("{} {} {}", h.method, h.path, h.status))
                .collect();
            failures.push(format!(
                "#{} {}: {puts} restore PUTs: {seen:?}",
                c.n, c.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) differ from the SDKs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_passes_the_sdk_put_scenarios() {
    run_all(PUTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_passes_the_sdk_delete_scenarios() {
    run_all(DELETES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_passes_the_sdk_post_scenarios() {
    run_all(POSTS).await;
}
