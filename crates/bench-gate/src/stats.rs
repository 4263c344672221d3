//! Statistics behind the verdict: Welch's t-test on per-iteration values (Criterion does not
//! save its p-value, so significance is recomputed from both `sample.json` files), a seeded
//! bootstrap confidence interval of the ratio of the two means, and the paired test of
//! interleaved rounds (a t-test on the logarithms of per-round ratios).

/// Whether every value of `xs` is the same number (an empty slice is constant).
pub fn is_constant(xs: &[f64]) -> bool {
    xs.windows(2).all(|w| w[0] == w[1])
}

/// The lowest and highest of `xs`; (inf, -inf) for an empty slice.
pub fn range(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Arithmetic mean; 0 for an empty slice. The mean of constant values is that value exactly
/// (a sum of ten equal values divided by ten can be one unit in the last place off, and two
/// such means of different lengths would then "differ" by a rounding error).
pub fn mean(xs: &[f64]) -> f64 {
    match xs {
        [] => 0.0,
        [first, ..] if is_constant(xs) => *first,
        _ => xs.iter().sum::<f64>() / xs.len() as f64,
    }
}

/// Median; 0 for an empty slice. NaNs sort last (costs are checked finite before they get here).
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_unstable_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Unbiased sample variance; 0 when fewer than two values, and exactly 0 for constant values.
pub fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 || is_constant(xs) {
        return 0.0;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Outcome of Welch's unequal-variance t-test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// t statistic of `mean(b) - mean(a)`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's t-test of the hypothesis that `a` and `b` have equal means.
///
/// Degenerate cases are decided exactly rather than producing NaN or a rounding artefact: two
/// constant samples are "certainly different" if their values differ and "not different" if
/// they are equal, whatever their lengths, which is what deterministic measurements (byte
/// counts, quality figures) need.
pub fn welch(a: &[f64], b: &[f64]) -> Welch {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (variance(a) / na, variance(b) / nb);
    let se2 = va + vb;
    if se2 <= 0.0 || !se2.is_finite() || (is_constant(a) && is_constant(b)) {
        let differ = ma != mb;
        return Welch {
            t: if differ {
                f64::INFINITY.copysign(mb - ma)
            } else {
                0.0
            },
            df: (na + nb - 2.0).max(1.0),
            p: if differ { 0.0 } else { 1.0 },
        };
    }
    let t = (mb - ma) / se2.sqrt();
    let denom = if a.len() > 1 {
        va * va / (na - 1.0)
    } else {
        0.0
    } + if b.len() > 1 {
        vb * vb / (nb - 1.0)
    } else {
        0.0
    };
    let df = if denom > 0.0 { se2 * se2 / denom } else { 1.0 };
    Welch {
        t,
        df,
        p: student_t_two_sided_p(t, df),
    }
}

/// Two-sided tail probability of Student's t distribution: `P(|T| >= |t|)`.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let x = df / (df + t * t);
    regularized_incomplete_beta(x, df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// Natural log of the gamma function (Lanczos approximation, g = 7, n = 9), for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation accurate for small arguments.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + 7.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta function `I_x(a, b)` by Lentz's continued fraction.
pub fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast only below the mean of the distribution; use the
    // symmetry I_x(a, b) = 1 - I_{1-x}(b, a) above it.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Two-sided Student t quantile: the `t > 0` with `P(|T| >= t) = 1 - confidence` for `df`
/// degrees of freedom (bisection on [`student_t_two_sided_p`], which falls monotonically in t).
pub fn student_t_quantile(confidence: f64, df: f64) -> f64 {
    let target = 1.0 - confidence;
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while student_t_two_sided_p(hi, df) > target && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_p(mid, df) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The paired analysis of interleaved rounds: per-round ratios NEW/BASE summarised by their
/// geometric mean, with a t interval and p-value on the logarithms (a one-sample t-test of
/// "the log ratio is 0", blocked by round: each round's own machine state cancels in its ratio).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedRatio {
    /// Geometric mean of the per-round ratios.
    pub point: f64,
    /// Lower bound of the interval of the ratio.
    pub lower: f64,
    /// Upper bound of the interval of the ratio.
    pub upper: f64,
    /// Two-sided p-value of the t-test on the log ratios.
    pub p: f64,
}

/// [`PairedRatio`] of `ratios` (positive, finite; at least two) at `confidence`. Ratios that are
/// all equal are decided exactly: the interval is that ratio, p is 0 unless it is 1.
pub fn paired_ratio(ratios: &[f64], confidence: f64) -> PairedRatio {
    paired_ratio_with(ratios, confidence, None)
}

/// A noise level shared by the benchmarks of one comparison: the variance of a round's log
/// ratio that is typical of them, worth `df` degrees of freedom.
///
/// With four rounds a benchmark's own variance rests on three degrees of freedom, and now and
/// then four noisy rounds happen to agree: the interval is then narrow around a change that is
/// not there. Moderating each benchmark's variance toward the pooled level (the empirical Bayes
/// "moderated t" of limma, Smyth 2004: `s~² = (d0·s0² + d·s²) / (d0 + d)` on `d0 + d` degrees of
/// freedom) keeps such agreement from passing for certainty and gives every interval more
/// degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoisePrior {
    /// The pooled variance of a round's log ratio (`s0²`).
    pub variance: f64,
    /// Its weight in degrees of freedom (`d0`).
    pub df: f64,
}

/// The [`NoisePrior`] of benchmarks whose log ratios have the sample `variances`, each on `df`
/// degrees of freedom, weighted `weight`: the median variance, scaled to the mean a chi-square
/// variable's median stands for (Wilson-Hilferty: `median(χ²_d) ≈ d (1 - 2/(9d))³`). `None`
/// when `weight` is 0, when fewer than three variances are given (too few to pool), or when
/// the median is 0 or not finite.
pub fn pooled_noise(variances: &[f64], df: f64, weight: f64) -> Option<NoisePrior> {
    if weight <= 0.0 || variances.len() < 3 || df < 1.0 {
        return None;
    }
    let m = median(variances);
    if m <= 0.0 || !m.is_finite() {
        return None;
    }
    let median_over_mean = (1.0 - 2.0 / (9.0 * df)).powi(3);
    Some(NoisePrior {
        variance: m / median_over_mean,
        df: weight,
    })
}

/// [`paired_ratio`], with the variance of the log ratios moderated toward `prior` when given.
pub fn paired_ratio_with(
    ratios: &[f64],
    confidence: f64,
    prior: Option<NoisePrior>,
) -> PairedRatio {
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let m = mean(&logs);
    let point = m.exp();
    let n = logs.len() as f64;
    let own = variance(&logs);
    let (var, df) = match prior {
        Some(p) if logs.len() >= 2 => (
            (p.df * p.variance + (n - 1.0) * own) / (p.df + n - 1.0),
            p.df + n - 1.0,
        ),
        _ => (own, n - 1.0),
    };
    let sd = var.sqrt();
    if logs.len() < 2 || sd == 0.0 || !sd.is_finite() {
        return PairedRatio {
            point,
            lower: point,
            upper: point,
            p: if m == 0.0 { 1.0 } else { 0.0 },
        };
    }
    let se = sd / n.sqrt();
    let half = student_t_quantile(confidence, df) * se;
    PairedRatio {
        point,
        lower: (m - half).exp(),
        upper: (m + half).exp(),
        p: student_t_two_sided_p(m / se, df),
    }
}

/// SplitMix64: a tiny, well-mixed generator so bootstrap intervals are reproducible from a seed
/// (the same inputs always give the same verdict) without a dependency.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform index in `0..n` (`n > 0`), by Lemire's multiply-shift (bias is negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Ratio of means `mean(new) / mean(base)` with a bootstrap percentile interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioInterval {
    /// Point estimate of the ratio.
    pub point: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
}

/// Bootstraps `mean(new) / mean(base)`: both samples are resampled with replacement
/// `resamples` times and the central `confidence` share of the ratios forms the interval.
/// Callers guarantee non-empty samples and a positive base mean.
pub fn bootstrap_ratio(
    base: &[f64],
    new: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> RatioInterval {
    let point = mean(new) / mean(base);
    let mut rng = SplitMix64::new(seed);
    let mut ratios = Vec::with_capacity(resamples.max(1));
    for _ in 0..resamples.max(1) {
        let b = resampled_mean(base, &mut rng);
        let n = resampled_mean(new, &mut rng);
        // A resample of an all-zero-except-one base can have mean 0; that draw says nothing
        // about the ratio, so it is skipped rather than poisoning the quantiles with infinity.
        if b > 0.0 {
            ratios.push(n / b);
        }
    }
    if ratios.is_empty() {
        return RatioInterval {
            point,
            lower: point,
            upper: point,
        };
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    RatioInterval {
        point,
        lower: quantile(&ratios, tail),
        upper: quantile(&ratios, 1.0 - tail),
    }
}

fn resampled_mean(xs: &[f64], rng: &mut SplitMix64) -> f64 {
    let mut sum = 0.0;
    for _ in 0..xs.len() {
        sum += xs[rng.below(xs.len())];
    }
    sum / xs.len() as f64
}

/// Linear-interpolated quantile of sorted data, `q` in `[0, 1]`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_noise_is_the_scaled_median_variance_or_none() {
        assert_eq!(pooled_noise(&[0.01, 0.02, 0.04], 3.0, 0.0), None);
        assert_eq!(pooled_noise(&[0.01, 0.02], 3.0, 4.0), None);
        assert_eq!(pooled_noise(&[0.0, 0.0, 0.0], 3.0, 4.0), None);
        let p = pooled_noise(&[0.04, 0.01, 0.02], 3.0, 4.0).unwrap();
        // median 0.02; Wilson-Hilferty puts the median of chi-square(3)/3 at (1 - 2/27)^3 =
        // 0.7938 (exactly 0.7887).
        assert!(close(p.variance, 0.02 / 0.7938, 1e-4), "{p:?}");
        assert_eq!(p.df, 4.0);
    }

    #[test]
    fn a_pooled_noise_level_widens_an_interval_that_a_few_agreeing_rounds_made_narrow() {
        // Four rounds that happen to agree on +7%: alone, their interval clears a 5% threshold.
        let ratios = [1.069, 1.083, 1.076, 1.058];
        let alone = paired_ratio(&ratios, 0.95);
        assert!(alone.lower > 1.05, "{alone:?}");
        // The comparison's benchmarks typically spread by sd 0.08 per round.
        let prior = NoisePrior {
            variance: 0.08 * 0.08,
            df: 4.0,
        };
        let moderated = paired_ratio_with(&ratios, 0.95, Some(prior));
        assert_eq!(moderated.point, alone.point);
        assert!(moderated.lower < 1.05, "{moderated:?}");
        assert!(moderated.p > alone.p);
        // A prior at the benchmark's own level only adds degrees of freedom: narrower.
        let own = variance(&ratios.map(f64::ln));
        let same = paired_ratio_with(
            &ratios,
            0.95,
            Some(NoisePrior {
                variance: own,
                df: 4.0,
            }),
        );
        assert!(
            same.lower > alone.lower && same.upper < alone.upper,
            "{same:?}"
        );
        assert_eq!(paired_ratio_with(&ratios, 0.95, None), alone);
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[9.0, 1.0, 5.0]), 5.0);
        assert_eq!(median(&[4.0, 1.0, 100.0, 2.0]), 3.0);
        // A burst that slows a few samples moves the mean, hardly the median.
        let round = [10.0, 10.2, 9.9, 10.1, 10.0, 30.0, 29.0];
        assert_eq!(median(&round), 10.1);
        assert!(mean(&round) > 15.0);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-12));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn student_t_p_values_match_published_tables() {
        // Critical values: t(0.975, 10) = 2.228, t(0.975, 30) = 2.042, t(0.995, 5) = 4.032.
        assert!(close(student_t_two_sided_p(2.228_139, 10.0), 0.05, 1e-5));
        assert!(close(student_t_two_sided_p(2.042_272, 30.0), 0.05, 1e-5));
        assert!(close(student_t_two_sided_p(4.032_143, 5.0), 0.01, 1e-5));
        assert!(close(student_t_two_sided_p(-2.228_139, 10.0), 0.05, 1e-5));
        assert_eq!(student_t_two_sided_p(0.0, 7.0), 1.0);
    }

    #[test]
    fn welch_matches_a_hand_computed_example() {
        // mean a = 20, var a = 2.5; mean b = 22, var b = 2.5; se = 1, t = 2, df = 8.
        let a = [18.0, 19.0, 20.0, 21.0, 22.0];
        let b = [20.0, 21.0, 22.0, 23.0, 24.0];
        let w = welch(&a, &b);
        assert!(close(w.t, 2.0, 1e-12));
        assert!(close(w.df, 8.0, 1e-9));
        // Two-sided p for t = 2 with 8 df is 0.0805 (R: 2*pt(-2, 8)).
        assert!(close(w.p, 0.080_516, 1e-5));
    }

    #[test]
    fn welch_decides_constant_samples_exactly() {
        assert_eq!(welch(&[5.0; 4], &[5.0; 6]).p, 1.0);
        let w = welch(&[5.0; 4], &[6.0; 6]);
        assert_eq!(w.p, 0.0);
        assert!(w.t > 0.0);
    }

    /// Ten samples of a constant on one side and n on the other: the naive means differ in the
    /// last bit for some n and a naive variance is a rounding error, which would make identical
    /// values "significantly different".
    #[test]
    fn identical_constant_samples_of_different_lengths_are_not_different() {
        let x = 0.1_f64;
        let naive = |n: usize| vec![x; n].iter().sum::<f64>() / n as f64;
        let lengths = (2..40).find(|&n| naive(n) != x);
        assert!(lengths.is_some(), "the rounding case exists");
        for n in 2..40 {
            let w = welch(&[x; 10], &vec![x; n]);
            assert_eq!(w.p, 1.0, "{n} samples");
            assert_eq!(mean(&vec![x; n]), x);
            assert_eq!(variance(&vec![x; n]), 0.0);
        }
    }

    #[test]
    fn t_quantiles_match_published_tables() {
        assert!(close(student_t_quantile(0.95, 10.0), 2.228_139, 1e-5));
        assert!(close(student_t_quantile(0.95, 4.0), 2.776_445, 1e-5));
        assert!(close(student_t_quantile(0.99, 5.0), 4.032_143, 1e-5));
    }

    #[test]
    fn paired_ratio_is_the_geometric_mean_with_a_t_interval_on_logs() {
        // ln ratios: 0.1 +- 0.02 around their mean, five rounds.
        let logs = [0.08, 0.12, 0.10, 0.09, 0.11];
        let ratios: Vec<f64> = logs.iter().map(|l: &f64| l.exp()).collect();
        let r = paired_ratio(&ratios, 0.95);
        assert!(close(r.point, 0.1_f64.exp(), 1e-12));
        // sd of logs = 0.0158, se = 0.00707, t(0.975, 4) = 2.776: half-width 0.01963.
        assert!(close(r.lower, (0.1 - 0.019_63_f64).exp(), 1e-4), "{r:?}");
        assert!(close(r.upper, (0.1 + 0.019_63_f64).exp(), 1e-4), "{r:?}");
        assert!(r.p < 0.001, "{r:?}");
    }

    #[test]
    fn paired_ratio_of_equal_rounds_is_exact() {
        let same = paired_ratio(&[1.0, 1.0, 1.0], 0.95);
        assert_eq!(
            (same.point, same.lower, same.upper, same.p),
            (1.0, 1.0, 1.0, 1.0)
        );
        let shifted = paired_ratio(&[1.5, 1.5], 0.95);
        assert!(close(shifted.point, 1.5, 1e-12));
        assert_eq!(
            (shifted.lower, shifted.upper),
            (shifted.point, shifted.point)
        );
        assert_eq!(shifted.p, 0.0);
    }

    #[test]
    fn bootstrap_interval_is_seeded_and_brackets_the_point() {
        let base: Vec<f64> = (0..30).map(|i| 100.0 + (i % 7) as f64).collect();
        let new: Vec<f64> = base.iter().map(|x| x * 1.25).collect();
        let a = bootstrap_ratio(&base, &new, 2_000, 0.95, 7);
        let b = bootstrap_ratio(&base, &new, 2_000, 0.95, 7);
        assert_eq!(a, b);
        assert!(close(a.point, 1.25, 1e-12));
        assert!(a.lower <= a.point && a.point <= a.upper);
        assert!(a.lower > 1.15 && a.upper < 1.35, "{a:?}");
    }

    #[test]
    fn bootstrap_of_constant_samples_collapses_to_the_ratio() {
        let r = bootstrap_ratio(&[10.0; 5], &[12.0; 5], 500, 0.95, 1);
        assert!(close(r.lower, 1.2, 1e-12) && close(r.upper, 1.2, 1e-12));
    }

    #[test]
    fn quantile_interpolates_between_order_statistics() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&xs, 1.0), 4.0);
        assert!(close(quantile(&xs, 0.5), 2.5, 1e-12));
    }
}
