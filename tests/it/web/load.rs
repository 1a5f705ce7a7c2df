//! How fast the work items load in Chromium with 1,000 requests in the
//! store: time to first byte and full load from the browser's Navigation
//! Timing, printed (figures for the README, never asserted: timings depend
//! on the machine). What is asserted is what the page shows.
use super::*;
use chrono::{Duration as Days, Utc};
use pitr::domain::{
    Acknowledgements, RequestEvent, RequestSpec, RequestStatus, RestoreRequest, Window,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_items_with_1000_requests_load_in_chromium() {
    let svc = web_service(Backend::Sqlite).await;
    let url = format!("sqlite://{}", svc.env.dir.path().join("pitr.db").display());
    let store = pitr::store::open(&url).await.expect("the service's store");
    let now = Utc::now();
    for i in 0..1000i64 {
        let at = now - Days::hours(1000 - i);
        let mut r = RestoreRequest::new(
            uuid::Uuid::new_v4().to_string().into(),
            RequestSpec {
                environment: "uat".into(),
                database: "AxDB".into(),
                restore_point: at - Days::hours(5),
                window: Window {
                    start: at + Days::days(1),
                    end: at + Days::days(1) + Days::hours(2),
                },
                acks: Acknowledgements {
                    erase: true,
                    downtime: true,
                    scope: true,
                    version_mismatch: false,
                },
                requester: format!("user{}@contoso.com", i % 17),
                reason: Some(format!("load {i}")),
                prestage: false,
                emergency: None,
            },
            at,
        );
        r.status = if i % 3 == 0 {
            RequestStatus::Cancelled
        } else {
            RequestStatus::Succeeded
        };
        let ev = RequestEvent {
            request_id: r.id.clone(),
            at,
            actor: r.spec.requester.clone(),
            from: None,
            to: r.status,
            note: None,
        };
        store.insert_request(&r, &ev).await.expect("insert");
    }

    let b = Browser::start().await;
    b.sign_in(&svc, "vera@contoso.com", "/").await;
    assert!(b.text(".count").await.starts_with("1000 work items"));
    let rows =
        b.c.execute(
            "return document.querySelectorAll('table.items tbody tr').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(PAGE));
    let mut ttfb = Vec::new();
    let mut full = Vec::new();
    for page in ["/", "/?page=20", "/?status=cancelled&environment=uat"] {
        for _ in 0..5 {
            b.c.goto(&svc.url(page)).await.unwrap();
            let t = b
                .c
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0]; return [n.responseStart - n.startTime, n.loadEventEnd - n.startTime];",
                    vec![],
                )
                .await
                .unwrap();
            ttfb.push(t[0].as_f64().unwrap());
            full.push(t[1].as_f64().unwrap());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "work items with 1000 requests (15 loads, 3 pages): time to first byte median {:.1} ms (max {:.1} ms), full load median {:.1} ms (max {:.1} ms)",
        median(&mut ttfb.clone()),
        max(&ttfb),
        median(&mut full.clone()),
        max(&full)
    );
    assert!(b.text(".count").await.starts_with("334 work items"));
    b.c.clone().close().await.unwrap();
}

const PAGE: usize = 50;
