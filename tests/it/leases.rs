//! Two runners and one job: the lease a runner holds is refused to another
//! while it lives, and a runner that stalled past it is fenced off once
//! another took over. Expiry is decided by the test's clock, not by which
//! process wins CPU time: the lease lives ten minutes, so the holder's
//! heartbeat (every third of that, in real time) never runs during the test.
use crate::helpers::*;
use chrono::Duration;
use pitr::domain::RequestStatus;

const CONFIG: &str = r#"
[azure]
min_poll_interval_ms = 20
[engine]
lease_ttl_secs = 600

[[environments]]
name = "uat"
tier = "sandbox"
database_kind = "azure_sql"
subscription_id = "00000000-0000-0000-0000-00000000aaaa"
resource_group = "rg-uat"
server = "sql-uat"
location = "westeurope"
database = "AxDB"
sql_password_env = "PITR_TEST_SQL_PASSWORD"
aos_vms = ["/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"]
sync_vm = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"
mr_vm = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-uat/providers/Microsoft.Compute/virtualMachines/aos1"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_job_is_refused_to_a_second_runner_and_a_stale_owner_is_fenced_off() {
    let h = InProcess::start(CONFIG).await;
    let (id, window) = h.accepted("uat", false).await;
    h.clock.set(window.start);
    h.mock_hold(true).await;
    let first = tokio::spawn({
        let (engine, id) = (h.engine.clone(), id.clone());
        async move { engine.run(&id, false).await }
    });
    h.wait_for_restore_poll().await;
    let job = h.job(&id).await;
    let held = h.engine.store().get_lease(&job.id).await.unwrap().unwrap();

    // While the first runner's lease lives, a second one is refused.
    let second = h.restarted().await;
    // (Refused at once: were it let in, it would wait on the held restore.)
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), second.resume(&id))
        .await
        .expect("refused at once")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is being run by"), "{err}");
    assert!(err.contains("lease until"), "{err}");

    // The first runner stalls past its lease: the second takes the job over
    // (and waits on the restore like the first).
    h.clock.advance(Duration::seconds(601));
    let takeover = tokio::spawn({
        let id = id.clone();
        async move { second.resume(&id).await }
    });
    let mut taken = None;
    for _ in 0..500 {
        let now = h.engine.store().get_lease(&job.id).await.unwrap();
        if now.as_ref().is_some_and(|l| l.fencing > held.fencing) {
            taken = now;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let taken = taken.expect("the second runner took the lease over");
    assert_ne!(taken.owner, held.owner);

    // The restore ends: the stale owner's next write is refused and it
    // stops; the second runner finishes the job.
    h.mock_hold(false).await;
    let stale = first.await.unwrap().unwrap_err().to_string();
    assert!(stale.contains("lost"), "{stale}");
    assert!(takeover.await.unwrap().unwrap().is_success());
    assert_eq!(h.status(&id).await, RequestStatus::Succeeded);
    assert_eq!(h.restore_puts(), 1);
}
