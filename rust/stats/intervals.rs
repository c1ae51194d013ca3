//! Confidence intervals for kappa and for the paired difference of two kappas,
//! built on the table bootstrap of `bootstrap.rs`.

use super::bootstrap::{ci, dense_ids, resample, Method, Tables};
use super::confusion::{resolve_k, Label};
use super::kappa::{kappa_of_padded, Weights};
use crate::error::{check_non_empty, check_same_len, Result};

fn cluster_ids(clusters: Option<&[i64]>, n: usize) -> Result<Option<(Vec<u32>, usize)>> {
    clusters.map(|c| dense_ids(c, n)).transpose()
}

/// One cell code per item: the padded pair `(a+1, b+1)`.
fn pair_codes<T: Label>(a: &[T], b: &[T], k: usize) -> Vec<u64> {
    let w = (k + 1) as u64;
    a.iter().zip(b).map(|(x, y)| (x.value() + 1) as u64 * w + (y.value() + 1) as u64).collect()
}

/// Kappa of the padded pair table given as (cell codes, counts).
fn kappa_of_cells(codes: &[u64], counts: &[f64], k: usize, weights: Weights) -> f64 {
    let mut padded = vec![0.0; (k + 1) * (k + 1)];
    for (&c, &x) in codes.iter().zip(counts) {
        padded[c as usize] += x;
    }
    kappa_of_padded(&padded, k, weights)
}

fn kappa_tables<T: Label>(a: &[T], b: &[T], k: Option<usize>, clusters: Option<&[i64]>) -> Result<(usize, Tables)> {
    check_non_empty(a.len(), "a")?;
    check_same_len(a.len(), b.len(), "a", "b")?;
    let k = resolve_k(&[("a", a), ("b", b)], k)?;
    let ids = cluster_ids(clusters, a.len())?;
    let codes = pair_codes(a, b, k);
    let t = Tables::new(&codes, ids.as_ref().map(|(v, n)| (v.as_slice(), *n)));
    Ok((k, t))
}

/// Bootstrap distribution of kappa (item or cluster bootstrap).
pub fn kappa_bootstrap<T: Label>(
    a: &[T],
    b: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Option<&[i64]>,
    n_resamples: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let (k, t) = kappa_tables(a, b, k, clusters)?;
    Ok(resample(&t, &|codes: &[u64], c: &[f64]| kappa_of_cells(codes, c, k, weights), n_resamples, seed))
}

/// Kappa with a percentile or BCa bootstrap interval.
#[allow(clippy::too_many_arguments)]
pub fn kappa_ci<T: Label>(
    a: &[T],
    b: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Option<&[i64]>,
    n_resamples: usize,
    level: f64,
    method: Method,
    seed: u64,
) -> Result<(f64, f64, f64)> {
    let (k, t) = kappa_tables(a, b, k, clusters)?;
    ci(&t, &|codes: &[u64], c: &[f64]| kappa_of_cells(codes, c, k, weights), n_resamples, level, method, seed)
}

/// kappa(a1, b1) - kappa(a2, b2) on the same items, with a paired bootstrap
/// interval: each item's four labels form one cell of a `(k+1)^4` joint table.
#[allow(clippy::too_many_arguments)]
pub fn kappa_diff_ci<T: Label>(
    a1: &[T],
    b1: &[T],
    a2: &[T],
    b2: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Option<&[i64]>,
    n_resamples: usize,
    level: f64,
    method: Method,
    seed: u64,
) -> Result<(f64, f64, f64)> {
    check_non_empty(a1.len(), "a1")?;
    check_same_len(a1.len(), b1.len(), "a1", "b1")?;
    check_same_len(a1.len(), a2.len(), "a1", "a2")?;
    check_same_len(a1.len(), b2.len(), "a1", "b2")?;
    let k = resolve_k(&[("a1", a1), ("b1", b1), ("a2", a2), ("b2", b2)], k)?;
    let cells = ((k + 1) * (k + 1)) as u64;
    let c1 = pair_codes(a1, b1, k);
    let c2 = pair_codes(a2, b2, k);
    let codes: Vec<u64> = c1.iter().zip(&c2).map(|(&x, &y)| x * cells + y).collect();
    let ids = cluster_ids(clusters, a1.len())?;
    let t = Tables::new(&codes, ids.as_ref().map(|(v, n)| (v.as_slice(), *n)));
    let stat = |joint: &[u64], counts: &[f64]| {
        let mut t1 = vec![0.0; cells as usize];
        let mut t2 = vec![0.0; cells as usize];
        for (&code, &x) in joint.iter().zip(counts) {
            t1[(code / cells) as usize] += x;
            t2[(code % cells) as usize] += x;
        }
        kappa_of_padded(&t1, k, weights) - kappa_of_padded(&t2, k, weights)
    };
    ci(&t, &stat, n_resamples, level, method, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, salt: u64, agree: u64) -> (Vec<i64>, Vec<i64>) {
        let a: Vec<i64> = (0..n as u64).map(|i| ((i.wrapping_mul(2654435761) ^ salt) >> 3 & 1) as i64).collect();
        let b: Vec<i64> = a
            .iter()
            .enumerate()
            .map(|(i, &x)| if (i as u64 * 40503 + salt) % 100 < agree { x } else { 1 - x })
            .collect();
        (a, b)
    }

    #[test]
    fn ci_brackets_the_estimate() {
        let (a, b) = labels(2000, 1, 80);
        let (est, lo, hi) = kappa_ci(&a, &b, None, Weights::None, None, 1000, 0.95, Method::Percentile, 0).unwrap();
        assert!(lo < est && est < hi, "{lo} {est} {hi}");
        let (_, lo_b, hi_b) = kappa_ci(&a, &b, None, Weights::None, None, 1000, 0.95, Method::Bca, 0).unwrap();
        assert!(lo_b < est && est < hi_b);
    }

    #[test]
    fn diff_of_a_run_with_itself_is_zero() {
        let (a, b) = labels(500, 2, 70);
        let r = kappa_diff_ci(&a, &b, &a, &b, None, Weights::None, None, 200, 0.95, Method::Percentile, 0).unwrap();
        assert_eq!(r, (0.0, 0.0, 0.0));
    }

    #[test]
    fn diff_detects_a_real_change() {
        let (a, b1) = labels(3000, 3, 90);
        let (_, b2) = labels(3000, 3, 60);
        let (d, lo, hi) = kappa_diff_ci(&a, &b1, &a, &b2, None, Weights::None, None, 500, 0.95, Method::Percentile, 0).unwrap();
        assert!(d > 0.4 && lo > 0.0 && hi > lo, "{d} {lo} {hi}");
    }
}
