//! switchboard-ws
