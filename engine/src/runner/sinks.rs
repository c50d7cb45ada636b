//! What the engine attaches to a lead's RTP stream: answering-machine detection (from the
//! answer on) and quality reports. Runs on the media loop: no lock, no allocation per packet;
//! it sends to the call task only on a decision (twice per call at most) and every 5 s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use switchboard_media::amd::{Detector, Mode, Params, Verdict};
use switchboard_media::runtime::{FrameSink, ReceivedFrame};
use switchboard_media::session::{QualityReport, SessionEvent};
use tokio::sync::mpsc::UnboundedSender;

/// What the media loop tells the call task.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MediaSignal {
    /// Detect-message-end mode: a machine is recognised; the verdict follows at the beep.
    MachineEarly,
    Verdict(Verdict),
    Quality(QualityReport),
    /// A DTMF key pressed by the lead.
    Dtmf(char),
}

pub(crate) struct LeadSink {
    detector: Option<Detector>,
    early_sent: bool,
    /// Set by the call task at the answer: audio before it (early media) is not screened.
    active: Arc<AtomicBool>,
    tx: UnboundedSender<MediaSignal>,
    /// Chained sink (recording), if any.
    next: Option<Box<dyn FrameSink>>,
}

impl LeadSink {
    pub(crate) fn new(
        amd: Option<(Params, Mode)>,
        active: Arc<AtomicBool>,
        tx: UnboundedSender<MediaSignal>,
    ) -> Self {
        Self {
            detector: amd.map(|(p, m)| Detector::new(&p, m)),
            early_sent: false,
            active,
            tx,
            next: None,
        }
    }

    /// Quality reports only, forwarding audio to `next` (after the verdict).
    pub(crate) fn quality_then(
        tx: UnboundedSender<MediaSignal>,
        next: Option<Box<dyn FrameSink>>,
    ) -> Self {
        Self {
            detector: None,
            early_sent: true,
            active: Arc::new(AtomicBool::new(false)),
            tx,
            next,
        }
    }
}

impl FrameSink for LeadSink {
    fn on_frame(&mut self, frame: &ReceivedFrame<'_>) {
        if let Some(d) = self.detector.as_mut() {
            if self.active.load(Ordering::Relaxed) && !d.is_done() {
                if let Some(v) = d.push(frame.pcm, frame.arrival) {
                    let _ = self.tx.send(MediaSignal::Verdict(v));
                } else if !self.early_sent && d.awaiting_message_end() {
                    self.early_sent = true;
                    let _ = self.tx.send(MediaSignal::MachineEarly);
                }
            }
        }
        if let Some(n) = self.next.as_mut() {
            n.on_frame(frame);
        }
    }

    fn on_close(&mut self) {
        if let Some(n) = self.next.as_mut() {
            n.on_close();
        }
    }

    fn on_event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Quality(q) => {
                let _ = self.tx.send(MediaSignal::Quality(*q));
            }
            SessionEvent::Dtmf(d) => {
                if let Some(c) = d.digit {
                    let _ = self.tx.send(MediaSignal::Dtmf(c));
                }
            }
            _ => {}
        }
        if let Some(n) = self.next.as_mut() {
            n.on_event(event);
        }
    }
}
