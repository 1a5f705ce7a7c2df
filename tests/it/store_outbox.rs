//! The outbox part of the store contract, for every backend (called by
//! the store suite): events written with their transitions, deliveries
//! claimed in order per request and receiver, retried with the same
//! delivery id, claimed by one runner at a time, given up.
use crate::store_suite::{event, fresh, job, request, submitted};
use chrono::{Duration, DurationRound, Utc};
use pitr::domain::{RequestEvent, RequestStatus as S, StepName, StepRecord, StepStatus};
use pitr::store::{DeliveryOutcome, ReceiverSpec, SharedStore};
use serde_json::Value;

fn all_events() -> Vec<String> {
    pitr::config::NOTIFICATION_EVENTS
        .iter()
        .map(|e| e.to_string())
        .collect()
}

pub async fn outbox_story(store: &SharedStore) {
    // Instants of its own, whole microseconds.
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let at = |m: i64| t0 + Duration::minutes(m);
    let env = fresh("env-o");
    let mut r = request(&fresh("req-o"), &env, at(0));
    r.submitted_at = at(0);
    r.updated_at = at(0);
    store.insert_request(&r, &submitted(&r)).await.unwrap();
    store
        .transition_request(&event(&r.id, Some(S::Submitted), S::Accepted, at(1)))
        .await
        .unwrap();
    let mut moved = r.clone();
    moved.status = S::Accepted;
    moved.spec.window.end += Duration::hours(1);
    store
        .update_request(
            &moved,
            &RequestEvent {
                note: Some("rescheduled: window ...".into()),
                ..event(&r.id, Some(S::Accepted), S::Accepted, at(2))
            },
        )
        .await
        .unwrap();
    let j = job(&fresh("job-o"), &r.id, at(3));
    store
        .claim_run(
            &j,
            Some(&event(&r.id, Some(S::Accepted), S::Running, at(3))),
            "runner",
            at(3),
            Duration::seconds(60),
            None,
        )
        .await
        .unwrap();
    let lease = store.get_lease(&j.id).await.unwrap().unwrap();
    let mut step = StepRecord::pending(StepName::Restore);
    step.status = StepStatus::Running;
    step.attempts = 1;
    store.save_step(&j.id, &step, Some(&lease)).await.unwrap();
    step.status = StepStatus::Failed;
    step.error = Some("OperationFailed: injected".into());
    step.finished_at = Some(at(4));
    store.save_step(&j.id, &step, Some(&lease)).await.unwrap();
    // Saved again as failed: no second notification.
    store.save_step(&j.id, &step, Some(&lease)).await.unwrap();
    // A confirmed step (running -> running) tells nobody anything new.
    store
        .transition_request(&event(&r.id, Some(S::Running), S::Running, at(5)))
        .await
        .unwrap();
    store
        .transition_request(&event(&r.id, Some(S::Running), S::Failed, at(6)))
        .await
        .unwrap();

    let written = store.outbox(Some(&r.id)).await.unwrap();
    let names: Vec<&str> = written.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "submitted",
            "accepted",
            "rescheduled",
            "started",
            "step_failed",
            "failed"
        ]
    );
    assert!(written.windows(2).all(|w| w[0].seq < w[1].seq));
    let first: Value = serde_json::from_str(&written[0].payload).unwrap();
    assert_eq!(first["event"], "submitted");
    assert_eq!(first["request_id"], r.id.as_str());
    assert_eq!(first["environment"], env.as_str());
    assert_eq!(first["status"], "submitted");
    assert_eq!(first["actor"], r.spec.requester.as_str());
    let failed_step: Value = serde_json::from_str(&written[4].payload).unwrap();
    assert_eq!(failed_step["status"], "running");
    assert!(
        failed_step["detail"]
            .as_str()
            .unwrap()
            .contains("restore failed"),
        "{failed_step}"
    );

    // A rehearsal's failed step is not notified.
    let mut ended = j.clone();
    ended.status = pitr::domain::JobStatus::Failed;
    store.update_job(&ended, Some(&lease)).await.unwrap();
    let dry = pitr::domain::Job {
        dry_run: true,
        ..job(&fresh("job-d"), &r.id, at(7))
    };
    store
        .claim_run(&dry, None, "runner", at(7), Duration::seconds(60), None)
        .await
        .unwrap();
    store.save_step(&dry.id, &step, None).await.unwrap();
    assert_eq!(store.outbox(Some(&r.id)).await.unwrap().len(), 6);
    // Runners done: the store is left lease-free (a copy of it follows).
    store.release_lease(&lease).await.unwrap();
    let dry_lease = store.get_lease(&dry.id).await.unwrap().unwrap();
    store.release_lease(&dry_lease).await.unwrap();

    // Receivers: one takes everything, one only two events.
    let all = ReceiverSpec {
        url: format!("http://{}/all", fresh("h")),
        events: all_events(),
    };
    let some = ReceiverSpec {
        url: format!("http://{}/some", fresh("h")),
        events: vec!["accepted".into(), "failed".into()],
    };
    let since = at(-60);
    let ttl = Duration::seconds(30);
    let mut now = at(10);
    let mut got: Vec<(String, String)> = Vec::new();
    let mut ids: std::collections::HashMap<i64, String> = Default::default();
    let mut retried = false;
    for _ in 0..40 {
        let claimed = store
            .claim_deliveries(std::slice::from_ref(&all), "w1", now, ttl, since, 100)
            .await
            .unwrap();
        let mine: Vec<_> = claimed.iter().filter(|d| d.request_id == r.id).collect();
        assert!(
            mine.len() <= 1,
            "one event of a request at a time: {mine:?}"
        );
        for d in &claimed {
            if d.request_id != r.id {
                // Another story's row on a shared database.
                let done = DeliveryOutcome::Delivered { at: now };
                store.finish_delivery(d, "w1", &done).await.unwrap();
                continue;
            }
            // The same delivery id on every attempt.
            let id = ids.entry(d.seq).or_insert_with(|| d.delivery_id.clone());
            assert_eq!(*id, d.delivery_id);
            // Claimed: another runner does not get it meanwhile.
            let other = store
                .claim_deliveries(std::slice::from_ref(&all), "w2", now, ttl, since, 100)
                .await
                .unwrap();
            assert!(other.iter().all(|o| o.request_id != r.id), "{other:?}");
            if d.event == "accepted" && !retried {
                // The receiver is down once: retried later, same id.
                retried = true;
                let retry = pitr::store::rules::after_failure(
                    d.attempts,
                    d.created_at,
                    now,
                    "HTTP 503".into(),
                );
                store.finish_delivery(d, "w1", &retry).await.unwrap();
                let early = store
                    .claim_deliveries(std::slice::from_ref(&all), "w1", now, ttl, since, 100)
                    .await
                    .unwrap();
                assert!(
                    early.iter().all(|o| o.request_id != r.id),
                    "not due yet, and nothing overtakes it"
                );
            } else {
                got.push((d.event.clone(), d.delivery_id.clone()));
                let done = DeliveryOutcome::Delivered { at: now };
                store.finish_delivery(d, "w1", &done).await.unwrap();
            }
        }
        now += Duration::seconds(5);
    }
    let order: Vec<&str> = got.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        order,
        [
            "submitted",
            "accepted",
            "rescheduled",
            "started",
            "step_failed",
            "failed"
        ]
    );
    let list = store.deliveries(false, 10_000).await.unwrap();
    let accepted = list
        .iter()
        .find(|d| d.receiver == all.url && d.event == "accepted" && d.request_id == r.id.as_str())
        .unwrap();
    assert_eq!(
        (accepted.status.as_str(), accepted.attempts),
        ("delivered", 2)
    );

    // A claim whose runner died is taken over after its TTL, same id.
    let c1 = store
        .claim_deliveries(std::slice::from_ref(&some), "dead", now, ttl, since, 100)
        .await
        .unwrap();
    let c1: Vec<_> = c1.into_iter().filter(|d| d.request_id == r.id).collect();
    assert_eq!(c1.len(), 1);
    assert_eq!(c1[0].event, "accepted");
    let c2 = store
        .claim_deliveries(
            std::slice::from_ref(&some),
            "w2",
            now + ttl,
            ttl,
            since,
            100,
        )
        .await
        .unwrap();
    let c2: Vec<_> = c2.into_iter().filter(|d| d.request_id == r.id).collect();
    assert_eq!(c2.len(), 1);
    assert_eq!(
        (c2[0].delivery_id.as_str(), c2[0].attempts),
        (c1[0].delivery_id.as_str(), 2)
    );
    // The dead runner's late word is ignored; given up after 24 hours, the
    // next event of the request is due.
    let late = DeliveryOutcome::Delivered { at: now };
    store.finish_delivery(&c1[0], "dead", &late).await.unwrap();
    let gave_up = DeliveryOutcome::Failed {
        at: now + ttl,
        error: "HTTP 500 for 24 hours".into(),
    };
    store.finish_delivery(&c2[0], "w2", &gave_up).await.unwrap();
    let next = store
        .claim_deliveries(
            std::slice::from_ref(&some),
            "w2",
            now + ttl,
            ttl,
            since,
            100,
        )
        .await
        .unwrap();
    let next: Vec<&str> = next
        .iter()
        .filter(|d| d.request_id == r.id)
        .map(|d| d.event.as_str())
        .collect();
    assert_eq!(next, ["failed"]);
    let failed = store.deliveries(true, 10_000).await.unwrap();
    assert!(failed.iter().any(|d| d.receiver == some.url
        && d.event == "accepted"
        && d.status == "failed"
        && d.last_error.as_deref() == Some("HTTP 500 for 24 hours")));
    assert!(failed.iter().all(|d| d.status == "failed"));
}
