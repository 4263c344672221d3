//! Similarity kernels over the vector arena. The loop bodies are safe, portable Rust written so
//! that LLVM auto-vectorizes them: 16 independent lane accumulators remove the loop-carried
//! dependency that otherwise forbids reordering float additions.
//!
//! On x86-64 each kernel is compiled twice, for the baseline (SSE2) and for AVX2, and the AVX2
//! copy is chosen at run time when the CPU has it, guarded by the feature check. Both copies run
//! the same lane structure without FMA contraction, so they return bit-identical results and
//! stored rankings do not depend on the machine. A few are written with intrinsics instead, each
//! beside a portable twin that returns the same bits: [`dot_f32_f16`] and [`dot_f16`] (F16C
//! conversions in the portable lane structure), [`halves_from_f32`] (F16C rounding, clamped as
//! the portable conversion saturates), and [`dot_i8_u4`] (integer arithmetic, exact on either
//! path).

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

/// Dot product of an f32 query with half-precision numbers (bit patterns, see
/// [`super::quant::half_to_f32`]): the similarity to a vector of a half arena.
///
/// With F16C (`vcvtph2ps`) the halves become f32 in one instruction per eight; the portable
/// conversion, though it vectorizes, costs about three times the arithmetic of an f32 dot
/// product, which made a half arena slower to link than an f32 one. The AVX2 path keeps the
/// portable lane structure (16 lanes, multiply then add, the lanes summed in order) and the
/// conversion is exact, so both paths return the same bits.
#[inline]
pub fn dot_f32_f16(q: &[f32], h: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: AVX2 and F16C, all the function requires, were just checked.
            return unsafe { dot_f16_avx2(Halves::Query(q), h) };
        }
    }
    dot_f32_f16_portable(q, h)
}

/// Dot product of two half-precision vectors, in f32 (graph construction over a half arena);
/// as [`dot_f32_f16`].
#[inline]
pub fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: AVX2 and F16C, all the function requires, were just checked.
            return unsafe { dot_f16_avx2(Halves::Pair(a), b) };
        }
    }
    dot_f16_portable(a, b)
}

/// `v` as IEEE halves (bit patterns) in `out` (the common length), exactly as
/// [`super::quant::half_from_f32`] makes them: rounded to nearest, ties to even, saturating at
/// +-65,504; `v` must be finite. With F16C eight at a time (`vcvtps2ph`), after clamping to the
/// largest finite half (the instruction would round 65,520 and above to infinity): the portable
/// conversion, a branchy bit manipulation, took about half a microsecond per 384-d vector of
/// every write to a half arena.
#[inline]
pub fn halves_from_f32(v: &[f32], out: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: AVX2 and F16C, all the function requires, were just checked.
            return unsafe { halves_from_f32_f16c(v, out) };
        }
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = super::quant::half_from_f32(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
fn halves_from_f32_f16c(v: &[f32], out: &mut [u16]) {
    use std::arch::x86_64::*;
    let n = v.len().min(out.len());
    let whole = n - n % 8;
    let top = _mm256_set1_ps(super::quant::HALF_MAX);
    let bottom = _mm256_set1_ps(-super::quant::HALF_MAX);
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 8 <= whole <= both lengths: a 32-byte load from `v` and a 16-byte store
        // into `out` stay inside them.
        unsafe {
            let x = _mm256_loadu_ps(v.as_ptr().add(i));
            let x = _mm256_min_ps(_mm256_max_ps(x, bottom), top);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), h);
        }
        i += 8;
    }
    for (o, &x) in out[whole..n].iter_mut().zip(&v[whole..n]) {
        *o = super::quant::half_from_f32(x);
    }
}

/// The left operand of `dot_f16_avx2`: an f32 query or a second vector of halves.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Halves<'a> {
    Query(&'a [f32]),
    Pair(&'a [u16]),
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
fn dot_f16_avx2(a: Halves<'_>, h: &[u16]) -> f32 {
    use std::arch::x86_64::*;
    let n = match a {
        Halves::Query(q) => q.len(),
        Halves::Pair(p) => p.len(),
    }
    .min(h.len());
    let whole = n - n % LANES;
    // Eight numbers of the left operand from `i` on, as f32.
    let left = |i: usize| match a {
        // SAFETY: callers pass i + 8 <= whole <= the operand's length.
        Halves::Query(q) => unsafe { _mm256_loadu_ps(q.as_ptr().add(i)) },
        // SAFETY: as above; a 16-byte load of eight halves.
        Halves::Pair(p) => unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr().add(i).cast())) },
    };
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 16 <= whole <= h.len(): both 16-byte loads stay inside `h`.
        let (h0, h1) = unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(i).cast())),
                _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(i + 8).cast())),
            )
        };
        acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(left(i), h0));
        acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(left(i + 8), h1));
        i += LANES;
    }
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` holds 16 f32, two unaligned 8-wide stores.
    unsafe {
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc0);
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc1);
    }
    let tail = match a {
        Halves::Query(q) => dot_f32_f16_rest(&q[whole..n], &h[whole..n]),
        Halves::Pair(p) => dot_f16_rest(&p[whole..n], &h[whole..n]),
    };
    lanes.iter().sum::<f32>() + tail
}

/// The products past the last whole group of lanes, summed in order (as the portable kernel
/// does).
#[inline(always)]
fn dot_f32_f16_rest(q: &[f32], h: &[u16]) -> f32 {
    let mut tail = 0.0f32;
    for (x, &y) in q.iter().zip(h) {
        tail += x * super::quant::half_to_f32(y);
    }
    tail
}

#[inline(always)]
fn dot_f16_rest(a: &[u16], b: &[u16]) -> f32 {
    let mut tail = 0.0f32;
    for (&x, &y) in a.iter().zip(b) {
        tail += super::quant::half_to_f32(x) * super::quant::half_to_f32(y);
    }
    tail
}

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

#[inline(never)]
fn dot_f32_f16_portable(q: &[f32], h: &[u16]) -> f32 {
    use super::quant::half_to_f32;
    let n = q.len().min(h.len());
    let (q, h) = (&q[..n], &h[..n]);
    let mut acc = [0.0f32; LANES];
    let cq = q.chunks_exact(LANES);
    let ch = h.chunks_exact(LANES);
    let (rq, rh) = (cq.remainder(), ch.remainder());
    for (x, y) in cq.zip(ch) {
        for i in 0..LANES {
            acc[i] += x[i] * half_to_f32(y[i]);
        }
    }
    acc.iter().sum::<f32>() + dot_f32_f16_rest(rq, rh)
}

#[inline(never)]
fn dot_f16_portable(a: &[u16], b: &[u16]) -> f32 {
    use super::quant::half_to_f32;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += half_to_f32(x[i]) * half_to_f32(y[i]);
        }
    }
    acc.iter().sum::<f32>() + dot_f16_rest(ra, rb)
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
    // 1.5 * 2^23: adding it rounds to an integer, half to even, for |y| < 2^22, and leaves that
    // integer in the low bits of the sum, read off by subtracting the bits of ROUND (integer
    // arithmetic, so the loop vectorizes: a float-to-int8 cast kept it scalar, about 1 ns a
    // number). A NaN (stored vectors never hold one) gets code 0, as `NaN as i8` gave.
    const ROUND: f32 = 12_582_912.0;
    for (o, x) in out.iter_mut().zip(v) {
        let y = (x * inv).clamp(-127.0, 127.0);
        let y = if y.is_nan() { 0.0 } else { y };
        *o = (y + ROUND).to_bits().wrapping_sub(ROUND.to_bits()) as i8;
    }
    max / 127.0
}

/// 4-bit codes of the int8 codes `codes` (as [`quantize_i8`] makes them, within -127..=127)
/// packed into `out` (`codes.len().div_ceil(2)` bytes): code `c` becomes `round(7c / 127) + 8`,
/// in 1..=15, so that `x ≈ (code - 8) * scale * 127 / 7` with the int8 codes' `scale`. Byte `j`
/// holds dimension `j` in its low half and dimension `j + out.len()` in its high half (8, a
/// zero, when the dimension is odd and there is none), so that [`dot_i8_u4`] reads the query's
/// two halves in order. Made from the int8 codes in integers (about 75 ns at 384 dimensions,
/// where rounding the floats again took 0.5-2 us): they are made under the index's write lock.
/// Half the bytes of int8 codes, for a first pass over more vectors than the cache holds
/// (`tail.rs`).
pub fn pack_u4(codes: &[i8], out: &mut [u8]) {
    // 7c / 127 is never a half for |c| <= 127 (127 is odd and prime), so the floor of
    // (7c + 63 + 8 * 127) / 127, all positive, is the rounded code plus 8.
    let u4 = |c: i8| ((7 * i32::from(c) + 1_079).max(0) as u16 / 127).min(15) as u8;
    let half = codes.len().div_ceil(2);
    debug_assert_eq!(out.len(), half);
    let (low, high) = codes.split_at(half);
    let pairs = high.len();
    for ((o, &l), &h) in out[..pairs].iter_mut().zip(&low[..pairs]).zip(high) {
        *o = u4(l) | (u4(h) << 4);
    }
    if pairs < half {
        out[half - 1] = u4(low[half - 1]) | (8 << 4);
    }
}

/// Dot product of int8 query codes with 4-bit codes packed by [`pack_u4`], the codes taken
/// as stored (0..=15; subtract `8 * sum(q)` for the signed product). Exact in i32 for the
/// dimensions the index accepts (65,536 x 128 x 15 < 2^31).
///
/// Hand-written for AVX2 (`vpmaddubsw`, unsigned codes times signed query bytes): the loop
/// LLVM makes of the portable body unpacks the nibbles so slowly that it is no faster than an
/// int8 dot product (20-33 against 7-13 ns for 384 dimensions in a standalone test), and the
/// pass exists to be faster. Integer arithmetic: both paths return the same value.
#[inline]
pub fn dot_i8_u4(q: &[i8], packed: &[u8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `dot_i8_u4_avx2` only requires AVX2, which the CPU was just checked to have.
            return unsafe { dot_i8_u4_avx2(q, packed) };
        }
    }
    dot_i8_u4_portable(q, packed)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_u4_avx2(q: &[i8], packed: &[u8]) -> i32 {
    use std::arch::x86_64::*;
    let half = packed.len().min(q.len().div_ceil(2));
    let (low, high) = q.split_at(half);
    let pairs = high.len().min(half);
    let nibble = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    let mut j = 0;
    while j + 32 <= pairs {
        // SAFETY: j + 32 <= pairs <= the lengths of `packed`, `low` and `high`, so each unaligned
        // 32-byte load stays inside its slice.
        let (p, l, h) = unsafe {
            (
                _mm256_loadu_si256(packed.as_ptr().add(j).cast()),
                _mm256_loadu_si256(low.as_ptr().add(j).cast()),
                _mm256_loadu_si256(high.as_ptr().add(j).cast()),
            )
        };
        let lo = _mm256_and_si256(p, nibble);
        let hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), nibble);
        // Per i16 lane: two products of at most 15 * 128, from each half: no saturation.
        let sum = _mm256_add_epi16(_mm256_maddubs_epi16(lo, l), _mm256_maddubs_epi16(hi, h));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(sum, ones));
        j += 32;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 writable bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
    lanes.iter().sum::<i32>() + dot_i8_u4_rest(low, high, packed, j, half)
}

/// The part of [`dot_i8_u4`] from byte `from` on, one byte at a time.
#[inline(always)]
fn dot_i8_u4_rest(low: &[i8], high: &[i8], packed: &[u8], from: usize, half: usize) -> i32 {
    let mut sum = 0i32;
    for j in from..half {
        sum += i32::from(low[j]) * i32::from(packed[j] & 15);
        if let Some(&h) = high.get(j) {
            sum += i32::from(h) * i32::from(packed[j] >> 4);
        }
    }
    sum
}

fn dot_i8_u4_portable(q: &[i8], packed: &[u8]) -> i32 {
    let half = packed.len().min(q.len().div_ceil(2));
    let (low, high) = q.split_at(half);
    let pairs = high.len().min(half);
    let mut acc = [0i32; LANES];
    let cl = low[..pairs].chunks_exact(LANES);
    let done = pairs - cl.remainder().len();
    let ch = high[..pairs].chunks_exact(LANES);
    let cp = packed[..pairs].chunks_exact(LANES);
    for ((l, h), p) in cl.zip(ch).zip(cp) {
        for i in 0..LANES {
            let lo = i16::from(p[i] & 15);
            let hi = i16::from(p[i] >> 4);
            acc[i] += i32::from(i16::from(l[i]) * lo + i16::from(h[i]) * hi);
        }
    }
    acc.iter().sum::<i32>() + dot_i8_u4_rest(low, high, packed, done, half)
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
        let h: Vec<u16> = b.iter().map(|&x| quant::half_from_f32(x)).collect();
        assert_eq!(
            dot_f32_f16(&a, &h).to_bits(),
            dot_f32_f16_portable(&a, &h).to_bits()
        );
        assert_eq!(
            dot_f16(&h, &h).to_bits(),
            dot_f16_portable(&h, &h).to_bits()
        );
    }

    #[test]
    fn half_kernels_match_naive_sums_of_the_halves_values() {
        for n in [0, 1, 15, 16, 17, 64, 100, 384] {
            let q: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let h: Vec<u16> = (0..n)
                .map(|i| quant::half_from_f32((i as f32 * 0.113).cos() * 0.3))
                .collect();
            let values: Vec<f32> = h.iter().map(|&x| quant::half_to_f32(x)).collect();
            let close = |got: f32, want: f64| (f64::from(got) - want).abs() < 1e-4;
            assert!(close(dot_f32_f16(&q, &h), naive(&q, &values)), "n = {n}");
            assert!(close(dot_f16(&h, &h), naive(&values, &values)), "n = {n}");
        }
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
    fn halves_eight_at_a_time_are_the_portable_ones_at_every_rounding_edge() {
        // Every finite half, the numbers halfway to the next one (ties), just either side of
        // those, and the range past the largest half, with both signs; in vectors whose length
        // leaves a remainder for the portable tail.
        let mut xs = vec![0.0f32, 1e-30, 65_504.0, 65_519.99, 65_520.0, 65_536.0, 1e30];
        for h in 0..0x7bffu16 {
            let lo = quant::half_to_f32(h);
            let hi = quant::half_to_f32(h + 1);
            let mid = ((f64::from(lo) + f64::from(hi)) / 2.0) as f32;
            xs.extend([
                lo,
                mid,
                f32::from_bits(mid.to_bits() - 1),
                f32::from_bits(mid.to_bits() + 1),
            ]);
        }
        let negative: Vec<f32> = xs.iter().map(|x| -x).collect();
        xs.extend(negative);
        for len in [xs.len(), 13, 8, 7] {
            let v = &xs[..len];
            let mut fast = vec![0u16; len];
            halves_from_f32(v, &mut fast);
            for (x, h) in v.iter().zip(&fast) {
                assert_eq!(*h, quant::half_from_f32(*x), "{x:e}");
            }
        }
    }

    #[test]
    fn codes_are_the_scaled_numbers_rounded_half_to_even_and_a_nan_is_zero() {
        // Scale 1 (the largest magnitude is 127): every half step from -127 to 127, numbers
        // just off the halves, and the ends.
        let mut v = vec![127.0f32, -127.0];
        v.extend((-254..=254).map(|k| k as f32 / 2.0));
        v.extend((-127..127).map(|k| k as f32 + 0.5 + f32::EPSILON * 64.0));
        v.extend((-127..127).map(|k| k as f32 + 0.5 - f32::EPSILON * 64.0));
        let want: Vec<i8> = v.iter().map(|&x| x.round_ties_even() as i8).collect();
        let mut fast = vec![0i8; v.len()];
        let mut portable = vec![0i8; v.len()];
        assert_eq!(quantize_i8(&v, &mut fast), 1.0);
        assert_eq!(quantize_i8_portable(&v, &mut portable), 1.0);
        assert_eq!(fast, want);
        assert_eq!(portable, want);
        // Scaled by powers of two (exactly): the same codes.
        for factor in [1.0f32 / 1024.0, 0.25, 64.0] {
            let scaled: Vec<f32> = v.iter().map(|x| x * factor).collect();
            let mut codes = vec![0i8; v.len()];
            quantize_i8(&scaled, &mut codes);
            assert_eq!(codes, want, "x {factor}");
        }
        let mut out = [9i8; 19];
        let mut nan = [1.0f32; 19];
        nan[17] = f32::NAN;
        nan[3] = -f32::NAN;
        quantize_i8(&nan, &mut out);
        assert_eq!((out[3], out[17], out[0]), (0, 0, 127));
        quantize_i8_portable(&nan, &mut out);
        assert_eq!((out[3], out[17], out[0]), (0, 0, 127));
    }

    #[test]
    fn four_bit_codes_round_the_int8_ones_and_their_dot_product_matches_a_naive_sum() {
        let c: Vec<i8> = (-127..=127).collect();
        let mut packed = vec![0u8; c.len().div_ceil(2)];
        pack_u4(&c, &mut packed);
        let half = packed.len();
        let code = |packed: &[u8], i: usize| {
            if i < half {
                packed[i] & 15
            } else {
                packed[i - half] >> 4
            }
        };
        for (i, &x) in c.iter().enumerate() {
            let want = (f32::from(x) * 7.0 / 127.0).round() as i32 + 8;
            assert_eq!(i32::from(code(&packed, i)), want, "int8 code {x}");
        }
        assert_eq!(
            packed[half - 1] >> 4,
            8,
            "an odd dimension's missing one is a zero"
        );
        for n in [
            1usize, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 383, 384, 389,
        ] {
            let v: Vec<f32> = (0..n)
                .map(|i| ((i + 1) as f32 * 0.731).sin() * 0.3)
                .collect();
            let mut codes = vec![0i8; n];
            let scale = quantize_i8(&v, &mut codes) * 127.0 / 7.0;
            let mut packed = vec![0u8; n.div_ceil(2)];
            pack_u4(&codes, &mut packed);
            let half = packed.len();
            let code = |i: usize| {
                if i < half {
                    packed[i] & 15
                } else {
                    packed[i - half] >> 4
                }
            };
            for (i, &x) in v.iter().enumerate() {
                // Half a 4-bit step, and the int8 rounding before it.
                assert!(
                    (f32::from(code(i)) - 8.0 - x / scale).abs() <= 0.53,
                    "n = {n}"
                );
            }
            for seed in [0usize, 37, 91] {
                let q: Vec<i8> = (0..n)
                    .map(|i| ((i * 37 + seed) % 256) as u8 as i8)
                    .collect();
                let want: i32 = (0..n).map(|i| i32::from(q[i]) * i32::from(code(i))).sum();
                assert_eq!(dot_i8_u4(&q, &packed), want, "n = {n}");
                assert_eq!(dot_i8_u4_portable(&q, &packed), want, "n = {n}");
            }
        }
        let q = vec![-128i8; 65_536];
        let all = vec![0xffu8; 32_768];
        assert_eq!(dot_i8_u4(&q, &all), -128 * 15 * 65_536);
        assert_eq!(dot_i8_u4_portable(&q, &all), -128 * 15 * 65_536);
    }

    #[test]
    fn int8_dot_of_extreme_codes_does_not_overflow_at_the_largest_dimension() {
        let a = vec![-127i8; 65_536];
        assert_eq!(dot_i8(&a, &a), 65_536 * 127 * 127);
    }
}
