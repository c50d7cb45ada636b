//! Prompts played into calls (the voicemail drop, the abandon message, hold audio): audio
//! files decoded once into a [`Clip`] at 8 kHz, kept in a [`PromptCache`], and played by a
//! [`LoopingClip`] on a stream's 20 ms tick.
//!
//! Accepted files: WAV (PCM 8/16/24/32-bit, float, μ-law, A-law; any sample rate from 1 kHz
//! to 768 kHz, resampled to 8 kHz with the band-limited resampler of [`crate::amd::resample`];
//! several channels are mixed down to one), and raw headerless G.711 at 8 kHz, recognised by
//! its file extension (`.ulaw`, `.mulaw`, `.ul`, `.pcmu`, `.g711u`; `.alaw`, `.al`, `.pcma`,
//! `.g711a`). Decoding allocates and takes a few milliseconds per second of 48 kHz audio: do
//! it off the media loop (e.g. in `spawn_blocking`), once per prompt, through the cache.
//!
//! To play a clip once into a stream:
//! `handle.set_source(Some(Box::new(LoopingClip::once(clip))))`; the source ends after the
//! last frame (the stream then sends nothing until a new source is set). `LoopingClip::new`
//! loops it (hold audio).
//!
//! [`LoopingClip`]: crate::runtime::LoopingClip

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::amd::resample::{resample, to_i16};
use crate::g711::Law;
use crate::runtime::Clip;
use crate::session::FRAME_SAMPLES;
use crate::{wav, Error, Result};

/// The sample rate of every clip.
pub const CLIP_RATE: u32 = 8000;

/// Decodes an audio file held in memory into a clip: a WAV file (recognised by its RIFF
/// header), or, when `raw` is given and the bytes are not a WAV file, headerless G.711 in
/// that law.
pub fn decode_clip(bytes: &[u8], raw: Option<Law>) -> Result<Arc<Clip>> {
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        let w = wav::parse_downmix(bytes)?;
        let at_8k = if w.info.sample_rate == CLIP_RATE {
            w.samples
        } else {
            resample(&w.samples, w.info.sample_rate, CLIP_RATE)
        };
        return Ok(Clip::from_pcm(&to_i16(&at_8k)));
    }
    match raw {
        Some(law) => {
            let pcm: Vec<i16> = bytes.iter().map(|&c| law.decode_sample(c)).collect();
            Ok(Clip::from_pcm(&pcm))
        }
        None => Err(Error::UnknownAudioFormat),
    }
}

/// The G.711 law a raw file's extension names, if any.
pub fn raw_law_of(path: &Path) -> Option<Law> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "ulaw" | "mulaw" | "ul" | "pcmu" | "g711u" => Some(Law::Mu),
        "alaw" | "al" | "pcma" | "g711a" => Some(Law::A),
        _ => None,
    }
}

/// Reads and decodes an audio file (see [`decode_clip`]; raw G.711 by extension).
pub fn load_clip(path: &Path) -> Result<Arc<Clip>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { kind: e.kind() })?;
    decode_clip(&bytes, raw_law_of(path))
}

/// Bytes a clip holds in memory (both laws).
fn clip_bytes(clip: &Clip) -> usize {
    clip.frames() * FRAME_SAMPLES * 2
}

/// One cached prompt: its slot is locked while it is decoded, so concurrent requests for the
/// same key wait for that one decode instead of repeating it.
type Slot = Arc<Mutex<Option<Arc<Clip>>>>;

#[derive(Debug)]
struct Entry {
    slot: Slot,
    /// Recency: the cache's counter when last used.
    used: u64,
    /// Size once decoded (0 while decoding).
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    tick: u64,
    bytes: usize,
}

/// Decoded prompts by key (a path or a URL), shared by every call; thread-safe. Each key is
/// decoded once while it stays cached. The cache holds at most `max_bytes` of decoded audio
/// (16 kB per second of prompt) and evicts the least recently used prompts beyond that; a
/// prompt larger than the whole budget is decoded and returned but not kept. Streams playing
/// an evicted clip keep it alive through their `Arc`.
#[derive(Debug)]
pub struct PromptCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

impl PromptCache {
    /// A cache holding at most `max_bytes` of decoded audio.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The prompt at `key` if it is cached.
    pub fn get(&self, key: &str) -> Option<Arc<Clip>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.entries.get_mut(key)?;
        e.used = tick;
        let slot = e.slot.clone();
        drop(inner);
        // A prompt being decoded right now is not there yet.
        let found = slot.try_lock().ok().and_then(|g| g.clone());
        found
    }

    /// The prompt at `key`, decoded by `load` if it is not cached (errors are returned and
    /// not cached). Blocking: call it off async tasks and media loops.
    pub fn get_or_load_with(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Arc<Clip>>,
    ) -> Result<Arc<Clip>> {
        let slot = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            let e = inner
                .entries
                .entry(key.to_owned())
                .or_insert_with(|| Entry {
                    slot: Slot::default(),
                    used: tick,
                    bytes: 0,
                });
            e.used = tick;
            e.slot.clone()
        };
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(clip) = guard.as_ref() {
            return Ok(clip.clone());
        }
        let loaded = load();
        let clip = match loaded {
            Ok(c) => c,
            Err(e) => {
                drop(guard);
                self.forget(key, &slot);
                return Err(e);
            }
        };
        let size = clip_bytes(&clip);
        if size > self.max_bytes {
            drop(guard);
            self.forget(key, &slot);
            return Ok(clip);
        }
        *guard = Some(clip.clone());
        drop(guard);
        let mut inner = self.lock();
        if let Some(e) = inner
            .entries
            .get_mut(key)
            .filter(|e| Arc::ptr_eq(&e.slot, &slot))
        {
            e.bytes = size;
            inner.bytes += size;
        }
        self.evict(&mut inner, key);
        Ok(clip)
    }

    /// The prompt in the file at `path` (the key is the path as given), decoded once.
    pub fn load(&self, path: &Path) -> Result<Arc<Clip>> {
        let key = path.to_string_lossy();
        self.get_or_load_with(&key, || load_clip(path))
    }

    /// Drops `key` from the cache (e.g. the file changed).
    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.remove(key) {
            inner.bytes -= e.bytes;
        }
    }

    /// Prompts cached (decoded).
    pub fn len(&self) -> usize {
        self.lock().entries.values().filter(|e| e.bytes > 0).count()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of decoded audio held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Removes `key` if it still maps to `slot` (a failed or oversized load).
    fn forget(&self, key: &str, slot: &Slot) {
        let mut inner = self.lock();
        if inner
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, slot))
        {
            if let Some(e) = inner.entries.remove(key) {
                inner.bytes -= e.bytes;
            }
        }
    }

    /// Evicts least recently used decoded prompts (never `keep`) while over budget.
    fn evict(&self, inner: &mut Inner, keep: &str) {
        while inner.bytes > self.max_bytes {
            let victim = inner
                .entries
                .iter()
                .filter(|(k, e)| e.bytes > 0 && k.as_str() != keep)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(k) = victim else {
                break;
            };
            if let Some(e) = inner.entries.remove(&k) {
                inner.bytes -= e.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{FrameSource, LoopingClip, SourceFrame};

    #[test]
    fn raw_g711_and_unknown_bytes() {
        let codes: Vec<u8> = (0..200).map(|i| Law::A.encode_sample(i * 100)).collect();
        let clip = decode_clip(&codes, Some(Law::A)).unwrap();
        assert_eq!(clip.frames(), 2);
        let mut src = LoopingClip::once(clip);
        let mut out = [0u8; FRAME_SAMPLES];
        assert_eq!(src.next_frame(Law::A, &mut out), SourceFrame::Audio);
        assert_eq!(&out[..], &codes[..160]);
        assert_eq!(src.next_frame(Law::A, &mut out), SourceFrame::Audio);
        assert_eq!(&out[..40], &codes[160..]);
        assert!(out[40..].iter().all(|&b| b == Law::A.silence()));
        assert_eq!(src.next_frame(Law::A, &mut out), SourceFrame::End);
        assert_eq!(
            decode_clip(b"not audio", None),
            Err(Error::UnknownAudioFormat)
        );
        assert_eq!(raw_law_of(Path::new("x/abandon.PCMU")), Some(Law::Mu));
        assert_eq!(raw_law_of(Path::new("x/abandon.al")), Some(Law::A));
        assert_eq!(raw_law_of(Path::new("x/abandon.wav")), None);
        // A WAV header wins over the extension hint; a broken one is an error.
        assert!(matches!(
            decode_clip(b"RIFF\0\0\0\0WAVEjunk", Some(Law::Mu)),
            Err(Error::InvalidWav { .. })
        ));
    }

    fn clip_of_frames(frames: usize) -> Arc<Clip> {
        Clip::from_pcm(&vec![1000; frames * FRAME_SAMPLES])
    }

    #[test]
    fn cache_decodes_once_evicts_lru_and_skips_errors() {
        let frame_bytes = FRAME_SAMPLES * 2;
        let cache = PromptCache::new(10 * frame_bytes);
        let mut loads = 0;
        for _ in 0..3 {
            let c = cache
                .get_or_load_with("a", || {
                    loads += 1;
                    Ok(clip_of_frames(4))
                })
                .unwrap();
            assert_eq!(c.frames(), 4);
        }
        assert_eq!(loads, 1);
        assert_eq!(cache.bytes(), 4 * frame_bytes);
        cache
            .get_or_load_with("b", || Ok(clip_of_frames(4)))
            .unwrap();
        // Touch a: b is now the least recently used.
        assert!(cache.get("a").is_some());
        cache
            .get_or_load_with("c", || Ok(clip_of_frames(4)))
            .unwrap();
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!((cache.len(), cache.bytes()), (2, 8 * frame_bytes));
        // Errors are returned and not cached; too-large prompts are returned and not kept.
        assert_eq!(
            cache.get_or_load_with("bad", || Err(Error::UnknownAudioFormat)),
            Err(Error::UnknownAudioFormat)
        );
        let big = cache
            .get_or_load_with("big", || Ok(clip_of_frames(11)))
            .unwrap();
        assert_eq!(big.frames(), 11);
        assert!(cache.get("big").is_none() && cache.get("bad").is_none());
        assert_eq!(cache.len(), 2);
        cache.remove("a");
        assert_eq!((cache.len(), cache.bytes()), (1, 4 * frame_bytes));
    }

    #[test]
    fn concurrent_requests_for_one_key_decode_once() {
        let cache = Arc::new(PromptCache::new(1 << 20));
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_load_with("hold", || {
                            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok(clip_of_frames(2))
                        })
                        .unwrap()
                })
            })
            .collect();
        let clips: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(clips.iter().all(|c| Arc::ptr_eq(c, &clips[0])));
    }
}
