//! How the arena stores a vector's numbers when not as f32: scalar int8 quantization with one
//! symmetric scale per vector (a 384-d vector shrinks from 1,536 bytes to 388, codes plus an f32
//! scale, at a small, measurable loss of ranking accuracy), and IEEE half precision (768 bytes,
//! each number within 1/2048 of itself, relative).

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

/// The largest finite half, where [`half_from_f32`] saturates.
pub const HALF_MAX: f32 = 65_504.0;

/// `x` as an IEEE binary16 bit pattern, rounded to nearest, ties to even, as the F16C
/// instructions round; beyond the half range it saturates to +-65,504, the largest finite half (so a stored vector
/// stays finite; unit vectors never come near). `x` must be finite (the index checks inputs).
#[inline]
pub fn half_from_f32(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = bits & 0x7fff_ffff;
    // 65,520 (65,504 plus half its step) and above would round to infinity.
    if a >= 0x477f_f000 {
        return sign | 0x7bff;
    }
    // Below 2^-14 a half is subnormal: a whole number of 2^-24 steps. Scaling by 2^24 is exact,
    // and adding and subtracting 2^23 rounds to a whole number, ties to even (the result, at
    // most 1,024, is the bit pattern itself, 1,024 being the smallest normal half).
    if a < 0x3880_0000 {
        let steps = f32::from_bits(a) * 16_777_216.0;
        return sign | ((steps + 8_388_608.0) - 8_388_608.0) as u16;
    }
    // Normal: the exponent rebased from 127 to 15, the mantissa cut from 23 bits to 10 and
    // rounded (a carry into the exponent is the right result; the bound above keeps it finite).
    let exponent = (a >> 23) - 112;
    let mut h = (exponent << 10) | ((a >> 13) & 0x3ff);
    let rest = a & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// The f32 value of the half `h`, exactly (for the finite halves [`half_from_f32`] makes). The
/// magnitude's bits moved into an f32's place read as 2^-112 times the value, normal or
/// subnormal, so one multiplication by 2^112 restores it: branch-free, so that the kernels
/// over half arenas vectorize.
#[inline(always)]
pub fn half_to_f32(h: u16) -> f32 {
    const SCALE: f32 = 5.192_297e33; // 2^112
    let magnitude = f32::from_bits(u32::from(h & 0x7fff) << 13) * SCALE;
    f32::from_bits(magnitude.to_bits() | (u32::from(h & 0x8000) << 16))
}

/// Whether the half `h` is finite (not an infinity or NaN pattern, which [`half_from_f32`] never
/// makes but a damaged file may hold).
#[inline]
pub fn half_is_finite(h: u16) -> bool {
    h & 0x7c00 != 0x7c00
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finite_half_converts_to_f32_and_back_unchanged() {
        for h in 0..=u16::MAX {
            if !half_is_finite(h) {
                continue;
            }
            let x = half_to_f32(h);
            assert!(x.is_finite(), "{h:#06x}");
            assert_eq!(half_from_f32(x), h, "{h:#06x} -> {x}");
        }
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24), "smallest subnormal");
        assert_eq!(half_to_f32(0x7bff), HALF_MAX);
    }

    /// The half nearest `x` (ties to the even pattern), by comparing neighbours in f64.
    fn nearest(x: f32) -> u16 {
        let h = half_from_f32(x);
        let d = |h: u16| (f64::from(half_to_f32(h)) - f64::from(x)).abs();
        let magnitude = h & 0x7fff;
        for n in [magnitude.wrapping_sub(1), magnitude + 1] {
            let n = n | (h & 0x8000);
            if n & 0x7fff > 0x7bff {
                continue;
            }
            assert!(
                d(n) > d(h) || (d(n) == d(h) && h & 1 == 0),
                "{x:e}: {h:#06x} ({}) but {n:#06x} ({}) is as near",
                half_to_f32(h),
                half_to_f32(n)
            );
        }
        h
    }

    #[test]
    fn floats_round_to_the_nearest_half_ties_to_even_and_saturate() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Every exponent from far below the subnormals to beyond the range, both signs.
            let x = f32::from_bits(
                (state as u32 & 0x807f_ffff) | ((state >> 32) as u32 % 160 + 40) << 23,
            );
            if x.abs() < 65_520.0 {
                nearest(x);
            } else {
                assert_eq!(half_to_f32(half_from_f32(x)), HALF_MAX.copysign(x), "{x:e}");
            }
        }
        // Exact ties: halfway between two halves goes to the even one, normal and subnormal.
        let one_and_half_step = 1.0 + 2f32.powi(-11);
        assert_eq!(half_from_f32(one_and_half_step), 0x3c00);
        assert_eq!(half_from_f32(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(half_from_f32(1.5 * 2f32.powi(-24)), 0x0002);
        assert_eq!(half_from_f32(0.5 * 2f32.powi(-24)), 0x0000);
        assert_eq!(half_from_f32(-0.0), 0x8000);
        assert_eq!(half_from_f32(65_519.0), 0x7bff);
        assert_eq!(half_from_f32(-1e30), 0xfbff);
        assert_eq!(
            half_from_f32(2f32.powi(-14) * (1.0 - 2f32.powi(-12))),
            0x0400,
            "rounds up into the normals"
        );
    }

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
