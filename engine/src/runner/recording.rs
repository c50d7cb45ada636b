//! Recording of a connected call: both legs into one stereo WAV (lead left, agent right)
//! written by the recordings crate's writer thread, at
//! `<recordings_dir>/tenants/{tenant}/calls/{call}.wav` — the key the recordings API serves.

use switchboard_media::runtime::StreamHandle;
use switchboard_recordings::Key;
use switchboard_recordings::{Channel, Recorder, RecorderOptions};
use tokio::sync::mpsc::UnboundedSender;

use super::sinks::{LeadSink, MediaSignal};
use super::Inner;

/// A recording in progress.
pub(crate) struct Active {
    recorder: Recorder,
    key: String,
}

/// A finished recording, for the call row.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub path: String,
    pub duration_secs: i64,
    pub bytes: i64,
}

/// Starts recording: the lead's stream keeps its quality reports and feeds the left channel,
/// the agent's stream feeds the right one.
pub(crate) fn start(
    inner: &Inner,
    tenant_id: &str,
    call_id: &str,
    lead: &StreamHandle,
    agent: &StreamHandle,
    signals: UnboundedSender<MediaSignal>,
) -> Option<Active> {
    let key = match Key::for_call(tenant_id, call_id, "wav") {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(call = call_id, error = %e, "no recording key");
            return None;
        }
    };
    let path = inner.cfg.recordings_dir.join(key.as_str());
    let recorder = match Recorder::start(&path, RecorderOptions::default()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(call = call_id, error = %e, "cannot start recording");
            return None;
        }
    };
    let left = recorder.channel_sink(Channel::Left);
    let right = recorder.channel_sink(Channel::Right);
    let _ = lead.set_sink(Some(Box::new(LeadSink::quality_then(
        signals,
        Some(Box::new(left)),
    ))));
    let _ = agent.set_sink(Some(Box::new(right)));
    Some(Active {
        recorder,
        key: key.as_str().to_owned(),
    })
}

impl Active {
    /// Finalizes the file.
    pub(crate) async fn stop(self) -> Option<Finished> {
        match self.recorder.stop_async().await {
            Ok(info) => Some(Finished {
                path: self.key,
                duration_secs: info.duration.as_secs_f64().round() as i64,
                bytes: info.bytes as i64,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "recording failed to finish");
                None
            }
        }
    }
}
