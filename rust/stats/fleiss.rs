//! Fleiss' kappa for many raters (items x categories table of rater counts).

use crate::error::{check_non_empty, Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleissMethod {
    /// Chance agreement from the pooled category proportions (Fleiss 1971).
    Fleiss,
    /// Free-marginal chance agreement 1/k (Randolph 2005).
    Randolph,
}

impl FleissMethod {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "fleiss" => Ok(FleissMethod::Fleiss),
            "randolph" => Ok(FleissMethod::Randolph),
            other => Err(Error::new(ErrorKind::InvalidArgument, "method", format!("is {other:?}; use \"fleiss\" or \"randolph\""))),
        }
    }
}

/// Fleiss' kappa of `counts` (`items x k`, row-major). Every item must have the
/// same number of raters, at least two.
pub fn fleiss_kappa(counts: &[f64], items: usize, k: usize, method: FleissMethod) -> Result<f64> {
    check_non_empty(items * k, "counts")?;
    if let Some(pos) = counts.iter().position(|c| c.is_nan()) {
        return Err(Error::new(ErrorKind::NaN, "counts", format!("contains NaN at item {}, category {}", pos / k, pos % k)));
    }
    if let Some(pos) = counts.iter().position(|&c| c < 0.0 || c.fract() != 0.0 || !c.is_finite()) {
        return Err(Error::new(
            ErrorKind::Data,
            "counts",
            format!("holds {} at item {}, category {}; counts must be non-negative integers", counts[pos], pos / k, pos % k),
        ));
    }
    let raters: f64 = counts[..k].iter().sum();
    for (i, row) in counts.chunks_exact(k).enumerate() {
        let r: f64 = row.iter().sum();
        if r != raters {
            return Err(Error::new(
                ErrorKind::Data,
                "counts",
                format!("has {raters} ratings on item 0 but {r} on item {i}; Fleiss' kappa needs the same number of raters per item"),
            ));
        }
    }
    if raters < 2.0 {
        return Err(Error::new(ErrorKind::Data, "counts", "needs at least 2 raters per item"));
    }
    let n = items as f64;
    let mut p_cat = vec![0.0; k];
    let mut p_bar = 0.0;
    for row in counts.chunks_exact(k) {
        let mut sq = 0.0;
        for (j, &c) in row.iter().enumerate() {
            p_cat[j] += c;
            sq += c * c;
        }
        p_bar += (sq - raters) / (raters * (raters - 1.0));
    }
    p_bar /= n;
    let p_e = match method {
        FleissMethod::Fleiss => p_cat.iter().map(|&s| (s / (n * raters)).powi(2)).sum(),
        FleissMethod::Randolph => 1.0 / k as f64,
    };
    Ok((p_bar - p_e) / (1.0 - p_e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 10 subjects x 14 raters x 5 categories example reproduced in many
    /// textbooks and encyclopedias from Fleiss (1971): kappa = 0.210.
    #[test]
    fn worked_example_ten_subjects() {
        let t: [[f64; 5]; 10] = [
            [0., 0., 0., 0., 14.],
            [0., 2., 6., 4., 2.],
            [0., 0., 3., 5., 6.],
            [0., 3., 9., 2., 0.],
            [2., 2., 8., 1., 1.],
            [7., 7., 0., 0., 0.],
            [3., 2., 6., 3., 0.],
            [2., 5., 3., 2., 2.],
            [6., 5., 2., 1., 0.],
            [0., 2., 2., 3., 7.],
        ];
        let flat: Vec<f64> = t.iter().flatten().copied().collect();
        let kappa = fleiss_kappa(&flat, 10, 5, FleissMethod::Fleiss).unwrap();
        assert!((kappa - 0.20993).abs() < 1e-4, "{kappa}");
    }

    #[test]
    fn unequal_raters_is_an_error() {
        let e = fleiss_kappa(&[1., 1., 2., 1.], 2, 2, FleissMethod::Fleiss).unwrap_err();
        assert_eq!(e.arg, "counts");
    }
}
