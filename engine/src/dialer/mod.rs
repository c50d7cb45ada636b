//! The dialer's core: calling hours, the rolling abandon rate, the pacer, retry scheduling
//! (sans-IO), a pacing simulator and the hopper (store). The campaign runner (a tokio task
//! per campaign) feeds them and acts on their output.

pub mod abandon;
pub mod attempts;
pub mod call;
pub mod hopper;
pub mod hours;
pub mod pacer;
pub mod retry;
pub mod simulate;
