//! What the carrier does with each dialled number: a [`Behavior`] chosen by a [`Plan`]
//! (exact numbers, then suffixes, then a weighted mix drawn from the seeded generator).

use std::collections::HashMap;
use std::time::Duration;

use crate::rng::Rng;
use crate::{Error, Result};

/// How the far end of one call behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 180, answer after the ring, "Hello?" then silence, then talk bursts with pauses until
    /// `talk` has passed since the answer, then BYE (unless the caller hung up first).
    Human { talk: Duration },
    /// Answer after the ring, a ~5 s voicemail greeting, a 1 kHz beep of 0.5 s if `beep`,
    /// then silence; BYE after the carrier's `machine_hangup` unless the caller hung up.
    Machine { beep: bool },
    /// 486 Busy Here.
    Busy,
    /// 180 Ringing until the caller cancels (487), or 480 after the carrier's `max_ring`.
    NoAnswer,
    /// 503 Service Unavailable.
    Unavailable,
    /// Any final status 400–699 (404 for an invalid number, 603 Decline, ...).
    Reject(u16),
    /// Ring this long, then do `then` (answer, or reject after ringing).
    AnswerAfter { ring: Duration, then: Box<Behavior> },
}

impl Behavior {
    /// The name of what finally happens (`AnswerAfter` is named by its `then`):
    /// `human`, `machine`, `busy`, `no_answer`, `unavailable`, `reject`.
    pub fn name(&self) -> &'static str {
        match self {
            Behavior::Human { .. } => "human",
            Behavior::Machine { .. } => "machine",
            Behavior::Busy => "busy",
            Behavior::NoAnswer => "no_answer",
            Behavior::Unavailable => "unavailable",
            Behavior::Reject(_) => "reject",
            Behavior::AnswerAfter { then, .. } => then.name(),
        }
    }

    /// Parses a behaviour name: `human`, `machine`, `machine_nobeep`, `busy`, `no_answer`,
    /// `unavailable`, `reject:CODE` (or just `CODE`), `ring:MS:BEHAVIOUR` (answer after MS
    /// of ringing). Humans talk for `talk`.
    pub fn parse(s: &str, talk: Duration) -> Result<Behavior> {
        let name = s.trim().to_ascii_lowercase();
        let unknown = || Error::UnknownBehavior { name: s.to_owned() };
        if let Some(rest) = name.strip_prefix("ring:") {
            let (ms, then) = rest.split_once(':').ok_or_else(unknown)?;
            let ms: u64 = ms.parse().map_err(|_| Error::InvalidPlan {
                what: "behaviour",
                input: s.to_owned(),
                reason: "ring time must be milliseconds",
            })?;
            return Ok(Behavior::AnswerAfter {
                ring: Duration::from_millis(ms),
                then: Box::new(Behavior::parse(then, talk)?),
            });
        }
        let code = name.strip_prefix("reject:").unwrap_or(&name);
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) {
            let code: u16 = code.parse().map_err(|_| unknown())?;
            if !(400..=699).contains(&code) {
                return Err(Error::InvalidPlan {
                    what: "behaviour",
                    input: s.to_owned(),
                    reason: "a rejection status must be 400-699",
                });
            }
            return Ok(Behavior::Reject(code));
        }
        Ok(match name.as_str() {
            "human" => Behavior::Human { talk },
            "machine" | "voicemail" => Behavior::Machine { beep: true },
            "machine_nobeep" | "machine-nobeep" => Behavior::Machine { beep: false },
            "busy" => Behavior::Busy,
            "no_answer" | "no-answer" | "noanswer" => Behavior::NoAnswer,
            "unavailable" => Behavior::Unavailable,
            _ => return Err(unknown()),
        })
    }
}

/// Chooses a [`Behavior`] for each dialled number.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    exact: HashMap<String, Behavior>,
    /// Longest suffix first.
    suffixes: Vec<(String, Behavior)>,
    mix: Vec<(Behavior, u32)>,
    total: u64,
}

/// Compares numbers with or without the leading `+`.
fn key(number: &str) -> &str {
    number.trim().trim_start_matches('+')
}

impl Plan {
    /// An empty plan: every number is a human talking 30 s, until rules or a mix are added.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Every number gets `behavior`.
    pub fn always(behavior: Behavior) -> Plan {
        Plan::new().weighted(behavior, 1)
    }

    /// `number` (the user part of the Request-URI, `+` optional) gets `behavior`.
    pub fn exact(mut self, number: &str, behavior: Behavior) -> Plan {
        self.exact.insert(key(number).to_owned(), behavior);
        self
    }

    /// Numbers ending in `suffix` get `behavior` (the longest matching suffix wins).
    pub fn suffix(mut self, suffix: &str, behavior: Behavior) -> Plan {
        self.suffixes.push((suffix.trim().to_owned(), behavior));
        self.suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        self
    }

    /// Adds `behavior` to the mix with `weight`.
    pub fn weighted(mut self, behavior: Behavior, weight: u32) -> Plan {
        if weight > 0 {
            self.total += u64::from(weight);
            self.mix.push((behavior, weight));
        }
        self
    }

    /// Adds a rule `NUMBER=BEHAVIOUR` or `*SUFFIX=BEHAVIOUR` (see [`Behavior::parse`]).
    pub fn rule(self, rule: &str, talk: Duration) -> Result<Plan> {
        let bad = |reason| Error::InvalidPlan {
            what: "rule",
            input: rule.to_owned(),
            reason,
        };
        let (pattern, behavior) = rule
            .split_once('=')
            .ok_or_else(|| bad("expected NUMBER=BEHAVIOUR or *SUFFIX=BEHAVIOUR"))?;
        let behavior = Behavior::parse(behavior, talk)?;
        let pattern = pattern.trim();
        if let Some(suffix) = pattern.strip_prefix('*') {
            if suffix.is_empty() {
                return Err(bad("an empty suffix matches everything; use --mix"));
            }
            Ok(self.suffix(suffix, behavior))
        } else if key(pattern).is_empty() {
            Err(bad("no number"))
        } else {
            Ok(self.exact(pattern, behavior))
        }
    }

    /// Adds a mix `human=60,machine=20,busy=5,...` (weights are relative).
    pub fn mix(mut self, mix: &str, talk: Duration) -> Result<Plan> {
        for part in mix.split(',').filter(|p| !p.trim().is_empty()) {
            let bad = |reason| Error::InvalidPlan {
                what: "mix entry",
                input: part.to_owned(),
                reason,
            };
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| bad("expected BEHAVIOUR=WEIGHT"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| bad("the weight must be a whole number"))?;
            self = self.weighted(Behavior::parse(name, talk)?, weight);
        }
        Ok(self)
    }

    /// The behaviour for `number`: an exact rule, else the longest suffix rule, else a draw
    /// from the mix (a human talking 30 s when the mix is empty).
    pub fn choose(&self, number: &str, rng: &mut Rng) -> Behavior {
        let k = key(number);
        if let Some(b) = self.exact.get(k) {
            return b.clone();
        }
        if let Some((_, b)) = self.suffixes.iter().find(|(s, _)| k.ends_with(s.as_str())) {
            return b.clone();
        }
        if self.total == 0 {
            return Behavior::Human {
                talk: Duration::from_secs(30),
            };
        }
        let mut pick = rng.next_u64() % self.total;
        for (b, w) in &self.mix {
            if pick < u64::from(*w) {
                return b.clone();
            }
            pick -= u64::from(*w);
        }
        // Unreachable: the weights sum to `total`.
        self.mix[0].0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TALK: Duration = Duration::from_secs(5);

    #[test]
    fn parses_every_behaviour() {
        let p = |s| Behavior::parse(s, TALK).unwrap();
        assert_eq!(p("human"), Behavior::Human { talk: TALK });
        assert_eq!(p("Machine"), Behavior::Machine { beep: true });
        assert_eq!(p("machine_nobeep"), Behavior::Machine { beep: false });
        assert_eq!(p("busy"), Behavior::Busy);
        assert_eq!(p("no_answer"), Behavior::NoAnswer);
        assert_eq!(p("unavailable"), Behavior::Unavailable);
        assert_eq!(p("reject:404"), Behavior::Reject(404));
        assert_eq!(p("603"), Behavior::Reject(603));
        assert_eq!(
            p("ring:2500:human"),
            Behavior::AnswerAfter {
                ring: Duration::from_millis(2500),
                then: Box::new(Behavior::Human { talk: TALK })
            }
        );
        assert_eq!(p("ring:100:busy").name(), "busy");
        for bad in ["robot", "reject:200", "ring:x:human", "ring:100", "999"] {
            assert!(Behavior::parse(bad, TALK).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_then_longest_suffix_then_mix() {
        let plan = Plan::new()
            .rule("*7=machine", TALK)
            .unwrap()
            .rule("*07=busy", TALK)
            .unwrap()
            .rule("+15550100001=404", TALK)
            .unwrap()
            .rule("15550100007=unavailable", TALK)
            .unwrap()
            .mix("human=1", TALK)
            .unwrap();
        let mut rng = Rng::new(1);
        let mut c = |n| plan.choose(n, &mut rng);
        assert_eq!(c("+15550100001"), Behavior::Reject(404));
        assert_eq!(c("+15550100007"), Behavior::Unavailable);
        assert_eq!(c("+15550100017"), Behavior::Machine { beep: true });
        assert_eq!(c("+15550100107"), Behavior::Busy);
        assert_eq!(c("+15550100002"), Behavior::Human { talk: TALK });
        assert!(Plan::new().rule("*=busy", TALK).is_err());
        assert!(Plan::new().rule("busy", TALK).is_err());
        assert!(Plan::new().mix("human=x", TALK).is_err());
        assert!(Plan::new().mix("robot=1", TALK).is_err());
    }

    #[test]
    fn mix_follows_the_weights_and_the_seed() {
        let plan = Plan::new()
            .mix(
                "human=60,machine=20,busy=5,no_answer=10,unavailable=5",
                TALK,
            )
            .unwrap();
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            let mut counts: HashMap<&'static str, u32> = HashMap::new();
            for i in 0..10_000 {
                *counts
                    .entry(plan.choose(&format!("+1555{i:07}"), &mut rng).name())
                    .or_default() += 1;
            }
            counts
        };
        let counts = draw(42);
        assert_eq!(counts, draw(42), "same seed, same draws");
        for (name, share) in [
            ("human", 6000),
            ("machine", 2000),
            ("busy", 500),
            ("no_answer", 1000),
            ("unavailable", 500),
        ] {
            let got = counts.get(name).copied().unwrap_or(0) as i64;
            assert!((got - share).abs() < share / 5 + 50, "{name}: {got}");
        }
        let empty = Plan::new();
        assert_eq!(empty.choose("1", &mut Rng::new(1)).name(), "human");
    }
}
