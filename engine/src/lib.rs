//! Switchboard's domain and store: tenants and users, campaigns, leads (with streaming CSV
//! import), DNC, agents and their groups, the audit log. The dialing engine (hopper, pacer,
//! call state machine) grows here on top of the store.
//!
//! Invariants: every query on a tenant-owned table filters by `tenant_id`; the store is the
//! only module that speaks SQL.

pub mod agents;
pub mod audit;
pub mod calls;
pub mod campaigns;
pub mod dialer;
pub mod dnc;
mod error;
pub mod events;
pub mod import;
pub mod leads;
pub mod patch;
pub mod phone;
pub mod runner;
pub mod store;
pub mod telephony;
pub mod tenancy;
pub mod validate;

pub use error::{Error, Result};
pub use store::{Backend, Store, StoreOptions};
