//! The write-behind queue: call transitions and lead results leave the call tasks through an
//! unbounded channel and are written by one task in batches (one transaction per batch, at
//! most every `interval` or `max_batch` writes), so no call task ever waits on the database.
//! Order is kept (one writer). A failed batch is retried; shutdown drains the queue.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::dialer::attempts::EngineWrite;
use crate::Store;

/// Counters of the queue (for `/metrics`).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Writes queued and not yet committed.
    pub depth: AtomicUsize,
    pub committed: AtomicU64,
    pub batches: AtomicU64,
    pub failures: AtomicU64,
}

pub(crate) struct WriteBehind {
    tx: std::sync::Mutex<Option<mpsc::UnboundedSender<EngineWrite>>>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(crate) stats: Arc<WriterStats>,
}

impl WriteBehind {
    pub(crate) fn start(store: Store, max_batch: usize, interval: Duration) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<EngineWrite>();
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            loop {
                // Wait for the first write, then gather what arrives within `interval`.
                match rx.recv().await {
                    Some(w) => batch.push(w),
                    None => break,
                }
                let until = tokio::time::Instant::now() + interval;
                let mut closed = false;
                while batch.len() < max_batch {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(w)) => batch.push(w),
                        Ok(None) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                flush(&store, &mut batch, &st).await;
                if closed {
                    break;
                }
            }
            flush(&store, &mut batch, &st).await;
        });
        Self {
            tx: std::sync::Mutex::new(Some(tx)),
            task: std::sync::Mutex::new(Some(task)),
            stats,
        }
    }

    pub(crate) fn push(&self, w: EngineWrite) {
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = guard.as_ref() {
            if tx.send(w).is_ok() {
                self.stats.depth.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue and waits until everything queued is written.
    pub(crate) async fn drain(&self) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn flush(store: &Store, batch: &mut Vec<EngineWrite>, st: &WriterStats) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    for attempt in 0..6 {
        match store.apply_engine_writes(batch).await {
            Ok(()) => {
                st.committed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                st.batches.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Err(e) => {
                st.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, attempt, writes = batch.len(), "write-behind batch failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    st.depth.fetch_sub(batch.len(), Ordering::Relaxed);
    batch.clear();
}
