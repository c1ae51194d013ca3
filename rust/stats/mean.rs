//! Mean of values in [0, 1] (ROUGE, a judge's score rescaled, a share) with an
//! interval over the design: items, one factor, or two crossed factors.
//!
//! It is the rate machinery of `design.rs` with real-valued sums: every unit
//! (item, cluster or persona x question cell) is reduced to its count and its
//! sum of values, a resample weights those, and the mean is sum / count. The
//! crossed variance, the degrees of freedom and the score interval are the
//! ones a rate gets (values in [0, 1] have at most the variance of 0/1
//! outcomes with the same mean, which is what the Wilson interval assumes).

use super::bootstrap::Method;
use super::design::{ci, factors, Ci, Design, Scale};
use super::intervals::Clusters;
use crate::error::{check_non_empty, Error, ErrorKind, Result};

/// The mean of (count, sum) cells 0 and 1.
fn mean_of_sums(_: &[u64], c: &[f64]) -> f64 {
    c[1] / c[0]
}

/// `values` must lie in [0, 1]; rescale a bounded score first, e.g.
/// (x - lo) / (hi - lo), and map the interval back.
pub fn mean_ci(values: &[f64], clusters: Clusters, n_resamples: usize, level: f64, method: Method, seed: u64) -> Result<Ci> {
    check_non_empty(values.len(), "values")?;
    for (i, &y) in values.iter().enumerate() {
        if y.is_nan() {
            return Err(Error::new(ErrorKind::NaN, "values", format!("contains NaN at index {i}")));
        }
        if !(0.0..=1.0).contains(&y) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "values",
                format!("holds {y} at index {i}; the mean's interval is for values in [0, 1]: rescale a bounded score to (x - lo) / (hi - lo)"),
            ));
        }
    }
    let d = Design::of_values(values, factors(clusters, values.len())?);
    ci(&d, &mean_of_sums, &|_: &[u64], _: &[f64]| Scale::Mean, values.len() as u64, n_resamples, level, method, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, unit};
    use crate::stats::design::linearized;
    use crate::stats::winrate::win_rate_ci;
    use rand::RngCore;

    /// Persona x question grid of values in [0, 1] with additive effects.
    fn grid(r: usize, c: usize, seed: u64) -> (Vec<f64>, Vec<i64>, Vec<i64>) {
        let mut rng = stream(seed, 0);
        let a: Vec<f64> = (0..r).map(|_| 0.2 * unit(rng.next_u64())).collect();
        let b: Vec<f64> = (0..c).map(|_| 0.3 * unit(rng.next_u64())).collect();
        let (mut y, mut p, mut q) = (vec![], vec![], vec![]);
        for (i, &ai) in a.iter().enumerate() {
            for (j, &bj) in b.iter().enumerate() {
                y.push(ai + bj + 0.5 * unit(rng.next_u64()));
                p.push(i as i64);
                q.push(j as i64);
            }
        }
        (y, p, q)
    }

    #[test]
    fn zero_one_values_give_the_rate_interval_exactly() {
        // With 0/1 values the mean is a rate: the cluster and crossed designs
        // draw the same units with the same streams, so the intervals agree.
        let (y, p, q) = grid(30, 12, 1);
        let y01: Vec<f64> = y.iter().map(|&v| (v > 0.5) as u8 as f64).collect();
        let one: &[(&[i64], &str)] = &[(&p, "personas")];
        let two: &[(&[i64], &str)] = &[(&p, "personas"), (&q, "questions")];
        for cl in [one, two] {
            let m = mean_ci(&y01, cl, 500, 0.95, Method::Auto, 3).unwrap();
            let r = win_rate_ci(&y01, cl, 500, 0.95, Method::Auto, 3).unwrap();
            for (a, b) in [(m.estimate, r.estimate), (m.low, r.low), (m.high, r.high), (m.se, r.se)] {
                assert!((a - b).abs() < 1e-12, "{m:?} vs {r:?}");
            }
        }
    }

    #[test]
    fn item_bootstrap_se_is_the_sample_sd_over_root_n() {
        let (y, _, _) = grid(20, 20, 2);
        let n = y.len() as f64;
        let m = y.iter().sum::<f64>() / n;
        let sd = (y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
        let r = mean_ci(&y, &[], 4000, 0.95, Method::Auto, 4).unwrap();
        assert!((r.estimate - m).abs() < 1e-12);
        assert!((r.se / (sd / n.sqrt()) - 1.0).abs() < 0.06, "{} vs {}", r.se, sd / n.sqrt());
        assert_eq!((r.method.as_str(), r.units.len()), ("item-wilson", 0));
    }

    #[test]
    fn linearized_variances_match_the_residual_sums() {
        // For a mean the first-order variances are sums of squared residual
        // totals: V_1 = sum_i R_i^2 / N^2 with R_i = sum_j (y_ij - mean), etc.
        let (y, p, q) = grid(25, 10, 5);
        let f = factors(&[(&p, "p"), (&q, "q")], y.len()).unwrap();
        let d = Design::of_values(&y, f);
        let Design::Crossed { by, cells, .. } = &d else { panic!() };
        let (v1, v2, v12) = linearized(&by[0].used, &d.total(), cells, [25, 10], &mean_of_sums);
        let n = y.len() as f64;
        let m = y.iter().sum::<f64>() / n;
        let s: Vec<f64> = y.iter().map(|v| v - m).collect();
        let rows: Vec<f64> = (0..25).map(|i| s[i * 10..(i + 1) * 10].iter().sum()).collect();
        let cols: Vec<f64> = (0..10).map(|j| (0..25).map(|i| s[i * 10 + j]).sum()).collect();
        let (r2, c2) = (rows.iter().map(|x| x * x).sum::<f64>(), cols.iter().map(|x| x * x).sum::<f64>());
        let e2 = s.iter().map(|x| x * x).sum::<f64>();
        let want = [r2, c2, e2 + (1.0 - 1.0 / 25.0) * c2 + (1.0 - 1.0 / 10.0) * r2].map(|v| v / (n * n));
        for (got, want) in [v1, v2, v12].iter().zip(want) {
            assert!((got / want - 1.0).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn nested_questions_give_the_persona_cluster_variance() {
        // Each question asked of one persona only: resampling questions adds
        // nothing beyond resampling personas, and the crossed interval is the
        // persona-cluster one (V_1 + V_2 - V_cell with V_cell = V_2).
        let (y, p, _) = grid(30, 8, 6);
        let own: Vec<i64> = (0..y.len() as i64).collect();
        let crossed = mean_ci(&y, &[(&p, "personas"), (&own, "questions")], 2000, 0.95, Method::Auto, 7).unwrap();
        let cluster = mean_ci(&y, &[(&p, "personas")], 2000, 0.95, Method::Auto, 7).unwrap();
        assert!((crossed.se / cluster.se - 1.0).abs() < 0.1, "{} vs {}", crossed.se, cluster.se);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(mean_ci(&[0.2, 1.5], &[], 10, 0.95, Method::Auto, 0).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(mean_ci(&[0.2, f64::NAN], &[], 10, 0.95, Method::Auto, 0).unwrap_err().kind, ErrorKind::NaN);
        assert_eq!(mean_ci(&[], &[], 10, 0.95, Method::Auto, 0).unwrap_err().arg, "values");
    }

    #[test]
    fn constant_values_get_the_worst_case_interval() {
        let r = mean_ci(&[0.25; 40], &[], 200, 0.95, Method::Auto, 0).unwrap();
        assert!(r.low < 0.25 && r.high > 0.25, "{r:?}");
        assert!(r.warnings.iter().any(|w| w.contains("a mean of [0, 1] values")), "{r:?}");
    }
}
