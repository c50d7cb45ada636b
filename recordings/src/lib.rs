//! switchboard-recordings
