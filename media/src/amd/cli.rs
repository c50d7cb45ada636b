//! The cores of `switchboard amd classify` and `switchboard amd eval`: a WAV file (any rate,
//! any channel count) through the [`Detector`], and a labelled directory through it with a
//! confusion matrix and timing statistics. Offline helpers: they read files and allocate.

use crate::amd::resample::{resample, to_i16};
use crate::amd::{Class, Detector, Mode, Params, Verdict, FRAME_SAMPLES, SAMPLE_RATE};
use crate::{wav, Error, Result};
use core::fmt;
use core::time::Duration;
use serde::Serialize;
use std::path::Path;

/// One line of `switchboard amd classify` (JSON, nulls where not applicable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassifyRow {
    /// The file as given.
    pub file: String,
    /// Twilio `AnsweredBy`.
    pub answered_by: &'static str,
    /// Asterisk-style cause.
    pub cause: &'static str,
    /// When the verdict was reached (ms from the start of the file).
    pub decision_ms: u64,
    /// When the greeting ended (ms), if known.
    pub greeting_end_ms: Option<u64>,
    /// Beep frequency (Hz), if a beep was detected.
    pub beep_hz: Option<u32>,
    /// Beep start (ms), if a beep was detected.
    pub beep_ms: Option<u64>,
}

impl ClassifyRow {
    fn new(file: String, v: &Verdict) -> Self {
        ClassifyRow {
            file,
            answered_by: v.answered_by.as_str(),
            cause: v.cause.as_str(),
            decision_ms: ms(v.decision_at),
            greeting_end_ms: v.greeting_end_at.map(ms),
            beep_hz: v.beep.map(|b| b.hz),
            beep_ms: v.beep.map(|b| ms(b.start)),
        }
    }

    /// The coarse class of the verdict.
    pub fn class(&self) -> Class {
        Class::from_label(self.answered_by).unwrap_or(Class::Unknown)
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Runs the detector over 8 kHz samples in 20 ms frames from time zero; at the end of the
/// audio, [`Detector::finish`] decides.
pub fn classify_samples(samples: &[i16], mode: Mode, params: &Params) -> Verdict {
    let mut det = Detector::new(params, mode);
    let mut at = Duration::ZERO;
    for frame in samples.chunks(FRAME_SAMPLES) {
        if let Some(v) = det.push(frame, at) {
            return v;
        }
        at += Duration::from_micros(125 * frame.len() as u64);
    }
    det.finish(at).or(det.verdict()).unwrap_or(Verdict {
        answered_by: crate::amd::AnsweredBy::Unknown,
        cause: crate::amd::Cause::Hangup,
        decision_at: at,
        greeting_end_at: None,
        beep: None,
    })
}

/// Classifies one WAV file: first channel, resampled to 8 kHz. A file that is not a readable
/// WAV is an error ([`Error::Io`], [`Error::InvalidWav`], [`Error::UnsupportedWavFormat`]).
pub fn classify_file(path: &Path, mode: Mode, params: &Params) -> Result<ClassifyRow> {
    let w = wav::read_file(path)?;
    let pcm = to_i16(&resample(&w.samples, w.info.sample_rate, SAMPLE_RATE));
    let v = classify_samples(&pcm, mode, params);
    Ok(ClassifyRow::new(path.display().to_string(), &v))
}

/// One labelled file of a corpus (a line of `labels.csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// File name relative to the corpus directory.
    pub file: String,
    /// True class.
    pub class: Class,
    /// When the greeting ended (ms), if labelled.
    pub greeting_end_ms: Option<u64>,
    /// When the beep starts (ms), if there is one.
    pub beep_ms: Option<u64>,
}

impl Serialize for Class {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Parses `labels.csv`: `file,label[,greeting_end_ms][,beep_ms]`, an optional header line
/// starting with `file`, `#` comments and blank lines ignored, empty fields for "none".
pub fn parse_labels(text: &str) -> Result<Vec<Label>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("file")) {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let bad = |reason| Error::InvalidLabels {
            line: line_no,
            reason,
        };
        let file = fields
            .next()
            .filter(|f| !f.is_empty())
            .ok_or(bad("empty file name"))?;
        let class = fields
            .next()
            .and_then(Class::from_label)
            .ok_or(bad("label is not human, machine*, fax or unknown"))?;
        let mut num = |what| -> Result<Option<u64>> {
            match fields.next() {
                None | Some("") => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| bad(what)),
            }
        };
        let greeting_end_ms = num("greeting_end_ms is not a whole number")?;
        let beep_ms = num("beep_ms is not a whole number")?;
        out.push(Label {
            file: file.to_owned(),
            class,
            greeting_end_ms,
            beep_ms,
        });
    }
    if out.is_empty() {
        return Err(Error::InvalidLabels {
            line: 0,
            reason: "no labelled files",
        });
    }
    Ok(out)
}

/// Median, 95th percentile and maximum of a set of times (ms), with its size.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct TimeStats {
    /// Number of values.
    pub n: usize,
    /// Median (ms), nearest-rank.
    pub median_ms: Option<i64>,
    /// 95th percentile (ms), nearest-rank.
    pub p95_ms: Option<i64>,
    /// Maximum (ms).
    pub max_ms: Option<i64>,
}

impl TimeStats {
    fn of(mut v: Vec<i64>) -> Self {
        v.sort_unstable();
        let rank = |p: f64| -> Option<i64> {
            if v.is_empty() {
                return None;
            }
            let r = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[r - 1])
        };
        TimeStats {
            n: v.len(),
            median_ms: rank(0.5),
            p95_ms: rank(0.95),
            max_ms: v.last().copied(),
        }
    }
}

impl fmt::Display for TimeStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = |v: Option<i64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
        write!(
            f,
            "median {}, p95 {}, max {} (n={})",
            o(self.median_ms),
            o(self.p95_ms),
            o(self.max_ms),
            self.n
        )
    }
}

/// Beep detection against the labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BeepStats {
    /// Files labelled with a beep.
    pub labelled: usize,
    /// Of those, verdicts that reported a beep.
    pub detected: usize,
    /// Detection latency: decision time − labelled beep start.
    pub latency: TimeStats,
    /// Detections within 150 ms of the beep's start.
    pub within_150ms: usize,
    /// Verdicts reporting a beep in files labelled without one.
    pub false_beeps: usize,
}

/// One file's result in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRow {
    /// The label.
    pub label: Label,
    /// The detector's answer.
    pub result: ClassifyRow,
}

/// The result of `switchboard amd eval`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Mode evaluated.
    pub mode: &'static str,
    /// Files evaluated.
    pub total: usize,
    /// `matrix[truth][predicted]`, both in [`Class::ALL`] order.
    pub matrix: [[usize; 4]; 4],
    /// Share of files whose class was right.
    pub accuracy: f64,
    /// Share of humans classified as machines (the costly error).
    pub human_to_machine_rate: f64,
    /// Humans classified human: decision time − labelled greeting end.
    pub human_decision_after_greeting: TimeStats,
    /// Machines with a `machine_end_*` verdict: decision time − labelled greeting end.
    pub machine_end_after_greeting: TimeStats,
    /// Beep detection.
    pub beep: BeepStats,
    /// Every file.
    pub rows: Vec<EvalRow>,
}

/// Evaluates the corpus in `dir` (its `labels.csv` and the files it names).
pub fn evaluate_dir(dir: &Path, mode: Mode, params: &Params) -> Result<EvalReport> {
    let text = std::fs::read_to_string(dir.join("labels.csv"))
        .map_err(|e| Error::Io { kind: e.kind() })?;
    let labels = parse_labels(&text)?;
    let mut rows = Vec::with_capacity(labels.len());
    for label in labels {
        let mut result = classify_file(&dir.join(&label.file), mode, params)?;
        result.file.clone_from(&label.file);
        rows.push(EvalRow { label, result });
    }
    Ok(report(mode, rows))
}

/// Builds the report from evaluated rows.
pub fn report(mode: Mode, rows: Vec<EvalRow>) -> EvalReport {
    let mut matrix = [[0usize; 4]; 4];
    let mut human_times = Vec::new();
    let mut machine_times = Vec::new();
    let mut beep = BeepStats::default();
    let mut latencies = Vec::new();
    for r in &rows {
        let (truth, got) = (r.label.class, r.result.class());
        matrix[truth.index()][got.index()] += 1;
        let decision = r.result.decision_ms as i64;
        if let Some(ge) = r.label.greeting_end_ms {
            if truth == Class::Human && got == Class::Human {
                human_times.push(decision - ge as i64);
            }
            if truth == Class::Machine && r.result.answered_by.starts_with("machine_end") {
                machine_times.push(decision - ge as i64);
            }
        }
        match (r.label.beep_ms, r.result.beep_ms) {
            (Some(start), Some(_)) => {
                beep.labelled += 1;
                beep.detected += 1;
                let lat = decision - start as i64;
                if (0..=150).contains(&lat) {
                    beep.within_150ms += 1;
                }
                latencies.push(lat);
            }
            (Some(_), None) => beep.labelled += 1,
            (None, Some(_)) => beep.false_beeps += 1,
            (None, None) => {}
        }
    }
    beep.latency = TimeStats::of(latencies);
    let total = rows.len();
    let correct: usize = (0..4).map(|i| matrix[i][i]).sum();
    let humans: usize = matrix[Class::Human.index()].iter().sum();
    let h2m = matrix[Class::Human.index()][Class::Machine.index()];
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    EvalReport {
        mode: mode.as_str(),
        total,
        matrix,
        accuracy: ratio(correct, total),
        human_to_machine_rate: ratio(h2m, humans),
        human_decision_after_greeting: TimeStats::of(human_times),
        machine_end_after_greeting: TimeStats::of(machine_times),
        beep,
        rows,
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "AMD evaluation: {} files, mode {}",
            self.total, self.mode
        )?;
        writeln!(f, "confusion matrix (rows: truth, columns: predicted)")?;
        write!(f, "{:>10}", "")?;
        for c in Class::ALL {
            write!(f, "{:>10}", c.as_str())?;
        }
        writeln!(f)?;
        for t in Class::ALL {
            write!(f, "{:>10}", t.as_str())?;
            for p in Class::ALL {
                write!(f, "{:>10}", self.matrix[t.index()][p.index()])?;
            }
            writeln!(f)?;
        }
        writeln!(f, "accuracy: {:.1} %", self.accuracy * 100.0)?;
        writeln!(
            f,
            "human -> machine: {:.1} % ({} of {})",
            self.human_to_machine_rate * 100.0,
            self.matrix[0][1],
            self.matrix[0].iter().sum::<usize>()
        )?;
        writeln!(
            f,
            "human decision after greeting end: {}",
            self.human_decision_after_greeting
        )?;
        writeln!(
            f,
            "machine message end after greeting end: {}",
            self.machine_end_after_greeting
        )?;
        writeln!(
            f,
            "beeps: {} of {} detected, {} within 150 ms of their start, {} false; latency {}",
            self.beep.detected,
            self.beep.labelled,
            self.beep.within_150ms,
            self.beep.false_beeps,
            self.beep.latency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_header_blanks_and_optional_fields() {
        let l = parse_labels("file,label,greeting_end_ms,beep_ms\na.wav,human,900,\n\nb.wav,machine_end_beep,4000,4500\nc.wav,fax\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].greeting_end_ms, Some(900));
        assert_eq!(l[0].beep_ms, None);
        assert_eq!(l[1].class, Class::Machine);
        assert_eq!(l[1].beep_ms, Some(4500));
        assert_eq!(
            parse_labels("a.wav,robot"),
            Err(Error::InvalidLabels {
                line: 1,
                reason: "label is not human, machine*, fax or unknown"
            })
        );
        assert!(parse_labels("a.wav,human,x").is_err());
        assert!(parse_labels("").is_err());
    }

    #[test]
    fn time_stats_nearest_rank() {
        let s = TimeStats::of((1..=20).collect());
        assert_eq!(
            (s.median_ms, s.p95_ms, s.max_ms),
            (Some(10), Some(19), Some(20))
        );
        assert_eq!(TimeStats::of(vec![]).median_ms, None);
    }

    #[test]
    fn not_audio_is_an_error() {
        let dir = std::env::temp_dir().join(format!("amd-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.wav");
        std::fs::write(&p, b"this is text").unwrap();
        assert!(matches!(
            classify_file(&p, Mode::Enable, &Params::default()),
            Err(Error::InvalidWav { .. })
        ));
        assert!(matches!(
            classify_file(&dir.join("missing.wav"), Mode::Enable, &Params::default()),
            Err(Error::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
