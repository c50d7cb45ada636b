//! The dialer's sans-IO core: calling hours, the rolling abandon rate, and the pacer. The
//! campaign runner (a tokio task per campaign) feeds them and acts on their output.

pub mod abandon;
pub mod hours;
pub mod pacer;
