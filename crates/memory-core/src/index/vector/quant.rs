//! Scalar int8 quantization with one symmetric scale per vector: a 384-d vector shrinks from
//! 1,536 bytes to 388 (codes plus an f32 scale), at a small, measurable loss of ranking accuracy.

/// Largest code magnitude; -128 is never used so the range is symmetric.
pub const MAX_CODE: f32 = 127.0;

/// Appends the int8 codes of `v` to `out` and returns the scale (`max |x| / 127`) such that
/// `x ≈ code * scale`. An all-zero vector gets scale 0 and zero codes.
pub fn quantize_into(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.extend(std::iter::repeat_n(0i8, v.len()));
        return 0.0;
    }
    let scale = max / MAX_CODE;
    let inv = MAX_CODE / max;
    // Rounded and clamped, so the cast never saturates unexpectedly.
    out.extend(
        v.iter()
            .map(|x| (x * inv).round().clamp(-MAX_CODE, MAX_CODE) as i8),
    );
    scale
}

/// The approximate f32 vector that `codes` with `scale` stand for.
pub fn dequantize(codes: &[i8], scale: f32) -> Vec<f32> {
    codes.iter().map(|&c| f32::from(c) * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_round_trips_within_half_a_step() {
        let v: Vec<f32> = (0..97).map(|i| ((i as f32) * 0.731).sin() * 0.3).collect();
        let mut codes = Vec::new();
        let scale = quantize_into(&v, &mut codes);
        assert_eq!(codes.len(), v.len());
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((scale - max / 127.0).abs() < 1e-9);
        assert!(codes.iter().any(|&c| c.abs() == 127));
        for (x, y) in v.iter().zip(dequantize(&codes, scale)) {
            assert!((x - y).abs() <= scale * 0.5 + 1e-7);
        }
    }

    #[test]
    fn zero_vector_quantizes_to_zero_codes_and_scale() {
        let mut codes = vec![5i8];
        assert_eq!(quantize_into(&[0.0; 4], &mut codes), 0.0);
        assert_eq!(codes, [5, 0, 0, 0, 0]);
    }
}
