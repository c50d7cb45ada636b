//! The writer's view of one recording: the audio not yet written, placed by position.
//!
//! Positions come in on the **input timeline**: samples at 8 kHz since the recording started
//! (see `sink.rs` for how a packet gets its position). Pauses are intervals of that timeline;
//! the **output timeline** is the file's: with [`PauseMode::Skip`] a paused interval is cut
//! out (later audio moves earlier by its length), with [`PauseMode::Silence`] it stays and is
//! written as silence. Audio inside a pause is discarded either way.
//!
//! The window holds output samples from `written` (the first not yet in the file) on, one
//! buffer per channel, zero (silence) where nothing was placed. A frame placed before
//! `written` arrived too late and is dropped (counted); one placed far ahead is refused.
//! [`Timeline::settle`] hands out everything up to a point of the input timeline, both
//! channels together, so the channels always stay the same length and never drift.
//!
//! While a pause is open its end is unknown, so audio placed after its start is held aside
//! rather than dropped: a frame sent just after `resume` may reach the writer before the
//! resume command does. On resume the held audio is placed by the final mapping (what falls
//! inside the pause is dropped then); audio held that is older than what `settle` has reached
//! is inside the pause whatever its end, and is dropped at once.

use super::PauseMode;

/// A frame placed more than this far ahead of what is written (60 s) is refused: only a
/// bogus position gets there, and it must not make the window grow without bound.
const MAX_AHEAD: i64 = 60 * 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pause {
    start: i64,
    /// `None` while paused.
    end: Option<i64>,
}

#[derive(Debug)]
pub(crate) struct Timeline {
    mode: PauseMode,
    pauses: Vec<Pause>,
    window: [Vec<i16>; 2],
    /// Output frames already handed out by `settle`.
    written: u64,
    /// Samples dropped because they came after their place was written, or before the start.
    pub(crate) late: u64,
    /// Samples refused because placed absurdly far ahead.
    pub(crate) ahead: u64,
    /// Audio placed after the start of the open pause: (channel, position, samples).
    held: Vec<(usize, i64, Vec<i16>)>,
}

/// Held pieces kept at most (about 20 s of 20 ms frames on both channels); the oldest go.
const MAX_HELD: usize = 2000;

impl Timeline {
    pub(crate) fn new(mode: PauseMode) -> Self {
        Self {
            mode,
            pauses: Vec::new(),
            window: [Vec::new(), Vec::new()],
            written: 0,
            late: 0,
            ahead: 0,
            held: Vec::new(),
        }
    }

    /// Output frames handed out so far.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.end.is_none())
    }

    /// Pauses at input position `at` (ignored while paused, and never before what is
    /// already written).
    pub(crate) fn pause(&mut self, at: i64) {
        if self.is_paused() {
            return;
        }
        let floor = self.pauses.last().and_then(|p| p.end).unwrap_or(i64::MIN);
        let at = at.max(floor).max(self.input_of_written());
        self.pauses.push(Pause {
            start: at,
            end: None,
        });
        // Audio already placed after the pause's start (it arrived before the command) goes.
        let from = (self.output_of(at) - self.written as i64).max(0) as usize;
        for w in &mut self.window {
            w.truncate(from.min(w.len()));
        }
    }

    /// Resumes at input position `at` (ignored when not paused).
    pub(crate) fn resume(&mut self, at: i64) {
        if let Some(p) = self.pauses.last_mut().filter(|p| p.end.is_none()) {
            p.end = Some(at.max(p.start));
            for (ch, pos, samples) in core::mem::take(&mut self.held) {
                self.place(ch, pos, &samples);
            }
        }
    }

    /// The smallest input position whose output position is `written` (an approximation that
    /// is exact outside pauses; used only to keep new pauses after written audio).
    fn input_of_written(&self) -> i64 {
        let mut x = self.written as i64;
        if self.mode == PauseMode::Skip {
            for p in &self.pauses {
                match p.end {
                    Some(e) if p.start <= x => x += e - p.start,
                    _ => break,
                }
            }
        }
        x
    }

    /// Output position of input position `x` (a point inside a pause maps to the pause's
    /// start).
    pub(crate) fn output_of(&self, x: i64) -> i64 {
        let mut shift = 0;
        for p in &self.pauses {
            if p.start >= x {
                break;
            }
            let end = p.end.unwrap_or(i64::MAX);
            if end <= x {
                if self.mode == PauseMode::Skip {
                    shift += end - p.start;
                }
            } else {
                // Inside the pause.
                return match self.mode {
                    PauseMode::Skip => p.start - shift,
                    PauseMode::Silence => x,
                };
            }
        }
        x - shift
    }

    /// Places `samples` of channel `ch` (0 left, 1 right) at input position `pos` (or holds
    /// the part after the start of an open pause).
    pub(crate) fn put(&mut self, ch: usize, pos: i64, samples: &[i16]) {
        let open = self
            .pauses
            .last()
            .filter(|p| p.end.is_none())
            .map(|p| p.start);
        let Some(start) = open.filter(|&s| pos + samples.len() as i64 > s) else {
            self.place(ch, pos, samples);
            return;
        };
        let head = (start - pos).clamp(0, samples.len() as i64) as usize;
        self.place(ch, pos, &samples[..head]);
        if self.held.len() >= MAX_HELD {
            let (_, _, old) = self.held.remove(0);
            self.late += old.len() as u64;
        }
        self.held
            .push((ch, pos + head as i64, samples[head..].to_vec()));
    }

    fn place(&mut self, ch: usize, pos: i64, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let written = self.written as i64;
        let Timeline {
            mode,
            pauses,
            window,
            late,
            ahead,
            ..
        } = self;
        let Some(window) = window.get_mut(ch) else {
            return;
        };
        segments(*mode, pauses, pos, samples.len() as i64, |off, out, len| {
            // Cut what falls before the written part.
            let cut = (written - out).clamp(0, len);
            *late += cut as u64;
            let (off, out, len) = (off + cut, out + cut, len - cut);
            if len == 0 {
                return;
            }
            let at = out - written;
            if at + len > MAX_AHEAD {
                *ahead += len as u64;
                return;
            }
            let (at, len, off) = (at as usize, len as usize, off as usize);
            if window.len() < at + len {
                window.resize(at + len, 0);
            }
            window[at..at + len].copy_from_slice(&samples[off..off + len]);
        });
    }

    /// Hands out every output frame up to input position `upto` (both channels, silence
    /// where nothing was placed), appending them to `out` as little-endian 16-bit samples:
    /// interleaved left/right, or their clipped sum when `mono`. Returns the frames added.
    pub(crate) fn settle(&mut self, upto: i64, mono: bool, out: &mut Vec<u8>) -> u64 {
        // Held audio that ends before `upto` lies inside the open pause.
        self.held.retain(|(_, pos, s)| pos + s.len() as i64 > upto);
        let end = self.output_of(upto);
        let n = end - self.written as i64;
        if n <= 0 {
            return 0;
        }
        let n = n as usize;
        let [l, r] = &self.window;
        // Each channel's samples then silence, n of them.
        let start = out.len();
        if mono {
            out.resize(start + 2 * n, 0);
            for ((d, a), b) in out[start..]
                .chunks_exact_mut(2)
                .zip(padded(l, n))
                .zip(padded(r, n))
            {
                d.copy_from_slice(&a.saturating_add(b).to_le_bytes());
            }
        } else {
            out.resize(start + 4 * n, 0);
            for ((d, a), b) in out[start..]
                .chunks_exact_mut(4)
                .zip(padded(l, n))
                .zip(padded(r, n))
            {
                d[..2].copy_from_slice(&a.to_le_bytes());
                d[2..].copy_from_slice(&b.to_le_bytes());
            }
        }
        for w in &mut self.window {
            w.drain(..n.min(w.len()));
        }
        self.written += n as u64;
        n as u64
    }
}

/// `w`'s first `n` samples, silence past its end.
fn padded(w: &[i16], n: usize) -> impl Iterator<Item = i16> + '_ {
    w.iter().copied().chain(core::iter::repeat(0)).take(n)
}

/// Calls `f(input_offset, output_position, len)` for each part of `[pos, pos + n)` that is
/// outside every pause.
fn segments(mode: PauseMode, pauses: &[Pause], pos: i64, n: i64, mut f: impl FnMut(i64, i64, i64)) {
    let end = pos + n;
    let mut p = pos;
    let mut shift = 0;
    let skip = mode == PauseMode::Skip;
    for pause in pauses {
        let pe = pause.end.unwrap_or(i64::MAX);
        if pe <= p {
            if skip {
                shift += pe - pause.start;
            }
            continue;
        }
        if pause.start >= end {
            break;
        }
        if p < pause.start {
            f(p - pos, p - shift, pause.start - p);
        }
        if pe >= end {
            return;
        }
        if skip {
            shift += pe - pause.start;
        }
        p = p.max(pe);
    }
    if p < end {
        f(p - pos, p - shift, end - p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(t: &mut Timeline, upto: i64) -> Vec<(i16, i16)> {
        let mut b = Vec::new();
        t.settle(upto, false, &mut b);
        b.chunks_exact(4)
            .map(|c| {
                (
                    i16::from_le_bytes([c[0], c[1]]),
                    i16::from_le_bytes([c[2], c[3]]),
                )
            })
            .collect()
    }

    #[test]
    fn gaps_are_silence_and_channels_stay_aligned() {
        let mut t = Timeline::new(PauseMode::Skip);
        t.put(0, 0, &[1; 10]);
        // Loss: nothing for 10..20.
        t.put(0, 20, &[2; 10]);
        // The right channel starts late.
        t.put(1, 25, &[3; 5]);
        let f = frames(&mut t, 40);
        assert_eq!(f.len(), 40);
        assert_eq!(f[0..10], [(1, 0); 10]);
        assert_eq!(f[10..20], [(0, 0); 10]);
        assert_eq!(f[20..25], [(2, 0); 5]);
        assert_eq!(f[25..30], [(2, 3); 5]);
        assert_eq!(f[30..40], [(0, 0); 10]);
        assert_eq!(t.written(), 40);
    }

    #[test]
    fn reordered_frames_land_in_place_until_written_then_are_dropped() {
        let mut t = Timeline::new(PauseMode::Skip);
        t.put(0, 10, &[2; 10]);
        t.put(0, 0, &[1; 10]); // arrived after the later one
        let f = frames(&mut t, 15);
        assert_eq!(f[..10], [(1, 0); 10]);
        assert_eq!(f[10..15], [(2, 0); 5]);
        // 15..20 is still open: a late frame overlapping it lands there, the rest is late.
        t.put(0, 12, &[9; 10]);
        assert_eq!(t.late, 3);
        let f = frames(&mut t, 30);
        assert_eq!(f[..7], [(9, 0); 7]);
        assert_eq!(f[7..], [(0, 0); 8]);
        // Before the start of the recording: dropped.
        t.put(1, -100, &[5; 10]);
        assert_eq!(t.late, 13);
        // Absurdly far ahead: refused.
        t.put(1, 10_000_000, &[5; 10]);
        assert_eq!(t.ahead, 10);
        assert_eq!(frames(&mut t, 40), [(0, 0); 10]);
    }

    #[test]
    fn pause_skip_cuts_the_interval_and_silence_keeps_it() {
        for mode in [PauseMode::Skip, PauseMode::Silence] {
            let mut t = Timeline::new(mode);
            t.put(0, 0, &[1; 10]);
            t.pause(10);
            assert!(t.is_paused());
            // During the pause: discarded; the frame straddling the start keeps its head.
            t.put(0, 8, &[4; 6]);
            t.put(1, 12, &[7; 4]);
            t.resume(20);
            t.put(0, 20, &[2; 10]);
            t.put(1, 18, &[3; 4]); // straddles the end
            let f = frames(&mut t, 30);
            match mode {
                PauseMode::Skip => {
                    assert_eq!(f.len(), 20);
                    assert_eq!(f[..8], [(1, 0); 8]);
                    assert_eq!(f[8..10], [(4, 0); 2]);
                    assert_eq!(f[10..12], [(2, 3); 2]);
                    assert_eq!(f[12..], [(2, 0); 8]);
                    assert_eq!(t.output_of(15), 10);
                }
                PauseMode::Silence => {
                    assert_eq!(f.len(), 30);
                    assert_eq!(f[8..10], [(4, 0); 2]);
                    assert_eq!(f[10..20], [(0, 0); 10]);
                    assert_eq!(f[20..22], [(2, 3); 2]);
                }
            }
        }
    }

    #[test]
    fn an_open_pause_holds_the_output_and_repeated_calls_are_ignored() {
        let mut t = Timeline::new(PauseMode::Skip);
        t.put(0, 0, &[1; 10]);
        t.pause(10);
        t.pause(15);
        assert_eq!(frames(&mut t, 1000).len(), 10);
        t.resume(1000);
        t.resume(2000);
        t.put(0, 1000, &[2; 5]);
        assert_eq!(frames(&mut t, 1005), [(2, 0); 5]);
        assert_eq!(t.written(), 15);
        // A second pause and resume.
        t.pause(1010);
        t.resume(1020);
        t.put(1, 1015, &[6; 10]);
        assert_eq!(
            frames(&mut t, 1030),
            [
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 6),
                (0, 6),
                (0, 6),
                (0, 6),
                (0, 6),
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 0),
                (0, 0)
            ]
        );
    }

    #[test]
    fn audio_after_the_resume_that_comes_before_the_resume_command_is_kept() {
        for mode in [PauseMode::Skip, PauseMode::Silence] {
            let mut t = Timeline::new(mode);
            t.put(0, 0, &[1; 10]);
            // Placed after the pause start before the pause was known: removed by the pause.
            t.put(1, 10, &[8; 4]);
            t.pause(10);
            // Writing while paused: the output stays at the pause's start (Skip) or is
            // silence (Silence).
            let f = frames(&mut t, 12);
            assert_eq!(f[..10], [(1, 0); 10]);
            assert_eq!(f.len(), if mode == PauseMode::Skip { 10 } else { 12 });
            // A frame after the (not yet known) resume point, one inside the pause, and one
            // inside the pause that settling passes before the resume.
            t.put(0, 25, &[5; 5]);
            t.put(1, 15, &[6; 5]);
            t.put(1, 11, &[7; 2]);
            let _ = frames(&mut t, 14);
            assert_eq!(t.held.len(), 2);
            t.resume(20);
            assert!(t.held.is_empty());
            let f = frames(&mut t, 30);
            match mode {
                PauseMode::Skip => {
                    // Input 20..30 → output 10..20.
                    assert_eq!(f.len(), 10);
                    assert_eq!(f[..5], [(0, 0); 5]);
                    assert_eq!(f[5..], [(5, 0); 5]);
                }
                PauseMode::Silence => {
                    // Output 14..30.
                    assert_eq!(f.len(), 16);
                    assert_eq!(f[..11], [(0, 0); 11]);
                    assert_eq!(f[11..], [(5, 0); 5]);
                }
            }
        }
    }

    #[test]
    fn mono_mix_sums_with_clipping() {
        let mut t = Timeline::new(PauseMode::Skip);
        t.put(0, 0, &[30000, -30000, 100]);
        t.put(1, 0, &[30000, -30000, -50]);
        let mut b = Vec::new();
        assert_eq!(t.settle(3, true, &mut b), 3);
        let s: Vec<i16> = b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(s, [i16::MAX, i16::MIN, 50]);
    }
}
