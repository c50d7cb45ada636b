//! The store suite: the same tests on SQLite and PostgreSQL.

mod common;

use common::{on_each_backend, tenant};
use serde_json::json;
use switchboard_engine::agents::{AgentGroupInput, NewAgent};
use switchboard_engine::campaigns::{CampaignFilter, CampaignInput};
use switchboard_engine::import::ImportOptions;
use switchboard_engine::leads::{LeadFilter, LeadUpdate};
use switchboard_engine::tenancy::{NewUser, Role};
use switchboard_engine::Error;

fn campaign(body: serde_json::Value) -> CampaignInput {
    serde_json::from_value(body).expect("campaign body")
}

fn opts() -> ImportOptions {
    ImportOptions {
        default_country: "US".into(),
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    on_each_backend(|store| async move {
        assert!(
            store.migrate().await.unwrap().is_empty(),
            "second run applies nothing"
        );
        store.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn users_are_unique_by_email_case_insensitively() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let new = |email: &str| NewUser {
            email: email.into(),
            password_hash: "h".into(),
            role: Role::Agent,
            first_name: Some("A".into()),
            last_name: None,
            phone: None,
        };
        let u = store
            .create_user(&t, &new("Ann@Example.com"))
            .await
            .unwrap();
        assert_eq!(u.email, "ann@example.com");
        assert!(matches!(
            store.create_user(&t, &new("ann@example.COM")).await,
            Err(Error::Conflict { .. })
        ));
        let found = store
            .user_by_email("ANN@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, u.id);
        assert!(matches!(
            store
                .create_user("no-such-tenant", &new("b@example.com"))
                .await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn campaigns_round_trip_with_defaults_and_tenant_isolation() {
    on_each_backend(|store| async move {
        let (t1, _) = tenant(&store, "One").await;
        let (t2, _) = tenant(&store, "Two").await;
        let c = store
            .create_campaign(
                &t1,
                campaign(json!({"name": "Q1", "caller_id": "+14155551234"})),
            )
            .await
            .unwrap();
        assert_eq!(c.status, "draft");
        assert_eq!(c.retry_policy.max_attempts, 3);
        assert_eq!(c.dial_mode, "progressive");
        assert!((c.max_abandon_rate - 0.03).abs() < 1e-12);
        let got = store.campaign(&t1, &c.id).await.unwrap();
        assert_eq!(got, c, "what is read back equals what was written");
        assert!(matches!(
            store.campaign(&t2, &c.id).await,
            Err(Error::NotFound { .. })
        ));
        let (list, total) = store
            .campaigns(&t2, &CampaignFilter::default())
            .await
            .unwrap();
        assert!(list.is_empty() && total == 0);
        let (list, total) = store
            .campaigns(
                &t1,
                &CampaignFilter {
                    status: Some("draft".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((list.len(), total), (1, 1));
        let (list, _) = store
            .campaigns(
                &t1,
                &CampaignFilter {
                    status: Some("active".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(list.is_empty());
    })
    .await;
}

#[tokio::test]
async fn campaign_status_machine() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store.create_campaign(&t, campaign(json!({"name": "Q1", "caller_id": "+14155551234"}))).await.unwrap();
        assert!(matches!(store.pause_campaign(&t, &c.id).await, Err(Error::Conflict { .. })));
        assert_eq!(store.start_campaign(&t, &c.id).await.unwrap().status, "active");
        assert!(matches!(store.start_campaign(&t, &c.id).await, Err(Error::Conflict { .. })));
        assert_eq!(store.pause_campaign(&t, &c.id).await.unwrap().status, "paused");
        assert_eq!(store.start_campaign(&t, &c.id).await.unwrap().status, "active");
        let done = store.update_campaign(&t, &c.id, campaign(json!({"status": "completed"}))).await.unwrap();
        assert_eq!(done.status, "completed");
        assert!(matches!(store.start_campaign(&t, &c.id).await, Err(Error::Conflict { .. })));
        assert!(matches!(store.update_campaign(&t, &c.id, campaign(json!({"status": "cancelled"}))).await, Err(Error::Conflict { .. })));
        let future = store
            .create_campaign(&t, campaign(json!({"name": "Later", "caller_id": "+14155551234", "schedule_start": "2999-01-01T00:00:00Z"})))
            .await
            .unwrap();
        assert_eq!(store.start_campaign(&t, &future.id).await.unwrap().status, "scheduled");
    })
    .await;
}

#[tokio::test]
async fn campaign_update_keeps_absent_fields_and_clears_nulls() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let g = store.create_agent_group(&t, AgentGroupInput { name: Some("Closers".into()), ..Default::default() }).await.unwrap();
        let c = store
            .create_campaign(&t, campaign(json!({"name": "Q1", "caller_id": "+14155551234", "agent_group_id": g.id, "voicemail_message_url": "https://x.test/vm.wav"})))
            .await
            .unwrap();
        let u = store.update_campaign(&t, &c.id, campaign(json!({"voicemail_message_url": null, "retry_policy": {"max_attempts": 5}}))).await.unwrap();
        assert_eq!(u.voicemail_message_url, None);
        assert_eq!(u.agent_group_id.as_deref(), Some(g.id.as_str()));
        assert_eq!(u.retry_policy.max_attempts, 5);
        assert_eq!(u.retry_policy.delay_minutes, 60);
        let (t2, _) = tenant(&store, "Other").await;
        let g2 = store.create_agent_group(&t2, AgentGroupInput { name: Some("Theirs".into()), ..Default::default() }).await.unwrap();
        let err = store.update_campaign(&t, &c.id, campaign(json!({"agent_group_id": g2.id}))).await.unwrap_err();
        assert!(matches!(err, Error::Validation { ref issues } if issues[0].field == "agent_group_id"), "{err:?}");
        assert!(matches!(store.delete_agent_group(&t, &g.id).await, Err(Error::Conflict { .. })), "a group in use cannot be deleted");
    })
    .await;
}

const MIXED_CSV: &str = "\
First Name,Last Name,Phone Number,Country Code,Company
Sara,Ahmed,+14155552671,,ABC Corp
Raj,Patel,(415) 555-2672,US,
Anna,Berg,030 901820,DE,Berlin GmbH
Bad,Phone,12345,,
Dup,Row,+1 415 555 2671,,
Blocked,Number,+14155552673,,
Broken,Line
Wrong,Country,+14155552674,ZZ,
";

#[tokio::test]
async fn csv_import_reports_every_row_and_is_idempotent() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(
                &t,
                campaign(json!({"name": "Q1", "caller_id": "+14155551234"})),
            )
            .await
            .unwrap();
        store
            .add_dnc(&t, "+14155552673", Some("asked"), None)
            .await
            .unwrap();
        let report = store
            .import_leads(&t, &c.id, None, MIXED_CSV.as_bytes(), &opts())
            .await
            .unwrap();
        let r = &report.results;
        assert_eq!(
            (r.total, r.valid, r.invalid, r.duplicates, r.dnc, r.inserted),
            (8, 3, 3, 1, 1, 3),
            "{report:?}"
        );
        let rows: Vec<(u64, &str)> = report
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                (5, "phone"),
                (6, "phone"),
                (7, "phone"),
                (8, "row"),
                (9, "country")
            ],
            "{:?}",
            report.errors
        );
        assert_eq!(report.errors[1].error, "Duplicate of row 2");

        let (leads, total) = store
            .leads(
                &t,
                &LeadFilter {
                    campaign_id: c.id.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(total, 3);
        let phones: Vec<&str> = leads.iter().map(|l| l.phone_normalized.as_str()).collect();
        assert_eq!(phones, ["+14155552671", "+14155552672", "+4930901820"]);
        assert_eq!(
            leads[0].custom_fields.0.get("Company"),
            Some(&json!("ABC Corp"))
        );
        assert_eq!(leads[0].timezone.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(leads[2].country.as_deref(), Some("DE"));
        assert_eq!(leads[2].timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(store.campaign(&t, &c.id).await.unwrap().total_leads, 3);

        let again = store
            .import_leads(&t, &c.id, None, MIXED_CSV.as_bytes(), &opts())
            .await
            .unwrap();
        assert_eq!(again.results.inserted, 0);
        assert_eq!(
            again.results.duplicates, 4,
            "three existing + one in-file duplicate"
        );
        assert_eq!(
            store
                .leads(
                    &t,
                    &LeadFilter {
                        campaign_id: c.id.clone(),
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
                .1,
            3
        );
    })
    .await;
}

#[tokio::test]
async fn csv_import_with_mapping_and_bad_header() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(
                &t,
                campaign(json!({"name": "Q1", "caller_id": "+442071838750"})),
            )
            .await
            .unwrap();
        let mapping = [
            ("Tel".to_string(), "phone".to_string()),
            ("Who".to_string(), "first_name".to_string()),
        ]
        .into();
        let csv = "Tel,Who\n020 7183 8750,Ada\n";
        let r = store
            .import_leads(&t, &c.id, Some(mapping), csv.as_bytes(), &opts())
            .await
            .unwrap();
        assert_eq!(
            r.results.inserted, 1,
            "national number takes the campaign's country (GB) {r:?}"
        );
        let (leads, _) = store
            .leads(
                &t,
                &LeadFilter {
                    campaign_id: c.id.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(leads[0].phone_normalized, "+442071838750");
        assert_eq!(leads[0].first_name.as_deref(), Some("Ada"));

        let err = store
            .import_leads(&t, &c.id, None, "name,company\nx,y\n".as_bytes(), &opts())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation { .. }));
        let err = store
            .import_leads(&t, &c.id, None, "".as_bytes(), &opts())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation { .. }));
        assert_eq!(
            store
                .leads(
                    &t,
                    &LeadFilter {
                        campaign_id: c.id.clone(),
                        ..Default::default()
                    }
                )
                .await
                .unwrap()
                .1,
            1,
            "failed imports change nothing"
        );
    })
    .await;
}

#[tokio::test]
async fn dnc_marks_leads_and_lists() {
    on_each_backend(|store| async move {
        let (t, u) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(
                &t,
                campaign(json!({"name": "Q1", "caller_id": "+14155551234"})),
            )
            .await
            .unwrap();
        store
            .import_leads(
                &t,
                &c.id,
                None,
                "phone\n+14155552671\n+14155552672\n".as_bytes(),
                &opts(),
            )
            .await
            .unwrap();
        let (n, new) = store
            .add_dnc(&t, "+14155552671", None, Some(&u))
            .await
            .unwrap();
        assert!(new);
        assert_eq!(n.created_by.as_deref(), Some(u.as_str()));
        assert!(
            !store
                .add_dnc(&t, "+14155552671", None, None)
                .await
                .unwrap()
                .1,
            "adding twice is not new"
        );
        assert!(store.is_dnc(&t, "+14155552671").await.unwrap());
        let (leads, _) = store
            .leads(
                &t,
                &LeadFilter {
                    campaign_id: c.id.clone(),
                    status: Some("dnc".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(leads.len(), 1);
        assert!(leads[0].do_not_call);
        let (list, total) = store
            .dnc_numbers(&t, Some("2671"), None, None)
            .await
            .unwrap();
        assert_eq!((list.len(), total), (1, 1));
        let (t2, _) = tenant(&store, "Other").await;
        assert!(
            !store.is_dnc(&t2, "+14155552671").await.unwrap(),
            "DNC lists are per tenant"
        );
        store.remove_dnc(&t, "+14155552671").await.unwrap();
        assert!(matches!(
            store.remove_dnc(&t, "+14155552671").await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn lead_updates_validate_and_renormalize() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let c = store
            .create_campaign(
                &t,
                campaign(json!({"name": "Q1", "caller_id": "+14155551234"})),
            )
            .await
            .unwrap();
        store
            .import_leads(
                &t,
                &c.id,
                None,
                "phone,first_name\n+14155552671,A\n+12125552672,B\n".as_bytes(),
                &opts(),
            )
            .await
            .unwrap();
        let (leads, _) = store
            .leads(
                &t,
                &LeadFilter {
                    campaign_id: c.id.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let upd: LeadUpdate = serde_json::from_value(
            json!({"first_name": "Updated", "priority": "high", "notes": "n"}),
        )
        .unwrap();
        let l = store.update_lead(&t, &leads[0].id, upd).await.unwrap();
        assert_eq!(
            (
                l.first_name.as_deref(),
                l.priority.as_str(),
                l.priority_rank
            ),
            (Some("Updated"), "high", 2)
        );
        assert_eq!(store.lead(&t, &leads[0].id).await.unwrap(), l);
        let bad: LeadUpdate =
            serde_json::from_value(json!({"priority": "meh", "email": "nope"})).unwrap();
        let Err(Error::Validation { issues }) = store.update_lead(&t, &leads[0].id, bad).await
        else {
            panic!("expected validation")
        };
        assert_eq!(issues.len(), 2);
        let dup: LeadUpdate = serde_json::from_value(json!({"phone": "+1 212 555 2672"})).unwrap();
        assert!(matches!(
            store.update_lead(&t, &leads[0].id, dup).await,
            Err(Error::Conflict { .. })
        ));
        let (t2, _) = tenant(&store, "Other").await;
        assert!(matches!(
            store.lead(&t2, &leads[0].id).await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn agents_groups_status_and_stats() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "Acme").await;
        let g = store
            .create_agent_group(
                &t,
                AgentGroupInput {
                    name: Some("Closers".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_agent_group(
                    &t,
                    AgentGroupInput {
                        name: Some("Closers".into()),
                        ..Default::default()
                    }
                )
                .await,
            Err(Error::Conflict { .. })
        ));
        let a = store
            .create_agent(
                &t,
                NewAgent {
                    name: "John".into(),
                    phone: Some("+14155553333".into()),
                    agent_group_id: Some(g.id.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(a.status, "offline");
        assert_eq!(
            a.endpoint.as_deref(),
            Some("+14155553333"),
            "endpoint defaults to the phone"
        );
        let a = store
            .set_agent_status(&t, &a.id, "available")
            .await
            .unwrap();
        assert_eq!(a.status, "available");
        assert!(a.last_active_at.is_some());
        assert!(matches!(
            store.set_agent_status(&t, &a.id, "asleep").await,
            Err(Error::Validation { .. })
        ));
        assert_eq!(
            store
                .agents(&t, Some("available"), Some(&g.id))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store
            .agents(&t, Some("break"), None)
            .await
            .unwrap()
            .is_empty());
        let stats = store.agent_stats(&t, &a.id, None, None).await.unwrap();
        assert_eq!(
            (
                stats.total_calls,
                stats.answered_calls,
                stats.total_talk_time
            ),
            (0, 0, 0)
        );
        let bad = NewAgent {
            name: "".into(),
            phone: Some("555".into()),
            endpoint: Some("ftp://x".into()),
            max_concurrent_calls: Some(99),
            ..Default::default()
        };
        let Err(Error::Validation { issues }) = store.create_agent(&t, bad).await else {
            panic!("expected validation")
        };
        assert_eq!(issues.len(), 4, "{issues:?}");
        store.delete_agent_group(&t, &g.id).await.unwrap();
        assert_eq!(
            store.agent(&t, &a.id).await.unwrap().agent_group_id,
            None,
            "agents of a deleted group become ungrouped"
        );
    })
    .await;
}

#[tokio::test]
async fn audit_log_is_per_tenant() {
    on_each_backend(|store| async move {
        let (t, u) = tenant(&store, "Acme").await;
        let (t2, _) = tenant(&store, "Other").await;
        store
            .audit(
                &t,
                Some(&u),
                "campaign.create",
                "campaign",
                Some("c1"),
                json!({"name": "Q1"}),
            )
            .await
            .unwrap();
        let (rows, total) = store.audit_entries(&t, None, None).await.unwrap();
        assert_eq!((rows.len(), total), (1, 1));
        assert_eq!(rows[0].details.0["name"], "Q1");
        assert_eq!(store.audit_entries(&t2, None, None).await.unwrap().1, 0);
    })
    .await;
}
