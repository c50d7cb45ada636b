//! Unguessable tokens for Call-IDs, tags, branches and cnonces without an RNG crate: SipHash
//! keyed by the process's random `RandomState` over a counter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::dialog::IdSource;

/// An [`IdSource`] drawing from a randomly keyed hash of a counter.
#[derive(Debug)]
pub(crate) struct RandomIds {
    state: RandomState,
    counter: u64,
    host: String,
}

impl RandomIds {
    pub fn new(host: &str) -> RandomIds {
        RandomIds {
            state: RandomState::new(),
            counter: 0,
            host: host.to_owned(),
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.state.hash_one(self.counter)
    }

    fn token(&mut self) -> String {
        format!("{:016x}{:08x}", self.next(), self.next() as u32)
    }
}

impl IdSource for RandomIds {
    fn call_id(&mut self) -> String {
        format!("{}@{}", self.token(), self.host)
    }
    fn tag(&mut self) -> String {
        format!("{:016x}", self.next())
    }
    fn branch(&mut self) -> String {
        self.token()
    }
    fn cnonce(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}
