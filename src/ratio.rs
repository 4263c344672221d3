//! A Criterion [`Measurement`] whose values are unitless ratios (recall, MRR, shares), so quality
//! figures are saved in baselines and read by the regression gate exactly like times and bytes.
//! Benchmarks report through `iter_custom`, returning the figure times the iteration count.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// A measurement in plain numbers (a share in [0, 1], or a mean reciprocal rank). It has no clock:
/// `start`/`end` measure nothing, so benchmarks must use `iter_custom`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ratio;

impl Measurement for Ratio {
    type Intermediate = ();
    type Value = f64;

    fn start(&self) {}

    fn end(&self, _start: ()) -> f64 {
        0.0
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &RatioFormatter
    }
}

/// Prints ratios as they are (no unit prefix), three decimals by Criterion's formatting.
pub struct RatioFormatter;

impl ValueFormatter for RatioFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        ""
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        // A rate of a ratio means nothing; quality benchmarks set no throughput.
        ""
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ratio"
    }
}

/// Figures are reported on a grid of this step (2^-30, about 1e-9): a multiple of it times any
/// iteration count below 2^23 is exact in f64, and so is the division back, so the value
/// Criterion records is the same to the bit whatever count it chose in this run.
pub const RESOLUTION: f64 = 1.0 / (1u64 << 30) as f64;

/// The value reported for a figure: rounded to [`RESOLUTION`], and never below it. Criterion
/// refuses a measurement of exactly zero ("took zero time per iteration") and then saves nothing,
/// so a zero figure (nothing found, nothing kept) is reported as one step: far below any
/// threshold in points, printed as 0.
pub fn reported(figure: f64) -> f64 {
    ((figure / RESOLUTION).round() * RESOLUTION).max(RESOLUTION)
}

/// Iterations are free here, so the reported figure is returned scaled by the count Criterion
/// asked for; the per-iteration value Criterion records is [`reported`]`(figure)` exactly.
pub fn scaled(figure: f64, iters: u64) -> f64 {
    reported(figure) * iters as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_printed_unscaled() {
        let mut v = [0.583, 1.0];
        assert_eq!(RatioFormatter.scale_values(0.5, &mut v), "");
        assert_eq!(v, [0.583, 1.0]);
        assert!(RatioFormatter.format_value(0.583).contains("0.583"));
    }

    #[test]
    fn a_scaled_figure_divides_back_to_the_same_bits_for_any_count() {
        for figure in [0.1, 0.583, 2.0 / 3.0, 0.337_878_787, 1.0] {
            let r = reported(figure);
            assert!((r - figure).abs() <= RESOLUTION / 2.0);
            for iters in [1, 7, 1_000, 35_123, 123_457, 4_000_001] {
                assert_eq!(
                    scaled(figure, iters) / iters as f64,
                    r,
                    "{figure} x {iters}"
                );
            }
        }
        assert_eq!(reported(0.0), RESOLUTION, "Criterion rejects zeros");
        assert_eq!(scaled(0.0, 1_000) / 1_000.0, RESOLUTION);
        assert_eq!(Ratio.add(&0.25, &0.5), 0.75);
    }
}
