//! Win rate of A over B (ties count half) with a bootstrap interval.

use super::bootstrap::Method;
use super::design::{ci, factors, Ci, Design, Scale};
use super::intervals::Clusters;
use crate::error::{check_non_empty, Error, ErrorKind, Result};

/// `outcomes`: 1 = A preferred, 0 = B preferred, 0.5 = tie. The interval is a
/// score interval on the rate with the design's standard error (`design.rs`).
pub fn win_rate_ci(
    outcomes: &[f64],
    clusters: Clusters,
    n_resamples: usize,
    level: f64,
    method: Method,
    seed: u64,
) -> Result<Ci> {
    check_non_empty(outcomes.len(), "outcomes")?;
    let mut codes = Vec::with_capacity(outcomes.len());
    for (i, &x) in outcomes.iter().enumerate() {
        codes.push(match x {
            v if v == 0.0 => 0u64,
            v if v == 0.5 => 1,
            v if v == 1.0 => 2,
            v if v.is_nan() => return Err(Error::new(ErrorKind::NaN, "outcomes", format!("contains NaN at index {i}"))),
            v => {
                return Err(Error::new(
                    ErrorKind::Category,
                    "outcomes",
                    format!("holds {v} at index {i}; use 1 (A wins), 0 (B wins) or 0.5 (tie)"),
                ))
            }
        });
    }
    let d = Design::new(&codes, factors(clusters, outcomes.len())?);
    let stat = |codes: &[u64], c: &[f64]| {
        let mut cells = [0.0; 3];
        for (&code, &x) in codes.iter().zip(c) {
            cells[code as usize] += x;
        }
        (cells[2] + 0.5 * cells[1]) / (cells[0] + cells[1] + cells[2])
    };
    ci(&d, &stat, &|_: &[u64], _: &[f64]| Scale::Rate, outcomes.len() as u64, n_resamples, level, method, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_counts_ties_half() {
        let o = [1.0, 1.0, 0.0, 0.5, 1.0, 0.5, 0.0, 1.0];
        let (est, lo, hi) = win_rate_ci(&o, &[], 500, 0.9, Method::Percentile, 0).unwrap().ends();
        assert_eq!(est, 5.0 / 8.0);
        assert!(lo <= est && est <= hi);
    }

    #[test]
    fn rejects_other_values() {
        assert_eq!(win_rate_ci(&[1.0, 0.3], &[], 10, 0.9, Method::Percentile, 0).unwrap_err().kind, ErrorKind::Category);
        assert_eq!(win_rate_ci(&[f64::NAN], &[], 10, 0.9, Method::Percentile, 0).unwrap_err().kind, ErrorKind::NaN);
    }
}
