//! Offline sample-rate conversion to 8 kHz for files (`switchboard amd classify`).
//!
//! A windowed-sinc interpolator (Blackman window, 16 zero crossings each side) whose cut-off
//! is 0.9 × the lower Nyquist frequency, so downsampling is band-limited. It works for any
//! ratio. It allocates its output and is for offline use; the live path receives 8 kHz G.711.

use core::f64::consts::PI;

/// Zero crossings of the sinc on each side.
const ZEROS: f64 = 16.0;
/// Kernel table entries per input sample.
const STEPS: f64 = 64.0;

/// Converts `input` sampled at `from_hz` to `to_hz`. Returns a copy when the rates match and
/// an empty vector for empty input or a zero rate.
pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if input.is_empty() || from_hz == 0 || to_hz == 0 {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    let ratio = f64::from(from_hz) / f64::from(to_hz);
    // Cut-off relative to the input rate's Nyquist.
    let cutoff = 0.9 * (1.0 / ratio).min(1.0);
    let half = (ZEROS / cutoff).ceil();
    // Output samples whose time falls within the input.
    let out_len = ((input.len() - 1) as f64 / ratio).floor() as usize + 1;
    // The kernel is tabulated at 1/64 of an input sample and linearly interpolated.
    let table_len = (half * STEPS) as usize + 2;
    let table: Vec<f64> = (0..table_len)
        .map(|i| {
            let d = i as f64 / STEPS;
            if d > half {
                return 0.0;
            }
            let arg = d * cutoff;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                (PI * arg).sin() / (PI * arg)
            };
            // Blackman window over [-half, half].
            let w = 0.42 + 0.5 * (PI * d / half).cos() + 0.08 * (2.0 * PI * d / half).cos();
            sinc * w * cutoff
        })
        .collect();
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 * ratio;
        let first = (t - half).ceil().max(0.0) as usize;
        let last = ((t + half).floor() as usize).min(input.len() - 1);
        let mut acc = 0.0;
        for (k, &x) in input.iter().enumerate().take(last + 1).skip(first) {
            let pos = (k as f64 - t).abs() * STEPS;
            let i = pos as usize;
            let frac = pos - i as f64;
            let (a, b) = (
                table.get(i).copied().unwrap_or(0.0),
                table.get(i + 1).copied().unwrap_or(0.0),
            );
            acc += f64::from(x) * (a + (b - a) * frac);
        }
        out.push(acc as f32);
    }
    out
}

/// Converts float samples (full scale ±32768) to saturated `i16`.
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| {
            if s.is_finite() {
                s.round().clamp(-32768.0, 32767.0) as i16
            } else {
                0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, secs: f64) -> Vec<f32> {
        (0..(f64::from(rate) * secs) as usize)
            .map(|i| ((2.0 * PI * hz * i as f64 / f64::from(rate)).sin() * 10000.0) as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn passband_tone_keeps_its_level_and_stopband_tone_is_removed() {
        for rate in [11025, 16000, 22050, 44100, 48000] {
            let pass = resample(&sine(rate, 1000.0, 0.5), rate, 8000);
            assert!(pass.len().abs_diff(4000) <= 1, "{rate}: {}", pass.len());
            let r = rms(&pass[200..3800]);
            assert!((r - 7071.0).abs() < 150.0, "{rate}: {r}");
            if rate >= 16000 {
                // 6 kHz would alias to 2 kHz without the low-pass.
                let stop = resample(&sine(rate, 6000.0, 0.5), rate, 8000);
                assert!(rms(&stop[200..3800]) < 150.0, "{rate}");
            }
        }
        let up = resample(&sine(4000, 500.0, 0.5), 4000, 8000);
        assert!((rms(&up[200..3800]) - 7071.0).abs() < 200.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(resample(&[], 16000, 8000).is_empty());
        assert!(resample(&[1.0], 0, 8000).is_empty());
        assert_eq!(resample(&[1.0, 2.0], 8000, 8000), vec![1.0, 2.0]);
        assert_eq!(
            to_i16(&[40000.0, -40000.0, f32::NAN, 1.4]),
            vec![32767, -32768, 0, 1]
        );
    }
}
