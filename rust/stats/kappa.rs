//! Cohen's kappa (unweighted, linear, quadratic) from a confusion table, and the
//! pairwise kappa matrix of many annotators.

use rayon::prelude::*;

use super::confusion::{resolve_k, strip_missing, Label};
use crate::error::{check_non_empty, Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    None,
    Linear,
    Quadratic,
}

impl Weights {
    pub fn parse(s: &str) -> Result<Weights> {
        match s {
            "none" | "" => Ok(Weights::None),
            "linear" => Ok(Weights::Linear),
            "quadratic" => Ok(Weights::Quadratic),
            other => Err(Error::new(
                ErrorKind::InvalidArgument,
                "weights",
                format!("is {other:?}; use None, \"linear\" or \"quadratic\""),
            )),
        }
    }

    /// Disagreement weight of categories i and j, scaled to [0, 1].
    #[inline]
    pub fn disagreement(self, i: usize, j: usize, k: usize) -> f64 {
        if i == j {
            return 0.0;
        }
        let d = i.abs_diff(j) as f64 / (k.max(2) - 1) as f64;
        match self {
            Weights::None => 1.0,
            Weights::Linear => d,
            Weights::Quadratic => d * d,
        }
    }
}

/// Kappa with the agreement figures it is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    pub kappa: f64,
    pub observed: f64,
    pub expected: f64,
    pub n: u64,
}

/// Kappa of a `k x k` table of counts (any numeric cell type via f64).
///
/// Uses the disagreement form `1 - sum(w O) / sum(w E)`, which is NaN exactly
/// when chance disagreement is zero (one shared category), as scikit-learn does.
pub fn kappa_of_table(table: &[f64], k: usize, weights: Weights) -> Agreement {
    let mut rows = vec![0.0; k];
    let mut cols = vec![0.0; k];
    let mut n = 0.0;
    for i in 0..k {
        for j in 0..k {
            let c = table[i * k + j];
            rows[i] += c;
            cols[j] += c;
            n += c;
        }
    }
    if n == 0.0 {
        return Agreement { kappa: f64::NAN, observed: f64::NAN, expected: f64::NAN, n: 0 };
    }
    let (mut dis_obs, mut dis_exp) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            let w = weights.disagreement(i, j, k);
            if w != 0.0 {
                dis_obs += w * table[i * k + j];
                dis_exp += w * rows[i] * cols[j];
            }
        }
    }
    let dis_obs = dis_obs / n;
    let dis_exp = dis_exp / (n * n);
    let kappa = if dis_exp == 0.0 { f64::NAN } else { 1.0 - dis_obs / dis_exp };
    Agreement { kappa, observed: 1.0 - dis_obs, expected: 1.0 - dis_exp, n: n as u64 }
}

/// Kappa of a padded `(k+1)^2` table (row/column 0 = missing).
pub fn kappa_of_padded(padded: &[f64], k: usize, weights: Weights) -> f64 {
    agreement_of_padded(padded, k, weights).kappa
}

/// Kappa and its agreement figures from a padded `(k+1)^2` table.
pub fn agreement_of_padded(padded: &[f64], k: usize, weights: Weights) -> Agreement {
    let w = k + 1;
    let mut t = Vec::with_capacity(k * k);
    for i in 1..w {
        t.extend_from_slice(&padded[i * w + 1..(i + 1) * w]);
    }
    kappa_of_table(&t, k, weights)
}

/// Cohen's kappa of two label arrays.
pub fn agreement<T: Label>(a: &[T], b: &[T], k: Option<usize>, weights: Weights) -> Result<(usize, Agreement)> {
    let (k, padded) = super::confusion::table_of(a, b, k)?;
    let t: Vec<f64> = strip_missing(&padded, k).into_iter().map(|c| c as f64).collect();
    Ok((k, kappa_of_table(&t, k, weights)))
}

/// Pairwise kappa of `m` annotators over `n` items (`labels` row-major, one row per
/// annotator, -1 = missing), each pair on the items both labelled.
///
/// For few categories each (annotator, category) becomes a bitset over items and
/// a pair's table is `k^2` AND-popcounts per 64 items; otherwise one pass per pair.
pub fn kappa_matrix<T: Label>(labels: &[T], m: usize, n: usize, k: Option<usize>, weights: Weights) -> Result<Vec<f64>> {
    check_non_empty(m * n, "labels")?;
    if labels.len() != m * n {
        return Err(Error::new(ErrorKind::Data, "labels", format!("has {} values, expected {m} x {n}", labels.len())));
    }
    let k = resolve_k(&[("labels", labels)], k)?;
    let rows: Vec<&[T]> = labels.chunks_exact(n).collect();
    let pairs: Vec<(usize, usize)> = (0..m).flat_map(|i| (i..m).map(move |j| (i, j))).collect();
    let tables: Vec<Vec<u64>> = if k <= 6 {
        let words = n.div_ceil(64);
        let bits: Vec<Vec<u64>> = rows
            .par_iter()
            .map(|row| {
                let mut b = vec![0u64; k * words];
                for (i, &x) in row.iter().enumerate() {
                    let v = x.value();
                    if v >= 0 {
                        b[v as usize * words + i / 64] |= 1u64 << (i % 64);
                    }
                }
                b
            })
            .collect();
        pairs
            .par_iter()
            .map(|&(r, s)| {
                let (br, bs) = (&bits[r], &bits[s]);
                let mut t = vec![0u64; k * k];
                for c in 0..k {
                    let x = &br[c * words..(c + 1) * words];
                    for d in 0..k {
                        let y = &bs[d * words..(d + 1) * words];
                        t[c * k + d] = x.iter().zip(y).map(|(p, q)| (p & q).count_ones() as u64).sum();
                    }
                }
                t
            })
            .collect()
    } else {
        pairs
            .par_iter()
            .map(|&(r, s)| strip_missing(&super::confusion::padded_table(rows[r], rows[s], k), k))
            .collect()
    };
    let mut out = vec![f64::NAN; m * m];
    for (&(r, s), t) in pairs.iter().zip(&tables) {
        let t: Vec<f64> = t.iter().map(|&c| c as f64).collect();
        let kappa = kappa_of_table(&t, k, weights).kappa;
        out[r * m + s] = kappa;
        out[s * m + r] = kappa;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn textbook_two_by_two() {
        // 50 items: 20 both yes, 15 both no, 5 yes/no, 10 no/yes.
        // p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4.
        let t = [15.0, 10.0, 5.0, 20.0];
        let ag = kappa_of_table(&t, 2, Weights::None);
        assert!(close(ag.observed, 0.7) && close(ag.expected, 0.5) && close(ag.kappa, 0.4));
    }

    #[test]
    fn perfect_and_degenerate() {
        assert!(close(kappa_of_table(&[3.0, 0.0, 0.0, 4.0], 2, Weights::None).kappa, 1.0));
        assert!(kappa_of_table(&[5.0, 0.0, 0.0, 0.0], 2, Weights::None).kappa.is_nan());
        assert!(kappa_of_table(&[0.0; 4], 2, Weights::None).kappa.is_nan());
    }

    #[test]
    fn weighted_equals_unweighted_for_two_categories() {
        let t = [11.0, 4.0, 7.0, 9.0];
        let u = kappa_of_table(&t, 2, Weights::None).kappa;
        assert!(close(u, kappa_of_table(&t, 2, Weights::Linear).kappa));
        assert!(close(u, kappa_of_table(&t, 2, Weights::Quadratic).kappa));
    }

    #[test]
    fn quadratic_weights_by_hand() {
        // 3 categories; by hand: dis_obs = (1*.25*2 + 1*.25*1 + ... ) computed below.
        let t = [4.0, 1.0, 0.0, 2.0, 3.0, 1.0, 0.0, 1.0, 5.0];
        let k = 3;
        let n: f64 = t.iter().sum();
        let rows: Vec<f64> = (0..k).map(|i| (0..k).map(|j| t[i * k + j]).sum()).collect();
        let cols: Vec<f64> = (0..k).map(|j| (0..k).map(|i| t[i * k + j]).sum()).collect();
        let (mut o, mut e) = (0.0, 0.0);
        for i in 0..k {
            for j in 0..k {
                let w = ((i as f64 - j as f64) / 2.0).powi(2);
                o += w * t[i * k + j] / n;
                e += w * rows[i] * cols[j] / (n * n);
            }
        }
        assert!(close(kappa_of_table(&t, k, Weights::Quadratic).kappa, 1.0 - o / e));
    }

    #[test]
    fn matrix_bitset_and_direct_paths_agree_with_pairwise_kappa() {
        let m = 4;
        let n = 1000;
        for k in [3usize, 8] {
            let labels: Vec<i64> = (0..m * n)
                .map(|i| {
                    let v = ((i as u64).wrapping_mul(2654435761) >> 5) % (k as u64 + 1);
                    v as i64 - 1
                })
                .collect();
            let mat = kappa_matrix(&labels, m, n, Some(k), Weights::Linear).unwrap();
            for r in 0..m {
                for s in 0..m {
                    let (_, ag) = agreement(&labels[r * n..(r + 1) * n], &labels[s * n..(s + 1) * n], Some(k), Weights::Linear).unwrap();
                    assert!(close(mat[r * m + s], ag.kappa), "k={k} r={r} s={s}");
                }
            }
        }
    }
}
