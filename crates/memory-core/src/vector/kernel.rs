//! Similarity kernels over the vector arena. Written in safe, portable Rust so that LLVM
//! auto-vectorizes them: each kernel keeps 16 independent lane accumulators, which removes the
//! loop-carried dependency that otherwise forbids reordering float additions.

/// Lanes per step: four SSE registers or two AVX registers of f32, enough independent chains to
/// hide the add latency.
const LANES: usize = 16;

/// Dot product of two f32 slices (cosine similarity when both are unit length). Only the common
/// prefix is used if the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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
    reduce_f32(acc) + tail
}

/// Dot product of an f32 query with int8 codes, in code units (multiply by the codes' scale to
/// get the similarity). Used for asymmetric search: the query keeps full precision.
#[inline]
pub fn dot_f32_i8(q: &[f32], codes: &[i8]) -> f32 {
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
    reduce_f32(acc) + tail
}

/// Dot product of two int8 code vectors, exact in i32. Cannot overflow for the dimensions the
/// index accepts (at most 65,536 x 127 x 127 < 2^31).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut tail = 0i32;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += i32::from(x) * i32::from(y);
    }
    acc.iter().sum::<i32>() + tail
}

/// Pairwise reduction, which the compiler turns into a few vector shuffles and adds.
#[inline]
fn reduce_f32(acc: [f32; LANES]) -> f32 {
    let mut h = [0.0f32; LANES / 2];
    for i in 0..LANES / 2 {
        h[i] = acc[i] + acc[i + LANES / 2];
    }
    let mut q = [0.0f32; LANES / 4];
    for i in 0..LANES / 4 {
        q[i] = h[i] + h[i + LANES / 4];
    }
    (q[0] + q[2]) + (q[1] + q[3])
}

#[cfg(test)]
mod tests {
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
    fn int8_dot_of_extreme_codes_does_not_overflow_at_the_largest_dimension() {
        let a = vec![-127i8; 65_536];
        assert_eq!(dot_i8(&a, &a), 65_536 * 127 * 127);
    }
}
