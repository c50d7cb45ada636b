//! The hopper on both backends: eligibility (hours in the lead's zone, DNC, due time,
//! attempts, schedule), order (priority then age), atomic claims, retries and release.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{on_each_backend, tenant};
use serde_json::json;
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::dialer::retry::{next_step, AttemptResult, NextStep};
use switchboard_engine::import::ImportOptions;
use switchboard_engine::leads::LeadFilter;

// 2024-06-03 16:30Z = 12:30 New York, 11:30 Chicago, 09:30 Los Angeles, 06:30 Honolulu.
const CSV: &str = "phone,first_name,timezone,priority\n\
+12125550101,ny-normal,America/New_York,normal\n\
+12125550102,ny-urgent,America/New_York,urgent\n\
+13125550103,chi-high,America/Chicago,high\n\
+14155550104,la-normal,America/Los_Angeles,normal\n\
+18085550105,hi-urgent,Pacific/Honolulu,urgent\n\
+12125550106,ny-dnc,America/New_York,urgent\n";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn claims_in_order_inside_local_hours_and_never_twice() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(&t, serde_json::from_value::<CampaignInput>(json!({"name": "C", "caller_id": "+14155551234", "calling_hours_start": "10:00", "calling_hours_end": "20:00"})).unwrap())
            .await
            .unwrap();
        // The fictional 555-01xx range is refused by the importer; use other numbers.
        let csv = CSV.replace("555010", "555230");
        store.import_leads(&t, &c.id, None, std::io::Cursor::new(csv.into_bytes()), &ImportOptions { default_country: "US".into() }).await.unwrap();
        store.add_dnc(&t, "+12125552306", None, None).await.unwrap();
        let now = at("2024-06-03T16:30:00Z");
        let first = store.claim_leads(&c, now, 2).await.unwrap();
        let names: Vec<_> = first.iter().map(|l| l.first_name.clone().unwrap()).collect();
        assert_eq!(names, ["ny-urgent", "chi-high"], "priority first; Honolulu is asleep; DNC skipped");
        assert!(first.iter().all(|l| l.status == "queued"));
        let rest = store.claim_leads(&c, now, 10).await.unwrap();
        let names: Vec<_> = rest.iter().map(|l| l.first_name.clone().unwrap()).collect();
        assert_eq!(names, ["ny-normal"], "LA is at 09:30, before the campaign's 10:00");
        assert!(store.claim_leads(&c, now, 10).await.unwrap().is_empty(), "nothing is claimed twice");
        // Two hours later LA is open.
        let later = store.claim_leads(&c, now + Duration::hours(2), 10).await.unwrap();
        assert_eq!(later.iter().map(|l| l.first_name.clone().unwrap()).collect::<Vec<_>>(), ["la-normal"]);

        // A busy attempt retries after the delay; it is not due before.
        let lead = &first[0];
        let step = next_step(AttemptResult::Busy, 1, &c.retry_policy, now);
        store.finish_attempt(&t, &lead.id, "busy", step, now).await.unwrap();
        let l = store.lead(&t, &lead.id).await.unwrap();
        assert_eq!((l.status.as_str(), l.call_attempts, l.last_disposition.as_deref()), ("pending", 1, Some("busy")));
        assert!(store.claim_leads(&c, now + Duration::minutes(30), 10).await.unwrap().is_empty(), "not due yet");
        let again = store.claim_leads(&c, now + Duration::minutes(61), 10).await.unwrap();
        assert_eq!(again.len(), 1);
        // Attempts exhausted → never again.
        store.finish_attempt(&t, &lead.id, "no_answer", NextStep::RetryAt(now), now).await.unwrap();
        store.finish_attempt(&t, &lead.id, "no_answer", NextStep::RetryAt(now), now).await.unwrap();
        assert_eq!(store.lead(&t, &lead.id).await.unwrap().call_attempts, 3);
        assert!(store.claim_leads(&c, now + Duration::hours(1), 10).await.unwrap().iter().all(|l| l.id != lead.id), "max_attempts reached");

        // Release puts claimed leads back.
        let released = store.release_queued(&t, &c.id).await.unwrap();
        assert_eq!(released, 3, "chi-high, ny-normal, la-normal");
        let (pending, _) = store.leads(&t, &LeadFilter { campaign_id: c.id.clone(), status: Some("pending".into()), ..Default::default() }).await.unwrap();
        assert_eq!(pending.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn concurrent_claims_never_overlap() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(&t, serde_json::from_value::<CampaignInput>(json!({"name": "C", "caller_id": "+14155551234", "timezone": "America/New_York"})).unwrap())
            .await
            .unwrap();
        let mut csv = String::from("phone\n");
        for i in 0..200 {
            csv.push_str(&format!("+1212555{:04}\n", 2000 + i));
        }
        store.import_leads(&t, &c.id, None, std::io::Cursor::new(csv.into_bytes()), &ImportOptions { default_country: "US".into() }).await.unwrap();
        let now = at("2024-06-03T16:30:00Z");
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (s, c) = (store.clone(), c.clone());
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..10 {
                        got.extend(s.claim_leads(&c, now, 7).await.unwrap().into_iter().map(|l| l.id));
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "no lead claimed twice");
        assert_eq!(all.len(), 200);
    })
    .await;
}

#[tokio::test]
async fn outside_the_schedule_nothing_is_claimed() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(&t, serde_json::from_value::<CampaignInput>(json!({"name": "C", "caller_id": "+14155551234", "schedule_start": "2024-07-01T00:00:00Z", "schedule_end": "2024-08-01T00:00:00Z"})).unwrap())
            .await
            .unwrap();
        store.import_leads(&t, &c.id, None, "phone,timezone\n+12125552301,America/New_York\n".as_bytes(), &ImportOptions { default_country: "US".into() }).await.unwrap();
        assert!(store.claim_leads(&c, at("2024-06-03T16:30:00Z"), 5).await.unwrap().is_empty());
        assert!(store.claim_leads(&c, at("2024-08-03T16:30:00Z"), 5).await.unwrap().is_empty());
        assert_eq!(store.claim_leads(&c, at("2024-07-03T16:30:00Z"), 5).await.unwrap().len(), 1);
    })
    .await;
}
