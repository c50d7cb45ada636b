//! Call records on both backends: create/update/transcript/control, every list filter, both
//! sort orders, pagination, stats and analytics against a hand-computed fixture, voice calls,
//! and the audit trail.

mod common;

use chrono::{DateTime, Utc};
use common::{on_each_backend, tenant};
use serde_json::json;
use switchboard_engine::calls::voice::VoiceCallInput;
use switchboard_engine::calls::{CallFilter, CallInput, EndCall, StartCall, Transcript};
use switchboard_engine::campaigns::CampaignInput;
use switchboard_engine::{Error, Store};

fn input(v: serde_json::Value) -> CallInput {
    serde_json::from_value(v).expect("call body")
}

/// The fixture: 8 calls; comments give what each filter below must find.
async fn fixture(store: &Store, t: &str) -> Vec<String> {
    let rows = [
        json!({"caller_phone": "+12125552301", "caller_name": "Ann Lee", "phone_number": "+14155551234", "direction": "inbound", "status": "completed", "outcome": "completed", "started_at": "2024-01-01T10:00:00Z", "ended_at": "2024-01-01T10:05:00Z", "customer_id": "cust-1", "metadata": {"tags": ["support", "vip"]}, "quality": {"jitter": 10.0, "packet_loss": 1.0, "mos_score": 4.0, "rtt": 80.0}}),
        json!({"caller_phone": "+12125552302", "caller_name": "Bob Ray", "phone_number": "+14155551234", "direction": "inbound", "status": "no-answer", "outcome": "missed", "started_at": "2024-01-02T11:00:00Z", "duration": 0}),
        json!({"caller_phone": "+12125552303", "caller_name": "Cy Twain", "phone_number": "+14155551234", "direction": "outbound", "status": "completed", "outcome": "voicemail", "disposition": "voicemail", "answered_by": "machine_end_beep", "started_at": "2024-01-03T10:30:00Z", "duration": 45, "metadata": {"tags": ["support"]}}),
        json!({"caller_phone": "+12125552304", "caller_name": "Dee Ann", "phone_number": "+14155551234", "direction": "outbound", "status": "completed", "outcome": "interested", "disposition": "answered", "answered_by": "human", "started_at": "2024-01-04T14:00:00Z", "duration": 600, "talk_time": 590, "cost": 0.25, "customer_id": "cust-1", "metadata": {"tags": ["sales", "vip"]}}),
        json!({"caller_phone": "+12125552305", "phone_number": "+14155551234", "direction": "outbound", "status": "busy", "outcome": "busy", "disposition": "busy", "started_at": "2024-01-05T09:00:00Z", "duration": 0}),
        json!({"caller_phone": "+12125552306", "caller_name": "Eve Stone", "phone_number": "+14155551234", "direction": "inbound", "status": "completed", "outcome": "completed", "started_at": "2024-01-06T10:15:00Z", "duration": 120, "transcript": {"segments": [{"speaker": "customer", "start_time": 0, "end_time": 2, "text": "hi", "confidence": 0.9}]}}),
        json!({"caller_phone": "+12125552307", "phone_number": "+14155551234", "direction": "outbound", "status": "failed", "outcome": "failed", "disposition": "failed", "started_at": "2024-01-07T16:00:00Z"}),
        json!({"caller_phone": "+12125552308", "caller_name": "Fay Ann", "phone_number": "+14155551234", "direction": "outbound", "status": "completed", "outcome": "qualified", "disposition": "answered", "answered_by": "human", "started_at": "2024-02-01T10:45:00Z", "duration": 300, "talk_time": 280, "cost": 0.1}),
    ];
    let mut ids = Vec::new();
    for r in rows {
        ids.push(
            store
                .create_call(t, input(r), "US", None)
                .await
                .expect("fixture call")
                .id,
        );
    }
    ids
}

fn f(v: serde_json::Value) -> CallFilter {
    serde_json::from_value(v).expect("filter")
}

async fn names(store: &Store, t: &str, filter: serde_json::Value) -> Vec<String> {
    let (calls, _) = store.calls(t, &f(filter)).await.expect("list");
    calls
        .into_iter()
        .map(|c| c.caller_phone.unwrap_or_default()[10..].to_string())
        .collect()
}

#[tokio::test]
async fn create_normalizes_derives_and_validates() {
    on_each_backend(|store| async move {
        let (t, u) = tenant(&store, "Acme").await;
        let c = store
            .create_call(&t, input(json!({"caller_phone": "(212) 555-2399", "phone_number": "+15559876543", "direction": "inbound", "status": "completed", "started_at": "2024-01-15T10:00:00Z", "ended_at": "2024-01-15T10:05:30Z", "twilio_call_sid": "CA1", "metadata": {"tags": ["support"], "notes": "billing", "campaign": "q1", "custom": {"priority": "high"}}})), "US", Some(&u))
            .await
            .unwrap();
        assert_eq!(c.caller_phone.as_deref(), Some("+12125552399"));
        assert_eq!((c.from_number.as_deref(), c.to_number.as_deref()), (Some("+12125552399"), Some("+15559876543")));
        assert_eq!(c.duration, Some(330), "derived from the times");
        assert_eq!((c.twilio_call_sid.as_deref(), c.call_sid.as_deref()), (Some("CA1"), Some("CA1")));
        assert_eq!(c.tags, ["support"]);
        assert_eq!(c.notes.as_deref(), Some("billing"));
        assert_eq!(c.metadata["custom"]["priority"], "high");
        assert_eq!(store.call(&t, &c.id).await.unwrap(), c, "read back equals written");

        let bad = input(json!({"caller_phone": "nope", "direction": "sideways", "status": "weird", "started_at": "2024-01-15T10:00:00Z", "ended_at": "2024-01-15T09:00:00Z", "quality": {"mos_score": 7}, "transcript": {"segments": [{"speaker": "a", "start_time": 5, "end_time": 1, "text": "x", "confidence": 2}]}}));
        let Err(Error::Validation { issues }) = store.create_call(&t, bad, "US", None).await else { panic!("expected validation") };
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["phone_number", "direction", "status", "caller_phone", "ended_at", "quality.mos_score", "transcript.segments[0].end_time", "transcript.segments[0].confidence"]);
        let (t2, _) = tenant(&store, "Other").await;
        assert!(matches!(store.call(&t2, &c.id).await, Err(Error::NotFound { .. })));
        let bad_ref = input(json!({"phone_number": "+15559876543", "direction": "outbound", "status": "initiated", "started_at": "2024-01-15T10:00:00Z", "campaign_id": uuid::Uuid::now_v7().to_string()}));
        assert!(matches!(store.create_call(&t, bad_ref, "US", None).await, Err(Error::Validation { .. })));
    })
    .await;
}

#[tokio::test]
async fn every_filter_and_sort_on_the_fixture() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        fixture(&store, &t).await;
        tenant(&store, "Other").await;
        // Default: started_at desc, page 1 of 10.
        assert_eq!(names(&store, &t, json!({})).await, ["08", "07", "06", "05", "04", "03", "02", "01"]);
        assert_eq!(names(&store, &t, json!({"sort_order": "asc"})).await, ["01", "02", "03", "04", "05", "06", "07", "08"]);
        // duration: nulls (07) last both ways; ties (02/05 at 0 s, 01/08 at 300 s) broken by id in the same order.
        assert_eq!(names(&store, &t, json!({"sort_by": "duration", "sort_order": "desc"})).await, ["04", "08", "01", "06", "03", "05", "02", "07"]);
        assert_eq!(names(&store, &t, json!({"sort_by": "duration", "sort_order": "asc"})).await, ["02", "05", "03", "06", "01", "08", "04", "07"]);
        assert_eq!(names(&store, &t, json!({"sort_by": "created_at", "sort_order": "asc"})).await, ["01", "02", "03", "04", "05", "06", "07", "08"]);
        assert_eq!(names(&store, &t, json!({"direction": "inbound"})).await, ["06", "02", "01"]);
        assert_eq!(names(&store, &t, json!({"status": "completed"})).await, ["08", "06", "04", "03", "01"]);
        assert_eq!(names(&store, &t, json!({"outcome": "missed"})).await, ["02"]);
        assert_eq!(names(&store, &t, json!({"disposition": "answered"})).await, ["08", "04"]);
        assert_eq!(names(&store, &t, json!({"answered_by": "human"})).await, ["08", "04"]);
        assert_eq!(names(&store, &t, json!({"customer_id": "cust-1"})).await, ["04", "01"]);
        assert_eq!(names(&store, &t, json!({"start_date": "2024-01-03", "end_date": "2024-01-05"})).await, ["05", "04", "03"], "end_date is a whole day");
        assert_eq!(names(&store, &t, json!({"date_from": "2024-01-31", "date_to": "2024-02-01"})).await, ["08"]);
        assert_eq!(names(&store, &t, json!({"start_date": "2024-01-04T14:00:00Z", "end_date": "2024-01-06T10:15:00Z"})).await, ["06", "05", "04"]);
        assert_eq!(names(&store, &t, json!({"min_duration": 100, "max_duration": 300})).await, ["08", "06", "01"]);
        assert_eq!(names(&store, &t, json!({"search": "ann"})).await, ["08", "04", "01"], "names, case-insensitive");
        assert_eq!(names(&store, &t, json!({"search": "552307"})).await, ["07"], "numbers");
        assert_eq!(names(&store, &t, json!({"has_transcript": true})).await, ["06"]);
        assert_eq!(names(&store, &t, json!({"has_transcript": false, "direction": "inbound"})).await, ["02", "01"]);
        assert_eq!(names(&store, &t, json!({"has_recording": true})).await, Vec::<String>::new());
        assert_eq!(names(&store, &t, json!({"tags": "vip"})).await, ["04", "01"]);
        assert_eq!(names(&store, &t, json!({"tags": "support,vip"})).await, ["01"], "all tags must match");
        // A combination, computed by hand: outbound, completed, in January, ≥ 30 s, tag vip or not.
        assert_eq!(names(&store, &t, json!({"direction": "outbound", "status": "completed", "start_date": "2024-01-01", "end_date": "2024-01-31", "min_duration": 30, "sort_by": "duration", "sort_order": "asc"})).await, ["03", "04"]);
        // Pagination arithmetic.
        let (page, p) = store.calls(&t, &f(json!({"page": 2, "limit": 3}))).await.unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!((p.current_page, p.total_pages, p.total_count, p.per_page, p.has_next, p.has_prev), (2, 3, 8, 3, true, true));
        let (page, p) = store.calls(&t, &f(json!({"page": 3, "limit": 3}))).await.unwrap();
        assert_eq!((page.len(), p.has_next), (2, false));
        let (page, p) = store.calls(&t, &f(json!({"limit": 5, "offset": 6}))).await.unwrap();
        assert_eq!((page.len(), p.current_page, p.has_prev), (2, 2, true));
        let (t3, _) = tenant(&store, "Third").await;
        assert_eq!(store.calls(&t3, &f(json!({}))).await.unwrap().1.total_count, 0, "tenant isolation");
    })
    .await;
}

#[tokio::test]
async fn stats_and_analytics_match_the_fixture() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        fixture(&store, &t).await;
        let s = store.call_stats(&t, &f(json!({}))).await.unwrap();
        assert_eq!((s.total_calls, s.answered_calls, s.missed_calls), (8, 5, 2));
        // durations 300 + 0 + 45 + 600 + 0 + 120 + (none) + 300 = 1365 over 7 calls.
        assert_eq!(s.total_duration, 1365);
        assert_eq!(s.average_duration, 195.0);
        assert_eq!(s.call_outcome_breakdown.get("completed"), Some(&2));
        assert_eq!(s.calls_by_direction.get("outbound"), Some(&5));
        assert_eq!(s.calls_by_status.get("completed"), Some(&5));
        let jan = store
            .call_stats(
                &t,
                &f(json!({"date_from": "2024-01-01", "date_to": "2024-01-31"})),
            )
            .await
            .unwrap();
        assert_eq!(jan.total_calls, 7);

        let sum = store.stats_summary(&t, &f(json!({}))).await.unwrap();
        assert_eq!(
            (
                sum.total_calls,
                sum.answered_calls,
                sum.voicemail_calls,
                sum.no_answer_calls,
                sum.busy_calls,
                sum.failed_calls
            ),
            (8, 2, 1, 1, 1, 1)
        );
        assert_eq!((sum.human_answered, sum.machine_answered), (2, 1));
        assert_eq!(sum.avg_talk_time, 435.0);
        assert_eq!(sum.total_cost, 0.35);
        let by = store.stats_by_disposition(&t, &f(json!({}))).await.unwrap();
        let by: Vec<(String, i64)> = by.into_iter().map(|d| (d.disposition, d.count)).collect();
        assert_eq!(
            by,
            [
                ("answered".to_string(), 2),
                ("busy".to_string(), 1),
                ("failed".to_string(), 1),
                ("voicemail".to_string(), 1)
            ]
        );

        let now: DateTime<Utc> = "2024-02-01T12:00:00Z".parse().unwrap();
        let a = store.analytics(&t, "month", None, None, now).await.unwrap();
        // 30 days back from Feb 1 12:00: Jan 2 12:00 onwards → calls 03..08 (6).
        assert_eq!(a.summary.total_calls, 6);
        assert_eq!(a.summary.connected_calls, 4, "03, 04, 06, 08");
        assert_eq!(a.summary.connection_rate, 66.67);
        assert_eq!(
            a.summary.conversion_rate, 50.0,
            "04 interested, 08 qualified"
        );
        assert_eq!(
            a.summary.average_call_duration, "00:03:33",
            "(45+600+0+120+300)/5 = 213 s"
        );
        assert_eq!(a.trends.calls_per_day, 0.2);
        assert_eq!(
            a.trends.peak_hours[0].hour, 10,
            "03, 06, 08 start at 10 UTC"
        );
        assert_eq!(a.trends.peak_hours[0].calls, 3);
        let d = store.analytics(&t, "week", None, None, now).await.unwrap();
        assert_eq!(d.summary.total_calls, 1);
        let q = store
            .analytics(
                &t,
                "month",
                None,
                None,
                "2024-01-05T00:00:00Z".parse().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                q.quality.average_jitter,
                q.quality.average_mos,
                q.quality.average_latency
            ),
            (10.0, 4.0, 40.0),
            "only call 01 has quality; latency = rtt/2"
        );
        assert!(matches!(
            store.analytics(&t, "year", None, None, now).await,
            Err(Error::Validation { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn control_start_update_end_and_audit_trail() {
    on_each_backend(|store| async move {
        let (t, u) = tenant(&store, "Acme").await;
        let c = store.create_campaign(&t, serde_json::from_value::<CampaignInput>(json!({"name": "C", "caller_id": "+14155551234"})).unwrap()).await.unwrap();
        store.import_leads(&t, &c.id, None, "phone,first_name,last_name\n+14155552671,Sara,Ahmed\n".as_bytes(), &switchboard_engine::import::ImportOptions { default_country: "US".into() }).await.unwrap();
        let (leads, _) = store.leads(&t, &switchboard_engine::leads::LeadFilter { campaign_id: c.id.clone(), ..Default::default() }).await.unwrap();
        let start: StartCall = serde_json::from_value(json!({"leadId": leads[0].id})).unwrap();
        let call = store.start_call(&t, start, "US", Some(&u)).await.unwrap();
        assert_eq!((call.status.as_str(), call.to_number.as_deref(), call.from_number.as_deref()), ("initiated", Some("+14155552671"), Some("+14155551234")));
        assert_eq!(call.caller_name.as_deref(), Some("Sara Ahmed"));
        assert_eq!(call.campaign_id.as_deref(), Some(c.id.as_str()));
        let upd = serde_json::from_value(json!({"status": "connected", "quality": {"latency": 85, "jitter": 12, "packetLoss": 0.5, "mos": 4.2}, "notes": "pricing"})).unwrap();
        let call = store.control_update(&t, &call.id, upd, Some(&u)).await.unwrap();
        assert!(call.answer_time.is_some());
        assert_eq!(call.quality.as_ref().unwrap()["mos_score"], 4.2);
        let end: EndCall = serde_json::from_value(json!({"outcome": "Interested", "disposition": "qualified", "tags": ["demo-scheduled"], "objections": ["pricing_concern"], "nextActions": ["send_proposal"]})).unwrap();
        let call = store.end_call(&t, &call.id, end, Some(&u)).await.unwrap();
        assert_eq!((call.status.as_str(), call.disposition.as_deref()), ("completed", Some("qualified")));
        assert!(call.end_time.is_some() && call.duration.is_some() && call.talk_time.is_some());
        assert_eq!(call.metadata["next_actions"], json!(["send_proposal"]));
        let t2: Transcript = serde_json::from_value(json!({"segments": [{"speaker": "agent", "start_time": 0.0, "end_time": 1.5, "text": "Hello", "confidence": 0.98}], "language": "en"})).unwrap();
        let call = store.set_transcript(&t, &call.id, t2, Some("https://asr.example/t/1".into()), Some(&u)).await.unwrap();
        assert!(call.has_transcript);

        let trail = store.call_audit(&t, &call.id).await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["call.start", "call.update", "call.end", "call.transcript"]);
        assert_eq!(trail[2].details.0["changes"]["status"], json!({"before": "connected", "after": "completed"}));
        assert_eq!(trail[1].user_id.as_deref(), Some(u.as_str()));
        let (t3, _) = tenant(&store, "Other").await;
        assert!(matches!(store.call_audit(&t3, &call.id).await, Err(Error::NotFound { .. })));
        let bad: StartCall = serde_json::from_value(json!({"phoneNumber": "garbage"})).unwrap();
        assert!(matches!(store.start_call(&t, bad, "US", None).await, Err(Error::Validation { .. })));
    })
    .await;
}

#[tokio::test]
async fn voice_calls_soft_delete_and_status_set() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store.create_campaign(&t, serde_json::from_value::<CampaignInput>(json!({"name": "C", "caller_id": "+14155551234"})).unwrap()).await.unwrap();
        let body: VoiceCallInput = serde_json::from_value(json!({"callId": "ultravox_123", "callsid": "twilio_456", "call_status": "initiated", "call_duration": 0, "call_data": {"direction": "outbound", "from": "+1234567890", "to": "+9876543210", "custom_params": {"k": 1}}})).unwrap();
        let id = store.voice_call_create(&t, &c.id, body, None).await.unwrap();
        let v = store.voice_call(&t, &id).await.unwrap();
        assert_eq!((v.call_id.as_deref(), v.call_sid.as_deref(), v.call_status.as_str()), (Some("ultravox_123"), Some("twilio_456"), "initiated"));
        assert_eq!(v.call_data, json!({"direction": "outbound", "from": "+1234567890", "to": "+9876543210", "custom_params": {"k": 1}}));
        let upd: VoiceCallInput = serde_json::from_value(json!({"call_status": "completed", "call_duration": 300})).unwrap();
        assert_eq!(store.voice_call_update(&t, &id, upd, None).await.unwrap().call_duration, 300);
        let bad: VoiceCallInput = serde_json::from_value(json!({"call_status": "answered", "call_data": {"from": "1234"}})).unwrap();
        let Err(Error::Validation { issues }) = store.voice_call_update(&t, &id, bad, None).await else { panic!() };
        assert_eq!(issues.len(), 2);
        assert_eq!(store.voice_calls_of_campaign(&t, &c.id, 1, 10).await.unwrap().len(), 1);
        store.voice_call_delete(&t, &id, None).await.unwrap();
        assert!(matches!(store.voice_call(&t, &id).await, Err(Error::NotFound { .. })));
        assert!(store.voice_calls_of_campaign(&t, &c.id, 1, 10).await.unwrap().is_empty());
        assert_eq!(store.calls(&t, &f(json!({}))).await.unwrap().1.total_count, 0, "gone from /api/calls too");
        assert!(matches!(store.voice_call_delete(&t, &id, None).await, Err(Error::NotFound { .. })));
    })
    .await;
}

#[tokio::test]
async fn batch_insert_is_listed_like_any_call() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let rows: Vec<_> = (0..1203)
            .map(|i| {
                let mut r = switchboard_engine::calls::CallRow::blank(&t);
                r.status = if i % 3 == 0 {
                    "completed".into()
                } else {
                    "no-answer".into()
                };
                r.duration = Some(i);
                r
            })
            .collect();
        assert_eq!(store.insert_calls_batch(&rows).await.unwrap(), 1203);
        let (_, p) = store
            .calls(&t, &f(json!({"status": "completed"})))
            .await
            .unwrap();
        assert_eq!(p.total_count, 401);
        assert_eq!(
            store
                .call_stats(&t, &f(json!({})))
                .await
                .unwrap()
                .total_duration,
            (0..1203).sum::<i64>()
        );
    })
    .await;
}
