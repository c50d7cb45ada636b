//! The hand-off between a channel sink (on a media loop) and the writer thread: a
//! single-producer single-consumer ring of 20 ms slots made of atomics.
//!
//! The producer writes a slot's samples and position with relaxed stores, then publishes it by
//! advancing `head` (release); the consumer reads every slot up to `head` (acquire) and frees
//! them by advancing `tail` (release). The producer never writes a slot the consumer has not
//! freed (it reads `tail` with acquire first), so a slot is never read while being written.
//! No lock, no channel, no allocation: a packet costs a few dozen plain stores, and the
//! writer can drain the ring at any moment (including when the recording stops, whatever the
//! sink is doing). A full ring drops the frame and counts it.
//!
//! Samples are packed four to an `AtomicU64`.

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Samples per slot (20 ms at 8 kHz).
pub(crate) const SLOT_SAMPLES: usize = 160;
const WORDS: usize = SLOT_SAMPLES / 4;

/// Slots per ring: 640 ms of audio, more than the writer's poll interval with room for a
/// stalled disk write.
pub(crate) const SLOTS: usize = 32;

struct Slot {
    /// Position of the first sample on the recording's input timeline (samples since start).
    pos: AtomicI64,
    len: AtomicU32,
    words: [AtomicU64; WORDS],
}

pub(crate) struct Ring {
    slots: Box<[Slot]>,
    head: AtomicU64,
    tail: AtomicU64,
    /// Frames dropped because the ring was full.
    overruns: AtomicU64,
}

impl core::fmt::Debug for Ring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring")
            .field("head", &self.head.load(Ordering::Relaxed))
            .field("tail", &self.tail.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ring {
    pub(crate) fn new() -> Self {
        let slots = (0..SLOTS)
            .map(|_| Slot {
                pos: AtomicI64::new(0),
                len: AtomicU32::new(0),
                words: core::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect();
        Self {
            slots,
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
        }
    }

    /// Producer side: queues `samples` (any length; split into 160-sample slots) placed at
    /// `pos`. Returns false if (part of) it was dropped because the ring is full. Only one
    /// producer may call this at a time (the channel sink's ownership claim ensures it).
    pub(crate) fn push(&self, pos: i64, samples: &[i16]) -> bool {
        let mut head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let mut ok = true;
        for (i, chunk) in samples.chunks(SLOT_SAMPLES).enumerate() {
            if head - tail >= SLOTS as u64 {
                self.overruns.fetch_add(1, Ordering::Relaxed);
                ok = false;
                break;
            }
            let slot = &self.slots[(head % SLOTS as u64) as usize];
            slot.pos
                .store(pos + (i * SLOT_SAMPLES) as i64, Ordering::Relaxed);
            slot.len.store(chunk.len() as u32, Ordering::Relaxed);
            for (w, quad) in slot.words.iter().zip(chunk.chunks(4)) {
                let mut v = 0u64;
                for (k, &s) in quad.iter().enumerate() {
                    v |= u64::from(s as u16) << (16 * k);
                }
                w.store(v, Ordering::Relaxed);
            }
            head += 1;
        }
        self.head.store(head, Ordering::Release);
        ok
    }

    /// Consumer side: hands every queued slot to `f(pos, samples)` in order and frees them.
    /// Only one consumer (the writer thread).
    pub(crate) fn drain(&self, mut f: impl FnMut(i64, &[i16])) {
        let head = self.head.load(Ordering::Acquire);
        let mut tail = self.tail.load(Ordering::Relaxed);
        let mut buf = [0i16; SLOT_SAMPLES];
        while tail < head {
            let slot = &self.slots[(tail % SLOTS as u64) as usize];
            let len = (slot.len.load(Ordering::Relaxed) as usize).min(SLOT_SAMPLES);
            for (quad, w) in buf.chunks_mut(4).zip(slot.words.iter()) {
                let v = w.load(Ordering::Relaxed);
                for (k, s) in quad.iter_mut().enumerate() {
                    *s = (v >> (16 * k)) as u16 as i16;
                }
            }
            f(slot.pos.load(Ordering::Relaxed), &buf[..len]);
            tail += 1;
        }
        self.tail.store(tail, Ordering::Release);
    }

    /// Frames dropped because the ring was full.
    pub(crate) fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(r: &Ring) -> Vec<(i64, Vec<i16>)> {
        let mut v = Vec::new();
        r.drain(|p, s| v.push((p, s.to_vec())));
        v
    }

    #[test]
    fn round_trips_positions_samples_and_odd_lengths() {
        let r = Ring::new();
        let a: Vec<i16> = (0..160).map(|i| i * 200 - 16000).collect();
        assert!(r.push(1000, &a));
        // 30 ms: two slots, the second of 80 samples; and a length not a multiple of four.
        let b: Vec<i16> = (0..240).map(|i| -i).collect();
        assert!(r.push(2000, &b));
        assert!(r.push(-5, &[i16::MIN, i16::MAX, -1]));
        let got = drained(&r);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (1000, a));
        assert_eq!(got[1], (2000, b[..160].to_vec()));
        assert_eq!(got[2], (2160, b[160..].to_vec()));
        assert_eq!(got[3], (-5, vec![i16::MIN, i16::MAX, -1]));
        assert!(drained(&r).is_empty());
    }

    #[test]
    fn a_full_ring_drops_and_counts_until_drained() {
        let r = Ring::new();
        let f = [7i16; 160];
        for i in 0..SLOTS {
            assert!(r.push(i as i64 * 160, &f));
        }
        assert!(!r.push(0, &f));
        assert_eq!(r.overruns(), 1);
        assert_eq!(drained(&r).len(), SLOTS);
        // Wraps around the slot array.
        for i in 0..SLOTS + 5 {
            assert!(r.push(i as i64, &f));
            if i % 4 == 3 {
                assert_eq!(drained(&r).len(), 4);
            }
        }
    }

    #[test]
    fn producer_and_consumer_threads_agree() {
        let r = std::sync::Arc::new(Ring::new());
        let n = 20_000i64;
        let producer = {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while i < n {
                    let frame = [i as i16; 160];
                    if r.push(i * 160, &frame) {
                        i += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut next = 0i64;
        while next < n {
            r.drain(|p, s| {
                assert_eq!(p, next * 160);
                assert!(s.iter().all(|&v| v == next as i16));
                next += 1;
            });
        }
        producer.join().unwrap();
    }
}
