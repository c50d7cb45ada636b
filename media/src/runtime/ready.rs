//! Which sockets of a media loop have become readable, without a task per socket.
//!
//! Every socket is registered with tokio's reactor through `poll_recv_ready` with a waker of
//! its own ([`SocketWaker`]) that knows its bit. When the reactor finds the socket readable it
//! wakes that waker, which sets the bit in the loop's [`ReadySet`] (an atomic bitset) and wakes
//! the loop task once. The loop then takes the set bits word by word and drains exactly those
//! sockets with `try_recv_from`. A wake costs two atomic operations: no lock, no channel, no
//! allocation (the wakers are created when a stream opens).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::{Arc, OnceLock};
use std::task::Wake;

/// The ready bits of one loop.
#[derive(Debug)]
pub(crate) struct ReadySet {
    words: Box<[AtomicU64]>,
    pending: AtomicBool,
    /// The loop task's waker. The loop is the root future of its own current-thread runtime
    /// (`block_on`), whose waker is the same for the life of the loop, so it is stored once.
    loop_waker: OnceLock<Waker>,
}

impl ReadySet {
    pub(crate) fn new(bits: usize) -> Arc<Self> {
        Arc::new(Self {
            words: (0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            pending: AtomicBool::new(false),
            loop_waker: OnceLock::new(),
        })
    }

    /// Number of bits.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.words.len() * 64
    }

    /// Sets `bit` and wakes the loop.
    pub(crate) fn mark(&self, bit: usize) {
        if let Some(word) = self.words.get(bit / 64) {
            word.fetch_or(1 << (bit % 64), Ordering::Release);
            self.pending.store(true, Ordering::Release);
            if let Some(w) = self.loop_waker.get() {
                w.wake_by_ref();
            }
        }
    }

    /// Ready when some bit may be set; registers the loop's waker on first use.
    pub(crate) fn poll_pending(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.loop_waker.get_or_init(|| cx.waker().clone());
        if self.pending.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Takes (clears) word `i` of the first `words` words that have bits set, calling `f` with
    /// each set bit.
    pub(crate) fn take_each(&self, words: usize, mut f: impl FnMut(usize)) {
        for (i, word) in self.words.iter().take(words).enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::Acquire);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                f(i * 64 + b);
            }
        }
    }
}

/// The waker given to the reactor for one socket.
#[derive(Debug)]
pub(crate) struct SocketWaker {
    set: Arc<ReadySet>,
    bit: usize,
}

impl SocketWaker {
    pub(crate) fn waker(set: &Arc<ReadySet>, bit: usize) -> Waker {
        Waker::from(Arc::new(Self {
            set: Arc::clone(set),
            bit,
        }))
    }
}

impl Wake for SocketWaker {
    fn wake(self: Arc<Self>) {
        self.set.mark(self.bit);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set.mark(self.bit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_takes() {
        let set = ReadySet::new(200);
        assert_eq!(set.capacity(), 256);
        let w = SocketWaker::waker(&set, 130);
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(set.poll_pending(&mut cx).is_pending());
        w.wake_by_ref();
        set.mark(3);
        set.mark(9999); // Out of range: ignored.
        assert!(set.poll_pending(&mut cx).is_ready());
        assert!(set.poll_pending(&mut cx).is_pending());
        let mut got = Vec::new();
        set.take_each(4, |b| got.push(b));
        assert_eq!(got, [3, 130]);
        got.clear();
        set.take_each(4, |b| got.push(b));
        assert!(got.is_empty());
    }
}
