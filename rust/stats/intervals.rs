//! Confidence intervals for kappa and for the paired difference of two kappas,
//! on the designs of `design.rs` (items, clusters, or crossed factors).

use super::bootstrap::{check_resamples, resample, Method};
use super::confusion::{resolve_k, Label};
use super::design::{ci, factors, Ci, Design, Scale};
use super::kappa::{agreement_of_padded, kappa_of_padded, Weights};
use crate::error::{check_non_empty, check_same_len, Error, ErrorKind, Result};

/// Cluster id arrays with their names: none, one factor, or two crossed ones.
pub type Clusters<'a> = &'a [(&'a [i64], &'a str)];

/// One cell code per item: the padded pair `(a+1, b+1)`.
fn pair_codes<T: Label>(a: &[T], b: &[T], k: usize) -> Vec<u64> {
    let w = (k + 1) as u64;
    a.iter().zip(b).map(|(x, y)| (x.value() + 1) as u64 * w + (y.value() + 1) as u64).collect()
}

/// The padded pair table given as (cell codes, counts).
fn padded(codes: &[u64], counts: &[f64], k: usize) -> Vec<f64> {
    let mut t = vec![0.0; (k + 1) * (k + 1)];
    for (&c, &x) in codes.iter().zip(counts) {
        t[c as usize] += x;
    }
    t
}

/// Items whose padded pair code has both labels present.
fn complete(codes: &[u64], counts: &[f64], k: usize) -> u64 {
    let w = (k + 1) as u64;
    codes.iter().zip(counts).filter(|(&c, _)| c / w > 0 && c % w > 0).map(|(_, &x)| x as u64).sum()
}

/// Kappa's bounded scale: observed disagreement D_o = 1 - p_o, chance D_e = 1 - p_e.
fn kappa_scale(t: &[f64], k: usize, weights: Weights) -> (f64, f64) {
    let ag = agreement_of_padded(t, k, weights);
    (1.0 - ag.observed, 1.0 - ag.expected)
}

fn kappa_design<T: Label>(a: &[T], b: &[T], k: Option<usize>, clusters: Clusters) -> Result<(usize, Design)> {
    check_non_empty(a.len(), "a")?;
    check_same_len(a.len(), b.len(), "a", "b")?;
    let k = resolve_k(&[("a", a), ("b", b)], k)?;
    let f = factors(clusters, a.len())?;
    Ok((k, Design::new(&pair_codes(a, b, k), f)))
}

/// Bootstrap distribution of kappa (item or one-factor cluster bootstrap).
pub fn kappa_bootstrap<T: Label>(
    a: &[T],
    b: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Clusters,
    n_resamples: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    check_resamples(n_resamples)?;
    let (k, d) = kappa_design(a, b, k, clusters)?;
    let t = d.one_way().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            "clusters",
            "holds two crossed factors; a crossed interval combines three resampling schemes, so there is no single bootstrap distribution (use kappa_ci)",
        )
    })?;
    Ok(resample(t, &|codes: &[u64], c: &[f64]| kappa_of_padded(&padded(codes, c, k), k, weights), n_resamples, seed))
}

/// Kappa with an interval over the design (see `design.rs` for the method).
#[allow(clippy::too_many_arguments)]
pub fn kappa_ci<T: Label>(
    a: &[T],
    b: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Clusters,
    n_resamples: usize,
    level: f64,
    method: Method,
    seed: u64,
) -> Result<Ci> {
    let (k, d) = kappa_design(a, b, k, clusters)?;
    let stat = |codes: &[u64], c: &[f64]| kappa_of_padded(&padded(codes, c, k), k, weights);
    let scale = |codes: &[u64], c: &[f64]| Scale::Kappa { chance_disagreement: kappa_scale(&padded(codes, c, k), k, weights).1 };
    let total = d.total();
    ci(&d, &stat, &scale, complete(d.used(), &total, k), n_resamples, level, method, seed)
}

/// kappa(a1, b1) - kappa(a2, b2) on the same items, with a paired interval:
/// each item's four labels form one cell of a `(k+1)^4` joint table, so every
/// resample keeps an item's judgments in both runs together.
#[allow(clippy::too_many_arguments)]
pub fn kappa_diff_ci<T: Label>(
    a1: &[T],
    b1: &[T],
    a2: &[T],
    b2: &[T],
    k: Option<usize>,
    weights: Weights,
    clusters: Clusters,
    n_resamples: usize,
    level: f64,
    method: Method,
    seed: u64,
) -> Result<Ci> {
    check_non_empty(a1.len(), "a1")?;
    check_same_len(a1.len(), b1.len(), "a1", "b1")?;
    check_same_len(a1.len(), a2.len(), "a1", "a2")?;
    check_same_len(a1.len(), b2.len(), "a1", "b2")?;
    let k = resolve_k(&[("a1", a1), ("b1", b1), ("a2", a2), ("b2", b2)], k)?;
    let cells = ((k + 1) * (k + 1)) as u64;
    let c1 = pair_codes(a1, b1, k);
    let c2 = pair_codes(a2, b2, k);
    let codes: Vec<u64> = c1.iter().zip(&c2).map(|(&x, &y)| x * cells + y).collect();
    let d = Design::new(&codes, factors(clusters, a1.len())?);
    let split = |joint: &[u64], counts: &[f64]| {
        let mut t1 = vec![0.0; cells as usize];
        let mut t2 = vec![0.0; cells as usize];
        for (&code, &x) in joint.iter().zip(counts) {
            t1[(code / cells) as usize] += x;
            t2[(code % cells) as usize] += x;
        }
        (t1, t2)
    };
    let stat = |joint: &[u64], counts: &[f64]| {
        let (t1, t2) = split(joint, counts);
        kappa_of_padded(&t1, k, weights) - kappa_of_padded(&t2, k, weights)
    };
    let scale = |joint: &[u64], counts: &[f64]| {
        let (t1, t2) = split(joint, counts);
        Scale::Difference { sides: [kappa_scale(&t1, k, weights), kappa_scale(&t2, k, weights)] }
    };
    // Items complete in both runs (the smaller of the two kappas' counts).
    let (t1, t2) = split(d.used(), &d.total());
    let count = |t: &[f64]| (0..t.len()).filter(|&c| c / (k + 1) > 0 && c % (k + 1) > 0).map(|c| t[c] as u64).sum::<u64>();
    ci(&d, &stat, &scale, count(&t1).min(count(&t2)), n_resamples, level, method, seed)
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
        for m in [Method::Auto, Method::Percentile, Method::Bca] {
            let (est, lo, hi) = kappa_ci(&a, &b, None, Weights::None, &[], 1000, 0.95, m, 0).unwrap().ends();
            assert!(lo < est && est < hi, "{m:?}: {lo} {est} {hi}");
        }
    }

    #[test]
    fn diff_of_a_run_with_itself_is_zero_with_a_nonzero_width() {
        let (a, b) = labels(500, 2, 70);
        let r = kappa_diff_ci(&a, &b, &a, &b, None, Weights::None, &[], 200, 0.95, Method::Percentile, 0).unwrap();
        assert_eq!(r.estimate, 0.0);
        assert!(r.low < 0.0 && r.high > 0.0 && (r.low + r.high).abs() < 1e-12, "{r:?}");
        assert!(r.warnings.iter().any(|w| w.contains("no resample changed")), "{r:?}");
    }

    #[test]
    fn perfect_agreement_is_not_a_point_interval() {
        // 50 items, all agreeing: kappa = 1, and the interval reaches below 1.
        let a: Vec<i64> = (0..50).map(|i| i % 2).collect();
        let r = kappa_ci(&a, &a, None, Weights::None, &[], 500, 0.95, Method::Auto, 0).unwrap();
        assert_eq!(r.estimate, 1.0);
        assert!(r.high <= 1.0 && r.low < 0.9 && r.low > 0.7, "{r:?}");
        assert_eq!(r.method, "item-wilson");
    }

    #[test]
    fn missing_labels_are_not_counted_as_items() {
        let a = [0i64, 1, -1, 1, 0, 1];
        let b = [0i64, 1, 1, -1, 1, 1];
        assert_eq!(kappa_ci(&a, &b, None, Weights::None, &[], 100, 0.95, Method::Auto, 0).unwrap().n, 4);
    }

    #[test]
    fn crossed_bootstrap_distribution_is_refused() {
        let (a, b) = labels(100, 4, 70);
        let p: Vec<i64> = (0..100).map(|i| i / 10).collect();
        let q: Vec<i64> = (0..100).map(|i| i % 10).collect();
        let e = kappa_bootstrap(&a, &b, None, Weights::None, &[(&p, "p"), (&q, "q")], 10, 0).unwrap_err();
        assert_eq!(e.arg, "clusters");
    }

    #[test]
    fn too_many_resamples_are_refused_before_any_work() {
        let (a, b) = labels(100, 4, 70);
        let e = kappa_bootstrap(&a, &b, None, Weights::None, &[], 1_000_000_000_000, 0).unwrap_err();
        assert_eq!((e.kind, e.arg), (ErrorKind::InvalidArgument, "n_resamples"));
        let e = kappa_ci(&a, &b, None, Weights::None, &[], usize::MAX, 0.95, Method::Auto, 0).unwrap_err();
        assert_eq!(e.arg, "n_resamples");
    }

    #[test]
    fn diff_detects_a_real_change() {
        let (a, b1) = labels(3000, 3, 90);
        let (_, b2) = labels(3000, 3, 60);
        let (d, lo, hi) = kappa_diff_ci(&a, &b1, &a, &b2, None, Weights::None, &[], 500, 0.95, Method::Percentile, 0).unwrap().ends();
        assert!(d > 0.4 && lo > 0.0 && hi > lo, "{d} {lo} {hi}");
    }
}
