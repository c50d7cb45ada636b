//! switchboard-sim: the far ends of Switchboard's calls, simulated on loopback.
//!
//! - [`Carrier`]: a carrier simulator, a SIP UAS that answers each INVITE by a [`Plan`] keyed
//!   on the dialled number: a human ("Hello?", then talk), an answering machine (a long
//!   greeting and a beep), busy, no answer, unavailable, any rejection, or any of these after
//!   ringing. It can demand digest REGISTER (and INVITE), and impair its RTP with loss and
//!   jitter. Its audio is synthetic speech made in code (see [`audio`]), classified correctly
//!   by the answering-machine detector; WAV files may replace it.
//! - [`AgentPhones`]: auto-answering agent phones that talk, count the audio they receive, and
//!   hang up on demand.
//! - [`cli`]: `switchboard carrier-sim` and `switchboard call` (the test dialer and load
//!   driver).
//!
//! Every call records a [`SimCall`]: what was dialled, what the simulator did, who ended it,
//! and how much audio (and how loud) arrived from the caller, so tests can tell real audio
//! flowed.

mod agents;
pub mod audio;
mod book;
mod carrier;
pub mod cli;
mod error;
mod plan;
mod record;
mod registrar;
pub mod relay;
pub mod rng;
pub mod script;
mod uas;
pub mod wavout;

pub use agents::{AgentConfig, AgentPhones};
pub use audio::{AudioFiles, Voices};
pub use book::{CarrierStats, EndedBy, SimCall};
pub use carrier::{Carrier, CarrierConfig, Impairment};
pub use error::{Error, Result};
pub use plan::{Behavior, Plan};
pub use script::Heard;
pub use uas::{reason_phrase, user_part};

/// A fixed-offset IANA zone (`Etc/GMT±N`) where it is about 13:00 now: demo and test leads
/// get it so the legal calling hours (08:00–21:00 in the lead's zone) allow dialing whenever
/// they run.
pub fn daytime_zone() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let hour = ((secs / 3600) % 24) as i32;
    let mut off = 13 - hour;
    if off > 12 {
        off -= 24;
    }
    if off < -12 {
        off += 24;
    }
    // Etc/GMT-N means UTC+N.
    match off {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
