//! switchboard-engine
