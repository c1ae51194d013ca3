//! Bootstrap confidence intervals computed on sufficient statistics.
//!
//! Each item is reduced to a cell code (e.g. its pair of labels); a statistic is
//! a function of the vector of cell counts. An item bootstrap is then a
//! multinomial draw over the cells of the total table, and a cluster bootstrap
//! draws whole clusters (personas, prompts) and sums their tables. Either way a
//! resample costs O(cells) or O(clusters x used cells), never O(items).
//! `design.rs` combines these resamples into the interval of a design.

use rand::RngCore;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::error::{check_same_len, Error, ErrorKind, Result};
use crate::rng::{below, stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The design's standard error with a score or normal interval (see `design.rs`).
    Auto,
    Percentile,
    Bca,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method> {
        match s {
            "auto" => Ok(Method::Auto),
            "percentile" => Ok(Method::Percentile),
            "bca" | "BCa" => Ok(Method::Bca),
            other => Err(Error::new(ErrorKind::InvalidArgument, "method", format!("is {other:?}; use \"auto\", \"percentile\" or \"bca\""))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Percentile => "percentile",
            Method::Bca => "bca",
        }
    }
}

/// Per-cluster cell counts, keeping only the cells that occur at all.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Code of each kept cell, ascending.
    pub used: Vec<u64>,
    /// Number of rows (clusters; 1 for a pooled item table).
    pub clusters: usize,
    /// `clusters x used.len()` masses, row-major: item counts, or for a mean
    /// (`of_values`) each row's (count, sum of values).
    pub counts: Vec<f64>,
    /// One row of item counts, resampled as a multinomial over its cells.
    /// Otherwise each row is a unit drawn whole (a cluster, or an item of a mean).
    pub pooled: bool,
}

impl Tables {
    /// Builds the tables from one cell code per item and, optionally, dense
    /// cluster ids `0..n_clusters`.
    pub fn new(codes: &[u64], clusters: Option<(&[u32], usize)>) -> Tables {
        // Compact cell index: a lookup array for small code spaces (the usual
        // kappa tables), a hash map otherwise (joint tables of many categories).
        let max = codes.iter().copied().max().unwrap_or(0);
        let (used, index): (Vec<u64>, Box<dyn Fn(u64) -> usize>) = if max < 1 << 16 {
            let mut present = vec![false; max as usize + 1];
            for &c in codes {
                present[c as usize] = true;
            }
            let used: Vec<u64> = (0..=max).filter(|&c| present[c as usize]).collect();
            let mut slot = vec![usize::MAX; max as usize + 1];
            for (j, &c) in used.iter().enumerate() {
                slot[c as usize] = j;
            }
            (used, Box::new(move |c| slot[c as usize]))
        } else {
            let mut used: Vec<u64> = codes.to_vec();
            used.sort_unstable();
            used.dedup();
            let map: FxHashMap<u64, usize> = used.iter().enumerate().map(|(j, &c)| (c, j)).collect();
            (used, Box::new(move |c| map[&c]))
        };
        let u = used.len();
        let (n_clusters, counts) = match clusters {
            None => {
                let mut t = vec![0.0; u];
                for &c in codes {
                    t[index(c)] += 1.0;
                }
                (1, t)
            }
            Some((ids, n_clusters)) => {
                let mut t = vec![0.0; n_clusters * u];
                for (&c, &g) in codes.iter().zip(ids) {
                    t[g as usize * u + index(c)] += 1.0;
                }
                (n_clusters, t)
            }
        };
        Tables { used, clusters: n_clusters, counts, pooled: clusters.is_none() }
    }

    /// Tables for the mean of real `values`: cell 0 counts the items, cell 1
    /// sums their values, so the mean is cell 1 / cell 0 of any resample (the
    /// rate of a 0/1 outcome is the special case). Without clusters every item
    /// is its own row, which makes the resample an item bootstrap: a
    /// multinomial over cells would not know which values make up a sum.
    pub fn of_values(values: &[f64], clusters: Option<(&[u32], usize)>) -> Tables {
        let rows = clusters.map_or(values.len(), |(_, n)| n);
        let mut counts = vec![0.0; 2 * rows];
        for (i, &y) in values.iter().enumerate() {
            let g = clusters.map_or(i, |(ids, _)| ids[i] as usize);
            counts[2 * g] += 1.0;
            counts[2 * g + 1] += y;
        }
        Tables { used: vec![0, 1], clusters: rows, counts, pooled: false }
    }

    pub fn total(&self) -> Vec<f64> {
        let u = self.used.len();
        let mut t = vec![0.0; u];
        for row in self.counts.chunks_exact(u.max(1)) {
            for (x, &y) in t.iter_mut().zip(row) {
                *x += y;
            }
        }
        t
    }
}

/// Maps arbitrary cluster ids to dense ids `0..n` (in order of first appearance).
pub fn dense_ids(ids: &[i64], n_items: usize) -> Result<(Vec<u32>, usize)> {
    check_same_len(n_items, ids.len(), "labels", "clusters")?;
    let (lo, hi) = ids.iter().fold((i64::MAX, i64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    let mut out = Vec::with_capacity(ids.len());
    let mut next = 0u32;
    let span = (hi as i128 - lo as i128) as u128;
    if !ids.is_empty() && span < (4 * ids.len() as u128).max(1 << 16) {
        // Ids in a small range (the usual 0..n_clusters): a direct lookup table.
        let mut map = vec![u32::MAX; span as usize + 1];
        for &x in ids {
            let slot = &mut map[(x - lo) as usize];
            if *slot == u32::MAX {
                *slot = next;
                next += 1;
            }
            out.push(*slot);
        }
    } else {
        let mut map: FxHashMap<i64, u32> = FxHashMap::default();
        for &x in ids {
            let id = *map.entry(x).or_insert_with(|| {
                next += 1;
                next - 1
            });
            out.push(id);
        }
    }
    Ok((out, next as usize))
}

/// Draws `n_resamples` values of `stat`, a function of (cell codes, counts).
pub fn resample<F>(t: &Tables, stat: &F, n_resamples: usize, seed: u64) -> Vec<f64>
where
    F: Fn(&[u64], &[f64]) -> f64 + Sync,
{
    let u = t.used.len();
    // A pooled table holds whole item counts (exact in f64 below 2^53).
    let total: Vec<u64> = t.total().iter().map(|&c| c as u64).collect();
    let n: u64 = total.iter().sum();
    (0..n_resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = stream(seed, b as u64);
            let mut acc = vec![0.0f64; u];
            if t.pooled {
                // Multinomial(n, total / n) by sequential conditional binomials.
                let (mut left_n, mut left_mass) = (n, n);
                for j in 0..u {
                    if left_n == 0 {
                        break;
                    }
                    let c = total[j];
                    let x = if j + 1 == u || c == left_mass {
                        left_n
                    } else {
                        let p = c as f64 / left_mass as f64;
                        Binomial::new(left_n, p).expect("p is a proportion").sample(&mut rng)
                    };
                    acc[j] = x as f64;
                    left_n -= x;
                    left_mass -= c;
                }
            } else {
                let mut draws = vec![0u32; t.clusters];
                for _ in 0..t.clusters {
                    draws[below(rng.next_u64(), t.clusters as u64) as usize] += 1;
                }
                for (g, &times) in draws.iter().enumerate() {
                    if times > 0 {
                        let row = &t.counts[g * u..(g + 1) * u];
                        for (x, &y) in acc.iter_mut().zip(row) {
                            *x += times as f64 * y;
                        }
                    }
                }
            }
            stat(&t.used, &acc)
        })
        .collect()
}

/// Jackknife values `(theta_i, weight)`: leave one item out per used cell of
/// a pooled table (weighted by its count), otherwise leave one row out.
pub fn jackknife<F>(t: &Tables, stat: &F) -> Vec<(f64, f64)>
where
    F: Fn(&[u64], &[f64]) -> f64 + Sync,
{
    let total = t.total();
    let u = t.used.len();
    if t.pooled {
        (0..u)
            .filter(|&j| total[j] > 0.0)
            .map(|j| {
                let mut x = total.clone();
                x[j] -= 1.0;
                (stat(&t.used, &x), total[j])
            })
            .collect()
    } else {
        (0..t.clusters)
            .into_par_iter()
            .map(|g| {
                let row = &t.counts[g * u..(g + 1) * u];
                let x: Vec<f64> = total.iter().zip(row).map(|(&s, &r)| s - r).collect();
                (stat(&t.used, &x), 1.0)
            })
            .collect()
    }
}

/// Linear-interpolation quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The ends of a `level` interval from a bootstrap distribution.
pub fn interval(estimate: f64, boot: &[f64], jack: &[(f64, f64)], level: f64, method: Method) -> (f64, f64) {
    let mut v: Vec<f64> = boot.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    if v[0] == v[v.len() - 1] {
        return (v[0], v[0]);
    }
    let alpha = (1.0 - level) / 2.0;
    let (q_lo, q_hi) = match method {
        Method::Percentile | Method::Auto => (alpha, 1.0 - alpha),
        Method::Bca => {
            let normal = Normal::standard();
            let below = v.iter().filter(|&&x| x < estimate).count() as f64 / v.len() as f64;
            let z0 = normal.inverse_cdf(below);
            let jack: Vec<(f64, f64)> = jack.iter().copied().filter(|(x, _)| x.is_finite()).collect();
            let wsum: f64 = jack.iter().map(|&(_, w)| w).sum();
            let mean = jack.iter().map(|&(x, w)| x * w).sum::<f64>() / wsum;
            let num: f64 = jack.iter().map(|&(x, w)| w * (mean - x).powi(3)).sum();
            let den = 6.0 * jack.iter().map(|&(x, w)| w * (mean - x).powi(2)).sum::<f64>().powf(1.5);
            let a = if den > 0.0 { num / den } else { 0.0 };
            let adjust = |z: f64| normal.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)));
            (adjust(normal.inverse_cdf(alpha)), adjust(normal.inverse_cdf(1.0 - alpha)))
        }
    };
    if !(q_lo.is_finite() && q_hi.is_finite()) {
        return (f64::NAN, f64::NAN);
    }
    (quantile(&v, q_lo), quantile(&v, q_hi))
}

/// The most resamples one interval may ask for: far beyond what any interval
/// needs (10^4 is plenty), and its values fit in 80 MB; more is a typo
/// that would allocate without bound or run for hours.
pub const MAX_RESAMPLES: usize = 10_000_000;

/// Checks a resample count against MAX_RESAMPLES.
pub fn check_resamples(n_resamples: usize) -> Result<()> {
    if n_resamples > MAX_RESAMPLES {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "n_resamples",
            format!("is {n_resamples}; at most {MAX_RESAMPLES} resamples are allowed (1,000 to 10,000 give stable intervals)"),
        ));
    }
    Ok(())
}

/// Checks the interval parameters shared by every CI function.
pub fn check_params(n_resamples: usize, level: f64) -> Result<()> {
    if n_resamples < 2 {
        return Err(Error::new(ErrorKind::InvalidArgument, "n_resamples", format!("is {n_resamples}; at least 2 are needed")));
    }
    check_resamples(n_resamples)?;
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::new(ErrorKind::InvalidArgument, "level", format!("is {level}; it must lie strictly between 0 and 1")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_stat(codes: &[u64], c: &[f64]) -> f64 {
        // Proportion of items in cell 1 (cells are 0 and 1).
        let ones: f64 = codes.iter().zip(c).filter(|(&k, _)| k == 1).map(|(_, &x)| x).sum();
        ones / c.iter().sum::<f64>()
    }

    #[test]
    fn item_bootstrap_of_a_proportion_has_binomial_spread() {
        // 400 items, 100 in cell 1: bootstrap sd of the proportion ~ sqrt(p(1-p)/n).
        let codes: Vec<u64> = (0..400).map(|i| (i % 4 == 0) as u64).collect();
        let t = Tables::new(&codes, None);
        let boot = resample(&t, &mean_stat, 4000, 1);
        let m = boot.iter().sum::<f64>() / boot.len() as f64;
        let sd = (boot.iter().map(|x| (x - m).powi(2)).sum::<f64>() / boot.len() as f64).sqrt();
        let expected = (0.25f64 * 0.75 / 400.0).sqrt();
        assert!((m - 0.25).abs() < 0.003, "mean {m}");
        assert!((sd / expected - 1.0).abs() < 0.06, "sd {sd} vs {expected}");
    }

    #[test]
    fn cluster_bootstrap_is_wider_under_within_cluster_correlation() {
        // 40 clusters of 25 items; each cluster is all 0 or all 1.
        let codes: Vec<u64> = (0..1000).map(|i| ((i / 25) % 2) as u64).collect();
        let ids: Vec<u32> = (0..1000).map(|i| (i / 25) as u32).collect();
        let sd = |t: &Tables| {
            let b = resample(t, &mean_stat, 2000, 3);
            let m = b.iter().sum::<f64>() / b.len() as f64;
            (b.iter().map(|x| (x - m).powi(2)).sum::<f64>() / b.len() as f64).sqrt()
        };
        let (item, clus) = (sd(&Tables::new(&codes, None)), sd(&Tables::new(&codes, Some((&ids, 40)))));
        assert!(clus > 3.0 * item, "{item} {clus}");
    }

    #[test]
    fn same_seed_same_draws_any_thread_count() {
        let codes: Vec<u64> = (0..500).map(|i| (i % 3 == 0) as u64).collect();
        let t = Tables::new(&codes, None);
        let a = resample(&t, &mean_stat, 300, 9);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = pool.install(|| resample(&t, &mean_stat, 300, 9));
        assert_eq!(a, b);
        assert_ne!(a, resample(&t, &mean_stat, 300, 10));
    }

    #[test]
    fn bca_equals_percentile_for_symmetric_unbiased_case() {
        // A jackknife with zero skew and a median-centred distribution: a = 0, z0 = 0.
        let boot: Vec<f64> = (0..1001).map(|i| i as f64).collect();
        let jack = vec![(1.0, 1.0), (-1.0, 1.0)];
        let p = interval(500.0, &boot, &jack, 0.9, Method::Percentile);
        let b = interval(500.0, &boot, &jack, 0.9, Method::Bca);
        assert!((p.0 - b.0).abs() < 1.0 && (p.1 - b.1).abs() < 1.0, "{p:?} {b:?}");
        assert!((p.0 - 50.0).abs() < 1e-9 && p.1 == 950.0, "numpy linear quantiles of 0..=1000: {p:?}");
    }

    #[test]
    fn dense_ids_in_first_appearance_order() {
        assert_eq!(dense_ids(&[7, 3, 7, 9], 4).unwrap(), (vec![0, 1, 0, 2], 3));
        assert_eq!(dense_ids(&[i64::MIN, i64::MAX, i64::MIN], 3).unwrap(), (vec![0, 1, 0], 2));
        assert!(dense_ids(&[1, 2], 3).is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(check_params(1, 0.95).unwrap_err().arg, "n_resamples");
        assert_eq!(check_params(100, 1.0).unwrap_err().arg, "level");
        assert_eq!(check_params(MAX_RESAMPLES, 0.95), Ok(()));
        assert_eq!(check_params(1_000_000_000_000, 0.95).unwrap_err().arg, "n_resamples");
    }
}
