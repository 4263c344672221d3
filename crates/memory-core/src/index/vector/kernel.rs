//! Similarity kernels over the vector arena. The loop bodies are safe, portable Rust written so
//! that LLVM auto-vectorizes them: 16 independent lane accumulators remove the loop-carried
//! dependency that otherwise forbids reordering float additions.
//!
//! On x86-64 each kernel is compiled twice, for the baseline (SSE2) and for AVX2, and the AVX2
//! copy is chosen at run time when the CPU has it: the only `unsafe` in this module, guarded by
//! the feature check. Both copies run the same lane structure without FMA contraction, so they
//! return bit-identical results and stored rankings do not depend on the machine.

/// Lanes per step: four SSE registers or two AVX registers of f32, enough independent chains to
/// hide the add latency.
const LANES: usize = 16;

/// Defines a public kernel `$name` that runs `$body` compiled for AVX2 when the CPU supports it,
/// and the baseline build of `$body` (`$base`) otherwise. Both builds are separate functions:
/// inlined into a large caller, the loops were seen to lose their vectorization.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $avx2:ident, $base:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        #[inline]
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: `$avx2` only requires AVX2, which the CPU was just checked to have.
                    return unsafe { $avx2($($arg),*) };
                }
            }
            $base($($arg),*)
        }

        #[inline(never)]
        fn $base($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
    };
}

dispatch!(
    /// Dot product of two f32 slices (cosine similarity when both are unit length). Only the
    /// common prefix is used if the lengths differ.
    dot, dot_avx2, dot_sse2, dot_portable, (a: &[f32], b: &[f32]) -> f32
);

dispatch!(
    /// Dot product of an f32 query with int8 codes, in code units (multiply by the codes' scale
    /// to get the similarity). Used for asymmetric search: the query keeps full precision.
    dot_f32_i8, dot_f32_i8_avx2, dot_f32_i8_sse2, dot_f32_i8_portable, (q: &[f32], codes: &[i8]) -> f32
);

dispatch!(
    /// Dot product of two int8 code vectors, exact in i32. Cannot overflow for the dimensions
    /// the index accepts (at most 65,536 x 128 x 128 < 2^31).
    dot_i8, dot_i8_avx2, dot_i8_sse2, dot_i8_portable, (a: &[i8], b: &[i8]) -> i32
);

dispatch!(
    /// Int8 codes of `v` written to `out` (same length), with one scale (`max |x| / 127`) such
    /// that `x ≈ code * scale`, rounded half to even; a vector of zeros gets zero codes and scale
    /// 0. The fast quantizer for codes that are not stored ([`super::quant::quantize_into`]
    /// rounds half away from zero and makes the stored ones).
    quantize_i8, quantize_i8_avx2, quantize_i8_sse2, quantize_i8_portable, (v: &[f32], out: &mut [i8]) -> f32
);

/// Asks the CPU to start loading `data` into its caches, a cache line at a time. A hint: it
/// changes no result, and does nothing off x86-64.
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(data);
        let base = data.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: `offset` lies inside `data`, and a prefetch never faults or writes.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    // A plain sequential sum of the lanes: a pairwise reduction written out here was seen to
    // make the SLP vectorizer split the main loop into 2-wide pieces.
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot_f32_i8_portable(q: &[f32], codes: &[i8]) -> f32 {
    let n = q.len().min(codes.len());
    let (q, codes) = (&q[..n], &codes[..n]);
    let mut acc = [0.0f32; LANES];
    let cq = q.chunks_exact(LANES);
    let cc = codes.chunks_exact(LANES);
    let (rq, rc) = (cq.remainder(), cc.remainder());
    for (x, y) in cq.zip(cc) {
        for i in 0..LANES {
            acc[i] += x[i] * f32::from(y[i]);
        }
    }
    let mut tail = 0.0f32;
    for (x, &y) in rq.iter().zip(rc) {
        tail += x * f32::from(y);
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn quantize_i8_portable(v: &[f32], out: &mut [i8]) -> f32 {
    // The largest magnitude in lanes (a plain fold would carry one dependency through the loop).
    let mut lanes = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let mut max = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, x| m.max(x.abs()));
    for c in chunks {
        for i in 0..LANES {
            let a = c[i].abs();
            lanes[i] = if a > lanes[i] { a } else { lanes[i] };
        }
    }
    for l in lanes {
        max = max.max(l);
    }
    if max == 0.0 || !max.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let inv = 127.0 / max;
    // 1.5 * 2^23: adding and subtracting it rounds to an integer, half to even, for |y| < 2^22.
    const ROUND: f32 = 12_582_912.0;
    for (o, x) in out.iter_mut().zip(v) {
        let y = (x * inv).clamp(-127.0, 127.0);
        *o = ((y + ROUND) - ROUND) as i8;
    }
    max / 127.0
}

#[inline(always)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    // The product of two i8 always fits an i16 (at most 128 * 128 = 16384), so it is taken in
    // i16, which baseline x86-64 multiplies eight at a time (pmaddwd); an i32 multiply would
    // need SSE4.1 and leaves the loop scalar. Only the sum is widened to i32.
    let mut acc = [0i32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
        }
    }
    let mut tail = 0i32;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += i32::from(x) * i32::from(y);
    }
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::super::quant;
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn dot_matches_a_naive_sum_for_every_tail_length() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.2).collect();
            assert!(
                (f64::from(dot(&a, &b)) - naive(&a, &b)).abs() < 1e-4,
                "n = {n}"
            );
        }
    }

    #[test]
    fn int8_kernels_match_naive_sums() {
        for n in [0, 1, 15, 16, 17, 64, 100, 384] {
            let a: Vec<i8> = (0..n).map(|i| (i * 37 % 255 - 127) as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| (i * 91 % 255 - 127) as i8).collect();
            let want: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
            assert_eq!(dot_i8(&a, &b), want, "n = {n}");
            let q: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let want: f64 = q.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            assert!(
                (f64::from(dot_f32_i8(&q, &b)) - want).abs() < 1e-2,
                "n = {n}"
            );
        }
    }

    #[test]
    fn portable_and_dispatched_kernels_agree_bit_for_bit() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.731).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.113).cos()).collect();
        let c: Vec<i8> = (0..389).map(|i| (i * 37 % 255 - 127) as i8).collect();
        assert_eq!(dot(&a, &b).to_bits(), dot_portable(&a, &b).to_bits());
        assert_eq!(
            dot_f32_i8(&a, &c).to_bits(),
            dot_f32_i8_portable(&a, &c).to_bits()
        );
        assert_eq!(dot_i8(&c, &c), dot_i8_portable(&c, &c));
    }

    #[test]
    fn the_fast_quantizer_agrees_with_the_stored_one_but_on_exact_halves() {
        let v: Vec<f32> = (0..389).map(|i| (i as f32 * 0.731).sin() * 0.2).collect();
        let mut stored = Vec::new();
        let scale = quant::quantize_into(&v, &mut stored);
        let mut fast = vec![0i8; v.len()];
        assert_eq!(quantize_i8(&v, &mut fast).to_bits(), scale.to_bits());
        let mut portable = vec![0i8; v.len()];
        quantize_i8_portable(&v, &mut portable);
        assert_eq!(fast, portable);
        for ((&x, &s), &f) in v.iter().zip(&stored).zip(&fast) {
            let y = x / scale;
            assert!(
                s == f || (y.abs().fract() - 0.5).abs() < 1e-3,
                "{x}: {s} vs {f}"
            );
            assert!((f32::from(f) - y).abs() <= 0.5 + 1e-4);
        }
        // Halves go to the even code; zeros stay zero.
        let mut out = [0i8; 4];
        assert_eq!(quantize_i8(&[127.0, 0.5, 1.5, -2.5], &mut out), 1.0);
        assert_eq!(out, [127, 0, 2, -2]);
        assert_eq!(quantize_i8(&[0.0; 3], &mut out[..3]), 0.0);
        assert_eq!(out[..3], [0, 0, 0]);
    }

    #[test]
    fn int8_dot_of_extreme_codes_does_not_overflow_at_the_largest_dimension() {
        let a = vec![-127i8; 65_536];
        assert_eq!(dot_i8(&a, &a), 65_536 * 127 * 127);
    }
}
