//! What happens to a lead after an attempt: done, tried again later, or given up — a pure
//! function of the attempt's result, the campaign's retry policy and the time.
//!
//! Rules: a live conversation completes the lead; do-not-call ends it as `dnc`; busy, no
//! answer and voicemail retry after `delay_minutes` when the policy says so and attempts
//! remain; a failed attempt (network, carrier) retries like no-answer; an abandoned call is
//! not retried within 72 hours (Ofcom's rule, applied everywhere: the strictest common one).

use chrono::{DateTime, Duration, Utc};

use crate::campaigns::RetryPolicy;

/// How an attempt ended, for retry purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A person talked to an agent.
    Connected,
    /// A person answered but no agent was free within 2 s.
    Abandoned,
    Busy,
    NoAnswer,
    /// A machine answered (voicemail dropped or not).
    Voicemail,
    /// The call could not be placed or the carrier failed it.
    Failed,
    /// The person asked not to be called again.
    DoNotCall,
}

/// The lead's next state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// status `completed`.
    Completed,
    /// status `pending`, dial again at this time.
    RetryAt(DateTime<Utc>),
    /// status `failed`: no attempts left or the policy does not retry this result.
    GiveUp,
    /// status `dnc`.
    DoNotCall,
}

/// Ofcom: after an abandoned call, no new call within 72 hours without a guaranteed agent.
pub const ABANDON_HOLD: Duration = Duration::hours(72);

/// Decides the next step; `attempts` counts the attempt that just ended.
pub fn next_step(
    result: AttemptResult,
    attempts: i64,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> NextStep {
    let retry = match result {
        AttemptResult::Connected => return NextStep::Completed,
        AttemptResult::DoNotCall => return NextStep::DoNotCall,
        AttemptResult::Busy => policy.retry_on_busy,
        AttemptResult::NoAnswer | AttemptResult::Failed => policy.retry_on_no_answer,
        AttemptResult::Voicemail => policy.retry_on_voicemail,
        AttemptResult::Abandoned => true,
    };
    if !retry || attempts >= policy.max_attempts {
        return NextStep::GiveUp;
    }
    let delay = Duration::minutes(policy.delay_minutes.max(1));
    let delay = if result == AttemptResult::Abandoned {
        delay.max(ABANDON_HOLD)
    } else {
        delay
    };
    NextStep::RetryAt(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn outcomes() {
        let now: DateTime<Utc> = "2024-01-01T12:00:00Z".parse().unwrap();
        let p = policy();
        assert_eq!(
            next_step(AttemptResult::Connected, 1, &p, now),
            NextStep::Completed
        );
        assert_eq!(
            next_step(AttemptResult::Busy, 1, &p, now),
            NextStep::RetryAt(now + Duration::minutes(60))
        );
        assert_eq!(
            next_step(AttemptResult::Voicemail, 1, &p, now),
            NextStep::GiveUp,
            "the default policy does not retry voicemail"
        );
        assert_eq!(
            next_step(AttemptResult::NoAnswer, 3, &p, now),
            NextStep::GiveUp,
            "three attempts used"
        );
        assert_eq!(
            next_step(AttemptResult::Abandoned, 1, &p, now),
            NextStep::RetryAt(now + Duration::hours(72))
        );
        assert_eq!(
            next_step(AttemptResult::DoNotCall, 1, &p, now),
            NextStep::DoNotCall
        );
    }

    proptest! {
        /// Never more than max_attempts; never sooner than the delay; never within 72 h of an
        /// abandon; results the policy excludes never retry.
        #[test]
        fn retries_respect_the_policy(attempts in 1i64..30, max in 1i64..20, delay in 1i64..10_000, busy: bool, na: bool, vm: bool, which in 0usize..7) {
            let now: DateTime<Utc> = "2024-06-01T00:00:00Z".parse().unwrap();
            let p = RetryPolicy { max_attempts: max, delay_minutes: delay, retry_on_busy: busy, retry_on_no_answer: na, retry_on_voicemail: vm };
            let r = [AttemptResult::Connected, AttemptResult::Abandoned, AttemptResult::Busy, AttemptResult::NoAnswer, AttemptResult::Voicemail, AttemptResult::Failed, AttemptResult::DoNotCall][which];
            match next_step(r, attempts, &p, now) {
                NextStep::RetryAt(t) => {
                    prop_assert!(attempts < max);
                    prop_assert!(t >= now + Duration::minutes(delay));
                    if r == AttemptResult::Abandoned { prop_assert!(t >= now + ABANDON_HOLD); }
                    let allowed = match r {
                        AttemptResult::Busy => busy,
                        AttemptResult::NoAnswer | AttemptResult::Failed => na,
                        AttemptResult::Voicemail => vm,
                        AttemptResult::Abandoned => true,
                        _ => false,
                    };
                    prop_assert!(allowed);
                }
                NextStep::Completed => prop_assert_eq!(r, AttemptResult::Connected),
                NextStep::DoNotCall => prop_assert_eq!(r, AttemptResult::DoNotCall),
                NextStep::GiveUp => {}
            }
        }
    }
}
