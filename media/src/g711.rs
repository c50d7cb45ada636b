//! ITU-T G.711 companding: μ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).
//!
//! Samples are 16-bit linear PCM. Encoding works on the magnitude with bit operations (the
//! segment is the position of the highest set bit); decoding uses 256-entry tables computed at
//! compile time. Slice functions write into caller buffers and never allocate.
//!
//! μ-law: 14-bit magnitude range, bias 132 (0x84), clip at 32635, codes are stored inverted
//! (0xFF is +0, 0x7F is -0). A-law: 13-bit magnitude (the 3 low bits are dropped), segment 0
//! is linear, even bits are inverted (XOR 0x55) on the wire.

use crate::{Error, Result};

/// μ-law bias added to the magnitude before finding the segment.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude μ-law encodes without clipping (32767 - bias).
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear sample to μ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    let s = sample as i32;
    let (magnitude, mask) = if s < 0 { (-s, 0x7f) } else { (s, 0xff) };
    let magnitude = if magnitude > ULAW_CLIP {
        ULAW_CLIP
    } else {
        magnitude
    } + ULAW_BIAS;
    // magnitude is in 132..=32767: its highest set bit is bit 7..=14, so segment 0..=7.
    let segment = (31 - magnitude.leading_zeros()) as i32 - 7;
    let mantissa = (magnitude >> (segment + 3)) & 0x0f;
    (((segment << 4) | mantissa) ^ mask) as u8
}

/// Decodes one μ-law code to linear (range ±32124).
pub const fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

const fn ulaw_decode_calc(code: u8) -> i16 {
    let u = !code;
    let segment = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear sample to A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    // Work on the 13-bit value; negative values map to their one's complement magnitude so
    // that -1..-8 (13-bit -1) share the code of 0..7 with the sign bit cleared.
    let v = (sample as i32) >> 3;
    let (magnitude, mask) = if v >= 0 { (v, 0xd5) } else { (-v - 1, 0x55) };
    // magnitude is in 0..=4095.
    let aval = if magnitude < 32 {
        magnitude >> 1
    } else {
        let segment = (31 - magnitude.leading_zeros()) as i32 - 4; // 1..=7
        (segment << 4) | ((magnitude >> if segment == 1 { 1 } else { segment }) & 0x0f)
    };
    (aval ^ mask) as u8
}

/// Decodes one A-law code to linear (range ±32256).
pub const fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

const fn alaw_decode_calc(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        _ => ((mantissa << 4) + 0x108) << (segment - 1),
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode_calc(i as u8)
        } else {
            ulaw_decode_calc(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// The two G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law, PCMU, static payload type 0 (North America, Japan).
    Mu,
    /// A-law, PCMA, static payload type 8 (elsewhere).
    A,
}

impl Law {
    /// The static RTP payload type (RFC 3551).
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    /// The law of a static payload type, if it is 0 or 8.
    pub const fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => None,
        }
    }

    /// The code of digital silence (+0).
    pub const fn silence(self) -> u8 {
        match self {
            Law::Mu => 0xff,
            Law::A => 0xd5,
        }
    }

    /// Encodes one sample.
    pub const fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Law::Mu => linear_to_ulaw(sample),
            Law::A => linear_to_alaw(sample),
        }
    }

    /// Decodes one code.
    pub const fn decode_sample(self, code: u8) -> i16 {
        match self {
            Law::Mu => ulaw_to_linear(code),
            Law::A => alaw_to_linear(code),
        }
    }

    /// Encodes `pcm` into the front of `out`; returns the number of bytes written
    /// (`pcm.len()`). Errors with [`Error::BufferTooSmall`] if `out` is shorter than `pcm`.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> Result<usize> {
        let out = check_len(pcm.len(), out)?;
        match self {
            Law::Mu => out
                .iter_mut()
                .zip(pcm)
                .for_each(|(o, &s)| *o = linear_to_ulaw(s)),
            Law::A => out
                .iter_mut()
                .zip(pcm)
                .for_each(|(o, &s)| *o = linear_to_alaw(s)),
        }
        Ok(pcm.len())
    }

    /// Decodes `codes` into the front of `out`; returns the number of samples written
    /// (`codes.len()`). Errors with [`Error::BufferTooSmall`] if `out` is shorter.
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> Result<usize> {
        let out = check_len(codes.len(), out)?;
        let table = match self {
            Law::Mu => &ULAW_TABLE,
            Law::A => &ALAW_TABLE,
        };
        out.iter_mut()
            .zip(codes)
            .for_each(|(o, &c)| *o = table[usize::from(c)]);
        Ok(codes.len())
    }
}

fn check_len<T>(needed: usize, out: &mut [T]) -> Result<&mut [T]> {
    let available = out.len();
    out.get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed, available })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7f);

        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
        assert_eq!(Law::Mu.silence(), linear_to_ulaw(0));
        assert_eq!(Law::A.silence(), linear_to_alaw(0));
    }

    /// Quantization error bound: half a step of the segment, where the step is 1/16 of the
    /// segment's lower edge (both laws), plus clipping at the top of the range.
    #[test]
    fn roundtrip_error_bounds_all_inputs() {
        let mut max_mu = 0;
        let mut max_a = 0;
        for s in i16::MIN..=i16::MAX {
            let x = i32::from(s);
            let mu = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            assert!(mu.signum() * x.signum() >= 0, "μ-law sign of {s}");
            assert!(a.signum() * x.signum() >= 0, "A-law sign of {s}");
            let (emu, ea) = ((mu - x).abs(), (a - x).abs());
            if x.abs() <= 32124 {
                assert!(emu <= (x.abs() + 132) / 32 + 1, "μ-law {s} -> {mu}");
            }
            if x.abs() <= 32256 {
                assert!(ea <= (x.abs() / 32).max(8) + 8, "A-law {s} -> {a}");
            }
            max_mu = max_mu.max(emu);
            max_a = max_a.max(ea);
        }
        // Worst case is clipping at the extremes.
        assert_eq!(max_mu, 32768 - 32124);
        assert!(max_a <= 1024, "{max_a}");
    }

    #[test]
    fn codes_are_fixed_points() {
        for c in 0..=255u8 {
            let mu = linear_to_ulaw(ulaw_to_linear(c));
            // -0 (0x7f) decodes to 0, which encodes as +0.
            assert_eq!(mu, if c == 0x7f { 0xff } else { c }, "μ-law {c:#x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#x}");
        }
    }

    #[test]
    fn decoding_is_monotonic() {
        for law in [Law::Mu, Law::A] {
            let mut prev = i16::MIN;
            for s in i16::MIN..=i16::MAX {
                let d = law.decode_sample(law.encode_sample(s));
                assert!(d >= prev, "{law:?} at {s}");
                prev = d;
            }
        }
    }

    #[test]
    fn slices() {
        let pcm = [0i16, 1000, -1000, 32767, -32768];
        for law in [Law::Mu, Law::A] {
            let mut enc = [0u8; 8];
            assert_eq!(law.encode(&pcm, &mut enc).unwrap(), 5);
            let mut dec = [0i16; 5];
            assert_eq!(law.decode(&enc[..5], &mut dec).unwrap(), 5);
            for (d, s) in dec.iter().zip(pcm) {
                assert_eq!(*d, law.decode_sample(law.encode_sample(s)));
            }
            assert_eq!(
                law.encode(&pcm, &mut [0u8; 4]),
                Err(Error::BufferTooSmall {
                    needed: 5,
                    available: 4
                })
            );
            assert!(law.decode(&enc, &mut [0i16; 2]).is_err());
            assert_eq!(Law::from_payload_type(law.payload_type()), Some(law));
        }
        assert_eq!(Law::from_payload_type(9), None);
    }
}
