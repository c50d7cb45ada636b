//! Property tests of the dialing engine's compliance invariants (issue 6, "Must show"):
//!
//! - no lead is claimed outside calling hours in its own zone (the campaign's when it has
//!   none): never before 08:00 or from 21:00 lead-local whatever the campaign says, nor
//!   outside the campaign's hours, DST gaps and folds included;
//! - no number on the tenant's DNC list and no lead flagged do-not-call is claimed or dialled;
//! - no lead is dialled more than `max_attempts` times;
//! - no lead ever has two calls at once,
//!
//! over random sequences of claims, attempt starts, results with retries, DNC changes, lead
//! edits and crashes (start-up recovery), and under concurrent dialers. Each runs on SQLite
//! and, when `SWITCHBOARD_TEST_PG_URL` is set, on PostgreSQL with fewer cases.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use common::{on_each_backend, tenant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use switchboard_engine::calls::{Call, CallFilter, CallRow};
use switchboard_engine::campaigns::{Campaign, CampaignInput};
use switchboard_engine::dialer::attempts::{CallPatch, EngineWrite};
use switchboard_engine::dialer::call::Disposition;
use switchboard_engine::dialer::retry::{next_step, NextStep};
use switchboard_engine::import::ImportOptions;
use switchboard_engine::leads::{Lead, LeadFilter, LeadUpdate};
use switchboard_engine::{Backend, Error, Store, StoreOptions};

type CaseResult = Result<(), TestCaseError>;

/// Runs a property on `store` with the backend's case count (a fresh tenant or campaign per
/// case is the body's business). Needs a multi-threaded runtime.
fn check<S, F, Fut>(
    store: &Store,
    name: &str,
    sqlite_cases: u32,
    pg_cases: u32,
    strategy: S,
    body: F,
) where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = CaseResult>,
{
    let cases = match store.backend() {
        Backend::Sqlite => sqlite_cases,
        Backend::Postgres => pg_cases,
    };
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    });
    let outcome =
        tokio::task::block_in_place(|| runner.run(&strategy, |v| handle.block_on(body(v))));
    if let Err(e) = outcome {
        panic!("{name} on {:?}: {e}", store.backend());
    }
}

async fn new_campaign(store: &Store, t: &str, mut body: serde_json::Value) -> Campaign {
    body["name"] = json!("C");
    body["caller_id"] = json!("+14155551234");
    store
        .create_campaign(t, serde_json::from_value::<CampaignInput>(body).unwrap())
        .await
        .expect("create campaign")
}

async fn import(store: &Store, t: &str, c: &Campaign, csv: String) -> Vec<Lead> {
    let report = store
        .import_leads(
            t,
            &c.id,
            None,
            std::io::Cursor::new(csv.into_bytes()),
            &ImportOptions {
                default_country: "US".into(),
            },
        )
        .await
        .expect("import");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    all_leads(store, t, &c.id).await
}

async fn all_leads(store: &Store, t: &str, campaign_id: &str) -> Vec<Lead> {
    let mut out = Vec::new();
    loop {
        let (page, _) = store
            .leads(
                t,
                &LeadFilter {
                    campaign_id: campaign_id.into(),
                    limit: Some(100),
                    offset: Some(out.len() as i64),
                    ..Default::default()
                },
            )
            .await
            .expect("list leads");
        let done = page.len() < 100;
        out.extend(page);
        if done {
            return out;
        }
    }
}

async fn all_calls(store: &Store, t: &str, campaign_id: &str) -> Vec<Call> {
    let mut out = Vec::new();
    loop {
        let (page, _) = store
            .calls(
                t,
                &CallFilter {
                    campaign_id: Some(campaign_id.into()),
                    limit: Some(100),
                    offset: Some(out.len() as i64),
                    ..Default::default()
                },
            )
            .await
            .expect("list calls");
        let done = page.len() < 100;
        out.extend(page);
        if done {
            return out;
        }
    }
}

/// The call row the runner writes when it starts an attempt.
fn call_row(c: &Campaign, lead: &Lead) -> CallRow {
    let mut row = CallRow::blank(&c.tenant_id);
    row.campaign_id = Some(c.id.clone());
    row.lead_id = Some(lead.id.clone());
    row.direction = "outbound".into();
    row.status = "initiated".into();
    row.from_number = Some(c.caller_id.clone());
    row.to_number = Some(lead.phone_normalized.clone());
    row.start_time = Some(switchboard_engine::store::now());
    row
}

/// The write-behind batch that ends an attempt.
fn end_writes(
    c: &Campaign,
    lead_id: &str,
    call_id: &str,
    d: Disposition,
    step: NextStep,
    at: DateTime<Utc>,
) -> Vec<EngineWrite> {
    vec![
        EngineWrite::Call {
            tenant_id: c.tenant_id.clone(),
            call_id: call_id.into(),
            patch: CallPatch {
                status: Some(d.call_status()),
                end_time: Some(at),
                disposition: Some(d.as_str().into()),
                ..Default::default()
            },
        },
        EngineWrite::LeadDone {
            tenant_id: c.tenant_id.clone(),
            lead_id: lead_id.into(),
            disposition: d.as_str().into(),
            step,
            at,
        },
    ]
}

/// The lead's next step as the runner decides it (an invalid number is given up, not DNC).
fn runner_step(d: Disposition, attempts: i64, c: &Campaign, now: DateTime<Utc>) -> NextStep {
    match next_step(d.attempt_result(), attempts, &c.retry_policy, now) {
        _ if d == Disposition::InvalidNumber => NextStep::GiveUp,
        other => other,
    }
}

const OPEN_CALL: [&str; 5] = ["initiated", "queued", "ringing", "answered", "in-progress"];

/// The store-level invariants, independent of any model: at most one open call per lead,
/// `call_attempts` equal to the lead's call rows and never above `max_attempts`.
async fn store_invariants(store: &Store, c: &Campaign) -> Result<Vec<Lead>, TestCaseError> {
    let calls = all_calls(store, &c.tenant_id, &c.id).await;
    let leads = all_leads(store, &c.tenant_id, &c.id).await;
    let mut rows: HashMap<&str, (i64, i64)> = HashMap::new();
    for call in &calls {
        let lead = call.lead_id.as_deref().expect("an engine call has a lead");
        let e = rows.entry(lead).or_default();
        e.0 += 1;
        if OPEN_CALL.contains(&call.status.as_str()) {
            e.1 += 1;
        }
    }
    for l in &leads {
        let (total, open) = rows.get(l.id.as_str()).copied().unwrap_or_default();
        prop_assert!(open <= 1, "lead {} has {open} calls at once", l.id);
        prop_assert_eq!(
            total,
            l.call_attempts,
            "call rows vs call_attempts of {}",
            &l.id
        );
        prop_assert!(
            total <= c.retry_policy.max_attempts,
            "lead {} dialled {total} times, max_attempts {}",
            l.id,
            c.retry_policy.max_attempts
        );
    }
    Ok(leads)
}

// ---------------------------------------------------------------------------------------
// Calling hours in the lead's zone, DST included.

/// Zones with DST both ways, half- and quarter-hour offsets, a midnight gap, and none.
const ZONES: [Tz; 11] = [
    chrono_tz::America::New_York,
    chrono_tz::Europe::London,
    chrono_tz::Australia::Sydney,
    chrono_tz::America::Sao_Paulo,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Pacific::Chatham,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::America::Santiago,
    chrono_tz::America::St_Johns,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Pacific::Honolulu,
];

fn offset_secs(tz: Tz, t: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// Seconds since local midnight at `t` in `tz`, by offset arithmetic.
fn local_secs(tz: Tz, t: DateTime<Utc>) -> u32 {
    (t.timestamp() + offset_secs(tz, t)).rem_euclid(86_400) as u32
}

/// Every UTC offset change of `ZONES` from 2018 (Brazil still had DST) to 2027, to the second.
fn transitions() -> &'static [(usize, DateTime<Utc>)] {
    static T: OnceLock<Vec<(usize, DateTime<Utc>)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut out = Vec::new();
        let end = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
        for (i, &tz) in ZONES.iter().enumerate() {
            let mut t = Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap();
            while t < end {
                let next = t + Duration::hours(6);
                if offset_secs(tz, t) != offset_secs(tz, next) {
                    let at = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
                    let (mut lo, mut hi) = (t.timestamp(), next.timestamp());
                    while hi - lo > 1 {
                        let mid = lo + (hi - lo) / 2;
                        if offset_secs(tz, at(mid)) == offset_secs(tz, t) {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    out.push((i, at(hi)));
                }
                t = next;
            }
        }
        out
    })
}

/// The instant of local `secs` after midnight on the local day of `around` in `tz` (in a
/// gap, the instant the offset before the gap would give).
fn local_instant(tz: Tz, around: DateTime<Utc>, secs: u32) -> DateTime<Utc> {
    let day = around.with_timezone(&tz).date_naive();
    let naive: NaiveDateTime =
        day.and_hms_opt(0, 0, 0).unwrap() + Duration::seconds(i64::from(secs));
    match tz.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => {
            let guess = Utc.from_utc_datetime(&naive);
            guess - Duration::seconds(offset_secs(tz, guess - Duration::hours(6)))
        }
    }
}

/// Instants near DST transitions, near 08:00 / 21:00 local on days around them, or anywhere.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let near_transition = (
        prop::sample::select(transitions()),
        -40 * 3600i64..40 * 3600,
    )
        .prop_map(|((_, t), d)| t + Duration::seconds(d));
    let near_edge = (
        prop::sample::select(transitions()),
        -2i64..=2,
        prop::sample::select(vec![8 * 3600u32, 21 * 3600]),
        -150i64..=150,
    )
        .prop_map(|((z, t), day, edge, d)| {
            local_instant(ZONES[z], t + Duration::days(day), edge) + Duration::seconds(d)
        });
    let base = Utc.with_ymd_and_hms(2018, 1, 1, 0, 0, 0).unwrap();
    let anywhere = (0i64..10 * 365 * 86_400).prop_map(move |s| base + Duration::seconds(s));
    prop_oneof![3 => near_transition, 3 => near_edge, 1 => anywhere]
}

/// Campaign hours (start < end): often wider than the legal window, sometimes anything.
fn campaign_hours() -> impl Strategy<Value = (u32, u32)> {
    prop_oneof![
        (0u32..8 * 3600, 21 * 3600u32..86_400),
        (0u32..86_399).prop_flat_map(|s| (Just(s), s + 1..86_400)),
    ]
}

fn hhmmss(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[derive(Debug, Clone)]
struct HoursCase {
    campaign_zone: Tz,
    hours: (u32, u32),
    instants: Vec<DateTime<Utc>>,
}

async fn hours_case(store: &Store, case: HoursCase) -> CaseResult {
    let (t, _) = tenant(store, "Hours").await;
    let (start, end) = case.hours;
    let c = new_campaign(
        store,
        &t,
        json!({"timezone": case.campaign_zone.name(), "calling_hours_start": hhmmss(start), "calling_hours_end": hhmmss(end)}),
    )
    .await;
    // One lead per zone, and toll-free numbers, which have no zone of their own.
    let mut csv = String::from("phone,timezone\n");
    for (i, tz) in ZONES.iter().enumerate() {
        csv.push_str(&format!("+1212555{:04},{}\n", 2000 + i, tz.name()));
    }
    csv.push_str("+18002345678,\n+18882345679,\n");
    let leads = import(store, &t, &c, csv).await;
    prop_assert_eq!(leads.len(), ZONES.len() + 2);
    prop_assert!(
        leads.iter().any(|l| l.timezone.is_none()),
        "some lead must fall back to the campaign's zone"
    );
    let zone_of = |l: &Lead| -> Tz {
        l.timezone
            .as_deref()
            .unwrap_or(&c.timezone)
            .parse()
            .expect("a stored zone parses")
    };
    for &now in &case.instants {
        let claimed = store.claim_leads(&c, now, 100).await.unwrap();
        for l in &claimed {
            let tz = zone_of(l);
            let s = local_secs(tz, now);
            prop_assert!(
                (8 * 3600..21 * 3600).contains(&s),
                "lead in {} claimed at {now} = {} local, outside 08:00-21:00",
                tz.name(),
                hhmmss(s)
            );
            prop_assert!(
                start <= s && s < end,
                "lead in {} claimed at {now} = {} local, outside the campaign's {}-{}",
                tz.name(),
                hhmmss(s),
                hhmmss(start),
                hhmmss(end)
            );
        }
        // And every lead inside both windows is claimed: the hopper is not just empty.
        let want: HashSet<&str> = leads
            .iter()
            .filter(|l| {
                let s = local_secs(zone_of(l), now);
                s >= start.max(8 * 3600) && s < end.min(21 * 3600)
            })
            .map(|l| l.id.as_str())
            .collect();
        let got: HashSet<&str> = claimed.iter().map(|l| l.id.as_str()).collect();
        prop_assert_eq!(got, want, "claimed at {}", now);
        store.release_claimed(&t, &c.id).await.unwrap();
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_claimed_outside_calling_hours_in_the_leads_zone() {
    // The strategy must reach both DST directions in the listed zones.
    assert!(transitions().len() > 100, "{}", transitions().len());
    for name in [
        "America/Sao_Paulo",
        "Pacific/Chatham",
        "Australia/Lord_Howe",
    ] {
        assert!(
            transitions().iter().any(|(z, _)| ZONES[*z].name() == name),
            "{name}"
        );
    }
    on_each_backend(|store| async move {
        let strategy = (
            prop::sample::select(ZONES.to_vec()),
            campaign_hours(),
            prop::collection::vec(instant(), 1..8),
        )
            .prop_map(|(campaign_zone, hours, instants)| HoursCase {
                campaign_zone,
                hours,
                instants,
            });
        check(&store, "calling hours", 64, 8, strategy, |case| {
            hours_case(&store, case)
        });
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// A model of the engine's use of the store: claims, attempts, results, DNC, edits, crashes.

#[derive(Debug, Clone)]
enum Act {
    /// `claim_leads(now, n)`.
    Claim(usize),
    /// A claimed lead dialled the runner's way: DNC check at dial time, then `begin_attempt`.
    Begin(usize),
    /// `begin_attempt` on any lead the hopper ever returned (a stale copy).
    BeginStale(usize),
    /// An in-progress call ends with a disposition (index into `Disposition::ALL`).
    Finish(usize, usize),
    /// Minutes pass.
    Advance(i64),
    /// The engine dies; start-up recovery runs.
    Crash,
    /// The campaign pauses: claimed leads go back.
    Release,
    AddDnc(usize),
    RemoveDnc(usize),
    /// `update_lead {do_not_call: true}`.
    FlagDnc(usize),
    /// `update_lead {do_not_call: false, status: pending}`.
    Reconsent(usize),
    /// `update_lead {status: pending}`.
    SetPending(usize),
    /// `update_lead {notes}`.
    Edit(usize),
}

fn act() -> impl Strategy<Value = Act> {
    let i = || 0usize..64;
    prop_oneof![
        6 => (1usize..=4).prop_map(Act::Claim),
        6 => i().prop_map(Act::Begin),
        2 => i().prop_map(Act::BeginStale),
        5 => (i(), 0..Disposition::ALL.len()).prop_map(|(k, d)| Act::Finish(k, d)),
        3 => (1i64..240).prop_map(Act::Advance),
        1 => (1i64..6 * 1440).prop_map(Act::Advance),
        2 => Just(Act::Crash),
        1 => Just(Act::Release),
        2 => i().prop_map(Act::AddDnc),
        1 => i().prop_map(Act::RemoveDnc),
        1 => i().prop_map(Act::FlagDnc),
        2 => i().prop_map(Act::Reconsent),
        1 => i().prop_map(Act::SetPending),
        1 => i().prop_map(Act::Edit),
    ]
}

#[derive(Debug, Clone)]
struct SeqCase {
    max_attempts: i64,
    delay_minutes: i64,
    retry: (bool, bool, bool),
    start: DateTime<Utc>,
    acts: Vec<Act>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Queued,
    Calling,
    /// completed, failed or dnc.
    Done,
}

#[derive(Debug)]
struct ModelLead {
    id: String,
    phone: String,
    st: St,
    flagged: bool,
    begun: i64,
    due: Option<DateTime<Utc>>,
    call: Option<String>,
}

struct Model {
    now: DateTime<Utc>,
    leads: Vec<ModelLead>,
    listed: HashSet<String>,
    /// Claimed copies not yet handed to `Begin`.
    claimed: Vec<Lead>,
    /// Every copy the hopper ever returned.
    ever: Vec<Lead>,
}

const NY: Tz = chrono_tz::America::New_York;

impl Model {
    fn idx(&self, id: &str) -> usize {
        self.leads
            .iter()
            .position(|l| l.id == id)
            .expect("known lead")
    }

    fn in_hours(&self) -> bool {
        (8 * 3600..21 * 3600).contains(&local_secs(NY, self.now))
    }

    fn claimable(&self, l: &ModelLead, max: i64) -> bool {
        l.st == St::Pending
            && !l.flagged
            && !self.listed.contains(&l.phone)
            && l.begun < max
            && l.due.is_none_or(|d| d <= self.now)
            && self.in_hours()
    }

    /// A lead flagged or listed while its call was up ends as dnc when the call ends.
    fn call_ended(&mut self, i: usize) {
        let l = &mut self.leads[i];
        l.call = None;
        if l.flagged {
            l.st = St::Done;
        }
    }
}

async fn sequence_case(store: &Store, case: SeqCase) -> CaseResult {
    // Leftovers of an earlier failing case would skew the recovery counts.
    store.recover_interrupted().await.unwrap();
    let (t, _) = tenant(store, "Seq").await;
    let (na, busy, vm) = case.retry;
    let c = new_campaign(
        store,
        &t,
        json!({"timezone": "America/New_York", "calling_hours_start": "00:00", "calling_hours_end": "23:59:59",
               "retry_policy": {"max_attempts": case.max_attempts, "delay_minutes": case.delay_minutes,
                                "retry_on_no_answer": na, "retry_on_busy": busy, "retry_on_voicemail": vm}}),
    )
    .await;
    let max = c.retry_policy.max_attempts;
    let mut csv = String::from("phone,timezone\n");
    for i in 0..5 {
        csv.push_str(&format!("+1212555{:04},America/New_York\n", 3000 + i));
    }
    let leads = import(store, &t, &c, csv).await;
    let mut m = Model {
        now: case.start,
        leads: leads
            .iter()
            .map(|l| ModelLead {
                id: l.id.clone(),
                phone: l.phone_normalized.clone(),
                st: St::Pending,
                flagged: false,
                begun: 0,
                due: None,
                call: None,
            })
            .collect(),
        listed: HashSet::new(),
        claimed: Vec::new(),
        ever: Vec::new(),
    };
    let n = m.leads.len();
    let upd = |v: serde_json::Value| serde_json::from_value::<LeadUpdate>(v).unwrap();

    for (step_no, a) in case.acts.iter().enumerate() {
        let ctx = format!("step {step_no} {a:?} at {}", m.now);
        match *a {
            Act::Claim(k) => {
                let want = m.leads.iter().filter(|l| m.claimable(l, max)).count();
                let got = store.claim_leads(&c, m.now, k).await.unwrap();
                for l in &got {
                    let ml = &m.leads[m.idx(&l.id)];
                    prop_assert!(
                        !m.listed.contains(&ml.phone),
                        "{ctx}: claimed a number on the DNC list"
                    );
                    prop_assert!(!ml.flagged, "{ctx}: claimed a do-not-call lead");
                    prop_assert!(ml.st != St::Calling, "{ctx}: claimed a lead being called");
                    prop_assert!(ml.begun < max, "{ctx}: claimed a lead out of attempts");
                    prop_assert!(m.in_hours(), "{ctx}: claimed outside 08:00-21:00 New York");
                    prop_assert!(m.claimable(ml, max), "{ctx}: claimed {:?}", ml);
                }
                prop_assert_eq!(got.len(), want.min(k), "{}: claim count", ctx);
                for l in got {
                    let i = m.idx(&l.id);
                    m.leads[i].st = St::Queued;
                    m.claimed.push(l.clone());
                    m.ever.push(l);
                }
            }
            Act::Begin(k) | Act::BeginStale(k) => {
                let stale = matches!(a, Act::BeginStale(_));
                let pool = if stale { &mut m.ever } else { &mut m.claimed };
                if pool.is_empty() {
                    continue;
                }
                let lead = if stale {
                    pool[k % pool.len()].clone()
                } else {
                    pool.remove(k % pool.len())
                };
                let i = m.idx(&lead.id);
                if !stale && store.is_dnc(&t, &lead.phone_normalized).await.unwrap() {
                    prop_assert!(m.listed.contains(&m.leads[i].phone), "{ctx}: is_dnc");
                    store.mark_lead_dnc(&t, &lead.id).await.unwrap();
                    if m.leads[i].st == St::Queued {
                        m.leads[i].st = St::Done;
                        m.leads[i].flagged = true;
                    }
                } else if !stale {
                    prop_assert!(!m.listed.contains(&m.leads[i].phone), "{ctx}: is_dnc");
                }
                let row = call_row(&c, &lead);
                let ok = store.begin_attempt(&c, &lead, &row).await.unwrap();
                let ml = &mut m.leads[i];
                if ok {
                    prop_assert!(
                        ml.st != St::Calling,
                        "{ctx}: a second call to a lead being called"
                    );
                    prop_assert!(
                        ml.call.is_none(),
                        "{ctx}: a second call to a lead being called"
                    );
                    prop_assert!(!ml.flagged, "{ctx}: dialled a do-not-call lead");
                    prop_assert!(!m.listed.contains(&ml.phone), "{ctx}: dialled a DNC number");
                    prop_assert!(ml.begun < max, "{ctx}: dialled beyond max_attempts");
                }
                let expected = ml.st == St::Queued && !ml.flagged && ml.begun < max;
                prop_assert_eq!(ok, expected, "{}: begin_attempt on {:?}", ctx, ml);
                if ok {
                    ml.st = St::Calling;
                    ml.begun += 1;
                    ml.call = Some(row.id);
                }
            }
            Act::Finish(k, d) => {
                let up: Vec<usize> = (0..n).filter(|&i| m.leads[i].call.is_some()).collect();
                if up.is_empty() {
                    continue;
                }
                let i = up[k % up.len()];
                let d = Disposition::ALL[d];
                let step = runner_step(d, m.leads[i].begun, &c, m.now);
                let call_id = m.leads[i].call.clone().unwrap();
                store
                    .apply_engine_writes(&end_writes(&c, &m.leads[i].id, &call_id, d, step, m.now))
                    .await
                    .unwrap();
                m.call_ended(i);
                let l = &mut m.leads[i];
                if l.st == St::Calling {
                    match step {
                        NextStep::RetryAt(at) => {
                            prop_assert!(l.begun < max, "{ctx}: a retry beyond max_attempts");
                            l.st = St::Pending;
                            l.due = Some(at);
                        }
                        NextStep::DoNotCall => {
                            l.st = St::Done;
                            l.flagged = true;
                        }
                        NextStep::Completed | NextStep::GiveUp => l.st = St::Done,
                    }
                }
            }
            Act::Advance(minutes) => m.now += Duration::minutes(minutes),
            Act::Crash => {
                let rec = store.recover_interrupted().await.unwrap();
                let (mut closed, mut failed, mut requeued) = (0, 0, 0);
                for i in 0..n {
                    let l = &mut m.leads[i];
                    if l.call.is_some() {
                        closed += 1;
                        if !l.flagged {
                            if l.begun >= max {
                                failed += 1;
                                l.st = St::Done;
                            } else {
                                requeued += 1;
                                l.st = St::Pending;
                            }
                        }
                        m.call_ended(i);
                    } else if l.st == St::Queued {
                        requeued += 1;
                        l.st = St::Pending;
                    }
                }
                prop_assert_eq!(
                    (rec.calls_closed, rec.leads_failed, rec.leads_requeued),
                    (closed, failed, requeued),
                    "{}: recovery",
                    ctx
                );
                m.claimed.clear();
            }
            Act::Release => {
                let back = store.release_claimed(&t, &c.id).await.unwrap();
                let mut want = 0;
                for l in &mut m.leads {
                    if l.st == St::Queued {
                        l.st = St::Pending;
                        want += 1;
                    }
                }
                prop_assert_eq!(back, want, "{}: released", ctx);
                m.claimed.clear();
            }
            Act::AddDnc(k) => {
                let i = k % n;
                let phone = m.leads[i].phone.clone();
                let (_, new) = store
                    .add_dnc(&t, &phone, Some("asked"), None)
                    .await
                    .unwrap();
                prop_assert_eq!(new, m.listed.insert(phone.clone()), "{}: add_dnc", ctx);
                prop_assert!(
                    store.is_dnc(&t, &phone).await.unwrap(),
                    "{ctx}: is_dnc after add"
                );
                let l = &mut m.leads[i];
                l.flagged = true;
                if matches!(l.st, St::Pending | St::Queued) {
                    l.st = St::Done;
                }
            }
            Act::RemoveDnc(k) => {
                let phone = m.leads[k % n].phone.clone();
                let r = store.remove_dnc(&t, &phone).await;
                if m.listed.remove(&phone) {
                    prop_assert!(r.is_ok(), "{ctx}: remove_dnc {r:?}");
                } else {
                    prop_assert!(
                        matches!(r, Err(Error::NotFound { .. })),
                        "{ctx}: remove_dnc {r:?}"
                    );
                }
                prop_assert!(
                    !store.is_dnc(&t, &phone).await.unwrap(),
                    "{ctx}: is_dnc after remove"
                );
            }
            Act::FlagDnc(k) => {
                let i = k % n;
                store
                    .update_lead(&t, &m.leads[i].id, upd(json!({"do_not_call": true})))
                    .await
                    .unwrap();
                let l = &mut m.leads[i];
                l.flagged = true;
                if matches!(l.st, St::Pending | St::Queued) {
                    l.st = St::Done;
                }
            }
            Act::Reconsent(k) | Act::SetPending(k) => {
                let i = k % n;
                let body = if matches!(a, Act::Reconsent(_)) {
                    json!({"do_not_call": false, "status": "pending"})
                } else {
                    json!({"status": "pending"})
                };
                let r = store.update_lead(&t, &m.leads[i].id, upd(body)).await;
                let l = &mut m.leads[i];
                if matches!(l.st, St::Queued | St::Calling) {
                    prop_assert!(
                        matches!(r, Err(Error::Conflict { .. })),
                        "{ctx}: a status change of a lead the engine holds must be refused: {r:?}"
                    );
                } else {
                    prop_assert!(r.is_ok(), "{ctx}: {r:?}");
                    l.st = St::Pending;
                    if matches!(a, Act::Reconsent(_)) {
                        l.flagged = false;
                    }
                }
            }
            Act::Edit(k) => {
                let i = k % n;
                let r = store
                    .update_lead(
                        &t,
                        &m.leads[i].id,
                        upd(json!({"notes": format!("step {step_no}")})),
                    )
                    .await;
                prop_assert!(r.is_ok(), "{ctx}: {r:?}");
            }
        }
        let stored = store_invariants(store, &c).await?;
        for l in &stored {
            let ml = &m.leads[m.idx(&l.id)];
            prop_assert_eq!(l.call_attempts, ml.begun, "{}: attempts of {}", &ctx, &l.id);
            prop_assert_eq!(
                l.do_not_call,
                ml.flagged,
                "{}: do_not_call of {}",
                &ctx,
                &l.id
            );
            let status_ok = match ml.st {
                St::Pending => l.status == "pending",
                St::Queued => l.status == "queued",
                // Put on the DNC list or flagged while the call is up.
                St::Calling => l.status == "calling" || (ml.flagged && l.status == "dnc"),
                St::Done => matches!(l.status.as_str(), "completed" | "failed" | "dnc"),
            };
            prop_assert!(status_ok, "{ctx}: stored status {} for {:?}", l.status, ml);
        }
    }

    // Drain: every call ends, days pass, whatever is dialable is dialled until nothing is.
    for round in 0..=max + 1 {
        for i in 0..n {
            if let Some(call_id) = m.leads[i].call.clone() {
                let d = Disposition::NoAnswer;
                let step = runner_step(d, m.leads[i].begun, &c, m.now);
                store
                    .apply_engine_writes(&end_writes(&c, &m.leads[i].id, &call_id, d, step, m.now))
                    .await
                    .unwrap();
                m.leads[i].call = None;
            }
        }
        store.release_claimed(&t, &c.id).await.unwrap();
        m.now = local_instant(NY, m.now + Duration::days(4), 12 * 3600);
        let got = store.claim_leads(&c, m.now, 100).await.unwrap();
        if got.is_empty() {
            break;
        }
        prop_assert!(round <= max, "still dialling after {round} rounds");
        for lead in got {
            let i = m.idx(&lead.id);
            prop_assert!(
                !store.is_dnc(&t, &lead.phone_normalized).await.unwrap(),
                "drain claimed a DNC number"
            );
            let row = call_row(&c, &lead);
            prop_assert!(
                store.begin_attempt(&c, &lead, &row).await.unwrap(),
                "drain: begin"
            );
            m.leads[i].begun += 1;
            m.leads[i].call = Some(row.id);
        }
    }
    let stored = store_invariants(store, &c).await?;
    let mut blocked = 0;
    for l in &stored {
        let listed = store.is_dnc(&t, &l.phone_normalized).await.unwrap();
        // Pending may remain only what nobody may dial: a listed number, a do-not-call flag,
        // or a lead a user set back to pending with no attempts left.
        let ok = matches!(l.status.as_str(), "completed" | "failed" | "dnc")
            || (l.status == "pending" && (listed || l.do_not_call || l.call_attempts >= max));
        prop_assert!(
            ok,
            "lead left {} with {} attempts of {}",
            l.status,
            l.call_attempts,
            max
        );
        blocked += i64::from(l.status == "pending");
    }
    prop_assert_eq!(store.leads_left(&t, &c.id).await.unwrap(), blocked);
    let calls = all_calls(store, &t, &c.id).await;
    let camp = store.campaign(&t, &c.id).await.unwrap();
    prop_assert_eq!(camp.calls_made, calls.len() as i64, "calls_made counter");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_dnc_and_single_call_hold_over_random_engine_histories() {
    on_each_backend(|store| async move {
        let start = prop::sample::select(vec![
            // Around New York's DST changes, and an ordinary day.
            Utc.with_ymd_and_hms(2024, 3, 9, 11, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 11, 2, 11, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 6, 3, 11, 0, 0).unwrap(),
        ]);
        let strategy = (
            1i64..=4,
            1i64..=90,
            any::<(bool, bool, bool)>(),
            start,
            0i64..48 * 60,
            prop::collection::vec(act(), 10..50),
        )
            .prop_map(
                |(max_attempts, delay_minutes, retry, start, offset, acts)| SeqCase {
                    max_attempts,
                    delay_minutes,
                    retry,
                    start: start + Duration::minutes(offset),
                    acts,
                },
            );
        check(&store, "engine histories", 64, 8, strategy, |case| {
            sequence_case(&store, case)
        });
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Examples: the DNC list and flag, and a lead being called cannot be freed.

fn june() -> DateTime<Utc> {
    // 12:30 in New York.
    Utc.with_ymd_and_hms(2024, 6, 3, 16, 30, 0).unwrap()
}

async fn ny_campaign(store: &Store, t: &str, numbers: &[&str]) -> (Campaign, Vec<Lead>) {
    let c = new_campaign(
        store,
        t,
        json!({"timezone": "America/New_York", "retry_policy": {"max_attempts": 3, "delay_minutes": 5}}),
    )
    .await;
    let mut csv = String::from("phone\n");
    for n in numbers {
        csv.push_str(n);
        csv.push('\n');
    }
    let leads = import(store, t, &c, csv).await;
    (c, leads)
}

fn ids(leads: &[Lead]) -> Vec<&str> {
    let mut v: Vec<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn dnc_list_and_flag_keep_leads_from_being_dialled() {
    on_each_backend(|store| async move {
        let (a, _) = tenant(&store, "A").await;
        let (b, _) = tenant(&store, "B").await;
        let nums = ["+12125554001", "+12125554002", "+12125554003"];
        let (c, leads) = ny_campaign(&store, &a, &nums).await;
        let (cb, leads_b) = ny_campaign(&store, &b, &nums[..1]).await;

        assert!(!store.is_dnc(&a, nums[0]).await.unwrap());
        assert!(
            store
                .add_dnc(&a, nums[0], Some("asked"), None)
                .await
                .unwrap()
                .1
        );
        assert!(
            !store.add_dnc(&a, nums[0], None, None).await.unwrap().1,
            "already listed"
        );
        assert!(store.is_dnc(&a, nums[0]).await.unwrap());
        assert!(
            !store.is_dnc(&b, nums[0]).await.unwrap(),
            "another tenant's list"
        );
        let l0 = store.lead(&a, &leads[0].id).await.unwrap();
        assert_eq!((l0.status.as_str(), l0.do_not_call), ("dnc", true));

        let got = store.claim_leads(&c, june(), 10).await.unwrap();
        assert_eq!(
            ids(&got),
            ids(&leads[1..]),
            "the listed number is not claimed"
        );
        // Tenant B's lead with the same number is dialable.
        assert_eq!(
            ids(&store.claim_leads(&cb, june(), 10).await.unwrap()),
            ids(&leads_b)
        );

        // Found on the list at dial time: marked dnc, never dialled.
        let l1 = got.iter().find(|l| l.id == leads[1].id).unwrap();
        store.mark_lead_dnc(&a, &l1.id).await.unwrap();
        let s1 = store.lead(&a, &l1.id).await.unwrap();
        assert_eq!(
            (
                s1.status.as_str(),
                s1.do_not_call,
                s1.last_disposition.as_deref(),
                s1.call_attempts
            ),
            ("dnc", true, Some("dnc"), 0)
        );
        assert!(!store
            .begin_attempt(&c, l1, &call_row(&c, l1))
            .await
            .unwrap());
        // A lead being called is not touched by mark_lead_dnc.
        let l2 = got.iter().find(|l| l.id == leads[2].id).unwrap();
        assert!(store
            .begin_attempt(&c, l2, &call_row(&c, l2))
            .await
            .unwrap());
        store.mark_lead_dnc(&a, &l2.id).await.unwrap();
        let s2 = store.lead(&a, &l2.id).await.unwrap();
        assert_eq!((s2.status.as_str(), s2.do_not_call), ("calling", false));

        // Removing a number does not make its leads dialable again.
        store.remove_dnc(&a, nums[0]).await.unwrap();
        assert!(!store.is_dnc(&a, nums[0]).await.unwrap());
        assert!(matches!(
            store.remove_dnc(&a, nums[0]).await,
            Err(Error::NotFound { .. })
        ));
        store.release_claimed(&a, &c.id).await.unwrap();
        assert!(store
            .claim_leads(&c, june() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_lead_being_called_cannot_be_made_dialable_again() {
    on_each_backend(|store| async move {
        let (t, _) = tenant(&store, "A").await;
        let (c, leads) = ny_campaign(&store, &t, &["+12125554101"]).await;
        let upd = |v: serde_json::Value| serde_json::from_value::<LeadUpdate>(v).unwrap();
        let lead = store.claim_leads(&c, june(), 1).await.unwrap().remove(0);
        // Claimed: the engine holds it.
        assert!(matches!(
            store
                .update_lead(&t, &lead.id, upd(json!({"status": "pending"})))
                .await,
            Err(Error::Conflict { .. })
        ));
        let row = call_row(&c, &lead);
        assert!(store.begin_attempt(&c, &lead, &row).await.unwrap());
        for body in [
            json!({"status": "pending"}),
            json!({"status": "pending", "do_not_call": false}),
        ] {
            assert!(
                matches!(
                    store.update_lead(&t, &lead.id, upd(body)).await,
                    Err(Error::Conflict { .. })
                ),
                "a status change while the call is up"
            );
        }
        let edited = store
            .update_lead(&t, &lead.id, upd(json!({"notes": "on the call"})))
            .await
            .unwrap();
        assert_eq!(
            edited.status, "calling",
            "an edit keeps the engine's status"
        );
        assert_eq!(
            store.release_queued(&t, &c.id).await.unwrap(),
            0,
            "a call in progress is not released"
        );
        assert!(store
            .claim_leads(&c, june() + Duration::hours(1), 1)
            .await
            .unwrap()
            .is_empty());
        assert!(!store
            .begin_attempt(&c, &lead, &call_row(&c, &lead))
            .await
            .unwrap());

        // Listed and un-listed during the call: re-consent waits for the call to end.
        store
            .add_dnc(&t, &lead.phone_normalized, None, None)
            .await
            .unwrap();
        store.remove_dnc(&t, &lead.phone_normalized).await.unwrap();
        let reconsent = json!({"status": "pending", "do_not_call": false});
        assert!(matches!(
            store
                .update_lead(&t, &lead.id, upd(reconsent.clone()))
                .await,
            Err(Error::Conflict { .. })
        ));
        let step = runner_step(Disposition::Busy, 1, &c, june());
        store
            .apply_engine_writes(&end_writes(
                &c,
                &lead.id,
                &row.id,
                Disposition::Busy,
                step,
                june(),
            ))
            .await
            .unwrap();
        let l = store
            .update_lead(&t, &lead.id, upd(reconsent))
            .await
            .unwrap();
        assert_eq!((l.status.as_str(), l.do_not_call), ("pending", false));
        let again = store
            .claim_leads(&c, june() + Duration::hours(1), 1)
            .await
            .unwrap();
        assert_eq!(ids(&again), ids(&leads));
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Concurrent dialers on one campaign.

async fn concurrent_dialers(store: Store) {
    let (t, _) = tenant(&store, "Conc").await;
    let c = new_campaign(
        &store,
        &t,
        json!({"timezone": "America/New_York", "calling_hours_start": "00:00", "calling_hours_end": "23:59",
               "retry_policy": {"max_attempts": 3, "delay_minutes": 1, "retry_on_no_answer": true, "retry_on_busy": true, "retry_on_voicemail": true}}),
    )
    .await;
    let mut csv = String::from("phone\n");
    for i in 0..40 {
        csv.push_str(&format!("+1212555{:04}\n", 5000 + i));
    }
    let leads = import(&store, &t, &c, csv).await;
    let mut listed = HashSet::new();
    for l in leads.iter().step_by(9) {
        store
            .add_dnc(&t, &l.phone_normalized, None, None)
            .await
            .unwrap();
        listed.insert(l.id.clone());
    }
    // 09:30 EST on the day New York's clocks fell back.
    let mut now = Utc.with_ymd_and_hms(2024, 11, 3, 14, 30, 0).unwrap();
    for phase in 0..5 {
        let up: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Lead>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dialers: Vec<_> = (0..4)
            .map(|_| {
                let (s, c, t, up, seen) = (
                    store.clone(),
                    c.clone(),
                    t.clone(),
                    up.clone(),
                    seen.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let got = s.claim_leads(&c, now, 3).await.unwrap();
                        let others: Vec<Lead> = {
                            let mut seen = seen.lock().unwrap();
                            seen.extend(got.iter().cloned());
                            seen.iter().rev().take(6).cloned().collect()
                        };
                        // Our claims, and stale copies of others' racing their begin_attempt.
                        for lead in got.iter().chain(others.iter()) {
                            if s.is_dnc(&t, &lead.phone_normalized).await.unwrap() {
                                s.mark_lead_dnc(&t, &lead.id).await.unwrap();
                                continue;
                            }
                            let row = call_row(&c, lead);
                            if s.begin_attempt(&c, lead, &row).await.unwrap() {
                                let prev = up.lock().unwrap().insert(lead.id.clone(), row.id);
                                assert!(
                                    prev.is_none(),
                                    "phase {phase}: lead {} begun twice while its call is up",
                                    lead.id
                                );
                            }
                        }
                        if got.is_empty() {
                            break;
                        }
                    }
                })
            })
            .collect();
        // Someone edits leads meanwhile (notes only: never a status).
        let editor = {
            let (s, t, stop) = (store.clone(), t.clone(), stop.clone());
            let ids: Vec<String> = leads.iter().map(|l| l.id.clone()).collect();
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = &ids[n as usize % ids.len()];
                    let u =
                        serde_json::from_value::<LeadUpdate>(json!({"notes": format!("edit {n}")}))
                            .unwrap();
                    s.update_lead(&t, id, u).await.unwrap();
                    n += 1;
                }
            })
        };
        for d in dialers {
            d.await.unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        editor.await.unwrap();

        let up = std::mem::take(&mut *up.lock().unwrap());
        for l in seen.lock().unwrap().iter() {
            assert!(
                up.contains_key(&l.id),
                "phase {phase}: claimed lead {} never dialled",
                l.id
            );
        }
        assert!(
            up.keys().all(|id| !listed.contains(id)),
            "phase {phase}: a DNC number dialled"
        );
        if phase < 3 {
            assert!(!up.is_empty(), "phase {phase}: nothing dialled");
        }
        store_invariants(&store, &c)
            .await
            .expect("store invariants");

        if phase == 2 {
            // The engine dies with every call up.
            let rec = store.recover_interrupted().await.unwrap();
            assert_eq!(rec.calls_closed, up.len() as u64);
        } else {
            let calls: Vec<(String, String)> = up.into_iter().collect();
            let enders: Vec<_> = calls
                .chunks(calls.len().div_ceil(3).max(1))
                .map(|part| {
                    let (s, c, t, part) = (store.clone(), c.clone(), t.clone(), part.to_vec());
                    tokio::spawn(async move {
                        for (k, (lead_id, call_id)) in part.iter().enumerate() {
                            let d = [
                                Disposition::NoAnswer,
                                Disposition::Busy,
                                Disposition::Voicemail,
                                Disposition::Answered,
                            ][k % 4];
                            let attempts = s.lead(&t, lead_id).await.unwrap().call_attempts;
                            let step = runner_step(d, attempts, &c, now);
                            s.apply_engine_writes(&end_writes(&c, lead_id, call_id, d, step, now))
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for e in enders {
                e.await.unwrap();
            }
        }
        now += Duration::minutes(2);
    }
    let stored = store_invariants(&store, &c)
        .await
        .expect("store invariants");
    assert!(
        stored.iter().any(|l| l.call_attempts == 3),
        "some lead used all its attempts"
    );
    for l in &stored {
        if listed.contains(&l.id) {
            assert_eq!(l.call_attempts, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dialers_never_call_a_lead_twice_at_once() {
    // A SQLite file with several connections, as the engine runs it...
    let path = std::env::temp_dir().join(format!(
        "switchboard-dialer-props-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let file = Store::connect(
        &format!("sqlite://{}", path.display()),
        &StoreOptions {
            max_connections: 4,
            pg_schema: None,
        },
    )
    .await
    .unwrap();
    file.migrate().await.unwrap();
    concurrent_dialers(file.clone()).await;
    file.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // ...and the harness's in-memory SQLite and PostgreSQL.
    on_each_backend(concurrent_dialers).await;
}
