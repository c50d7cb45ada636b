//! Call quality as a MOS estimate: the ITU-T G.107 E-model in the simplified form used by
//! rtpengine, VoIPmonitor and others.
//!
//! - `R = 93.2 - Id - Ie_eff`: G.107 defaults for everything except delay and equipment
//!   impairment (Ro - Is = 93.2, advantage factor A = 0).
//! - `Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.2), Ppl in percent,
//!   BurstR = 1 for random loss, > 1 for bursty loss.
//! - **Delay impairment: the Cole–Rosenbluth simplification** (Cole & Rosenbluth, "Voice over
//!   IP performance monitoring", ACM CCR 2001): `Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)`
//!   with `d` the one-way mouth-to-ear delay in ms and `H` the step function. It is not the
//!   full G.107 Idd/Idte/Idle computation and moves results by more than 0.01 MOS; every MOS
//!   this crate reports uses it.
//! - `MOS = 1` if R < 0, `4.5` if R > 100, else `1 + 0.035 R + 7e-6 R (R - 60) (100 - R)`.

/// Ro - Is with G.107 default values.
pub const R_DEFAULT: f64 = 93.2;
/// Delay at which the Cole–Rosenbluth model adds the steeper slope, ms.
pub const DELAY_KNEE_MS: f64 = 177.3;

/// Equipment impairment of a codec (ITU-T G.113 style planning values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor without loss.
    pub ie: f64,
    /// Packet-loss robustness factor.
    pub bpl: f64,
}

/// G.711 without packet-loss concealment (G.113 Appendix I: Ie 0, Bpl 4.3).
pub const G711_NO_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 4.3 };

/// G.711 with packet-loss concealment per G.711 Appendix I (G.113: Ie 0, Bpl 25.1). This is
/// what Switchboard assumes for its own G.711 legs.
pub const G711_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };

/// Opus on the narrowband E-model scale. ITU-T G.113 publishes no Ie/Bpl for Opus, so these
/// are our planning values, stated so they can be challenged:
/// - Ie 0: at the bitrates used for telephony (≥ 16 kb/s, 20 ms frames) Opus is at least as
///   good as G.711 in listening tests, and the narrowband E-model cannot credit anything
///   better than G.711 (Ie would go negative).
/// - Bpl 20.0: Opus has built-in concealment, but a lost 20 ms Opus frame takes away more
///   than a lost G.711 frame concealed by G.711 Appendix I (Bpl 25.1) and about as much as
///   the CELP codecs with PLC listed in G.113 (G.729A: Bpl 19.0). We take 20.0, between the
///   two, without in-band FEC; with FEC (`useinbandfec=1`) the real robustness is higher, so
///   the estimate errs on the pessimistic side.
pub const OPUS: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 20.0 };

/// Delay impairment `Id` for a one-way delay in ms (Cole–Rosenbluth; negative delays count
/// as 0).
pub fn delay_impairment(one_way_delay_ms: f64) -> f64 {
    let d = if one_way_delay_ms.is_finite() {
        one_way_delay_ms.max(0.0)
    } else {
        0.0
    };
    let mut id = 0.024 * d;
    if d > DELAY_KNEE_MS {
        id += 0.11 * (d - DELAY_KNEE_MS);
    }
    id
}

/// Effective equipment impairment `Ie_eff` for a loss percentage (0..=100; clamped) and
/// burst ratio (1 for random loss; non-positive or non-finite values are taken as 1).
pub fn effective_equipment_impairment(
    codec: CodecImpairment,
    ppl_percent: f64,
    burst_r: f64,
) -> f64 {
    let ppl = if ppl_percent.is_finite() {
        ppl_percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let burst_r = if burst_r.is_finite() && burst_r > 0.0 {
        burst_r
    } else {
        1.0
    };
    let denom = ppl / burst_r + codec.bpl;
    if ppl == 0.0 || denom <= 0.0 {
        return codec.ie;
    }
    codec.ie + (95.0 - codec.ie) * ppl / denom
}

/// MOS from the rating factor R.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        1.0
    } else if r > 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// Inputs of one quality estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInput {
    /// Codec impairment values.
    pub codec: CodecImpairment,
    /// One-way mouth-to-ear delay in ms: typically RTT/2 plus the jitter buffer depth plus
    /// the codec's frame and look-ahead.
    pub one_way_delay_ms: f64,
    /// Packet loss in percent.
    pub loss_percent: f64,
    /// Burst ratio (1 for random loss).
    pub burst_r: f64,
}

/// Result of the E-model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityEstimate {
    /// Delay impairment.
    pub id: f64,
    /// Effective equipment impairment.
    pub ie_eff: f64,
    /// Rating factor.
    pub r: f64,
    /// Mean opinion score, 1..=4.5.
    pub mos: f64,
}

/// Runs the E-model on `input`.
pub fn estimate(input: QualityInput) -> QualityEstimate {
    let id = delay_impairment(input.one_way_delay_ms);
    let ie_eff = effective_equipment_impairment(input.codec, input.loss_percent, input.burst_r);
    let r = R_DEFAULT - id - ie_eff;
    QualityEstimate {
        id,
        ie_eff,
        r,
        mos: mos_from_r(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn reference_check_values() {
        assert!(close(mos_from_r(93.2), 4.4093), "{}", mos_from_r(93.2));
        assert!(close(mos_from_r(80.0), 4.0240), "{}", mos_from_r(80.0));
        assert!(close(mos_from_r(50.0), 2.5750), "{}", mos_from_r(50.0));

        let e = estimate(QualityInput {
            codec: G711_PLC,
            one_way_delay_ms: 50.0,
            loss_percent: 1.0,
            burst_r: 1.0,
        });
        assert!(close(e.id, 1.2));
        assert!(close(e.ie_eff, 3.6398), "{}", e.ie_eff);
        assert!(close(e.r, 88.3602), "{}", e.r);
        assert!(close(e.mos, 4.2968), "{}", e.mos);

        let e = estimate(QualityInput {
            codec: G711_NO_PLC,
            one_way_delay_ms: 50.0,
            loss_percent: 1.0,
            burst_r: 1.0,
        });
        assert!(close(e.ie_eff, 17.9245), "{}", e.ie_eff);
        assert!(close(e.r, 74.0755), "{}", e.r);
        assert!(close(e.mos, 3.7819), "{}", e.mos);
    }

    #[test]
    fn perfect_call_and_limits() {
        let e = estimate(QualityInput {
            codec: G711_PLC,
            one_way_delay_ms: 0.0,
            loss_percent: 0.0,
            burst_r: 1.0,
        });
        assert!(close(e.r, 93.2) && close(e.mos, 4.4093));
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(100.5), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        // Every loss is total loss: Ie_eff = 95 - ... approaches 95 * 100 / (100 + Bpl).
        assert!(close(
            effective_equipment_impairment(G711_PLC, 100.0, 1.0),
            95.0 * 100.0 / 125.1
        ));
        assert_eq!(
            effective_equipment_impairment(G711_PLC, f64::NAN, f64::NAN),
            0.0
        );
        assert_eq!(
            effective_equipment_impairment(CodecImpairment { ie: 5.0, bpl: 0.0 }, 0.0, 1.0),
            5.0
        );
    }

    #[test]
    fn delay_knee_and_burstiness() {
        assert!(close(delay_impairment(177.3), 0.024 * 177.3));
        assert!(close(delay_impairment(277.3), 0.024 * 277.3 + 11.0));
        assert_eq!(delay_impairment(-3.0), 0.0);
        let random = effective_equipment_impairment(G711_PLC, 2.0, 1.0);
        let bursty = effective_equipment_impairment(G711_PLC, 2.0, 2.0);
        assert!(bursty > random);
        let opus = effective_equipment_impairment(OPUS, 2.0, 1.0);
        assert!(opus > random && opus < effective_equipment_impairment(G711_NO_PLC, 2.0, 1.0));
    }
}
