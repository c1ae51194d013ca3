//! Calibration of survey weights to known margins by raking (iterative
//! proportional fitting, Deming & Stephan 1940).
//!
//! Each margin gives every record a category and every category a target
//! total. One sweep scales, margin after margin, the weights of each category
//! so that they add up to its target; sweeps repeat until every margin is met
//! within a relative tolerance or the iteration cap is reached. The result
//! keeps the records' joint structure (the odds ratios of the initial weights
//! within the cells the margins cross) and changes only what the margins force.
//!
//! Impossible input is an error naming the margin and category: a category
//! with a positive target but no record of positive weight can never be met.
//! Margins whose totals disagree (tables of slightly different universes) are
//! scaled to the first margin's total and the factors reported, since no
//! weights can meet two different totals at once. Margins that conflict in a
//! subtler way (no positive solution exists) do not converge: the cap stops
//! the loop and `converged` is false, with the error left.

use crate::error::{check_non_empty, check_same_len, Error, ErrorKind, Result};

/// One margin: a category per record and a target total per category.
#[derive(Clone, Copy, Debug)]
pub struct Margin<'a> {
    pub categories: &'a [i64],
    pub targets: &'a [f64],
}

/// Calibrated weights and how the fit ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Raked {
    pub weights: Vec<f64>,
    /// Full sweeps over all margins.
    pub iterations: usize,
    /// Largest |achieved - target| / target over all categories (a category
    /// with target 0 counts its achieved share of the total instead).
    pub max_rel_error: f64,
    pub converged: bool,
    /// Per margin, the factor its targets were multiplied by to match the
    /// first margin's total (1 when the totals agree).
    pub scales: Vec<f64>,
}

fn check_initial(w: &[f64]) -> Result<()> {
    check_non_empty(w.len(), "initial")?;
    if let Some((i, &x)) = w.iter().enumerate().find(|(_, x)| !(x.is_finite() && **x >= 0.0)) {
        let kind = if x.is_nan() { ErrorKind::NaN } else { ErrorKind::Weight };
        return Err(Error::new(kind, "initial", format!("holds {x} at row {i}; weights must be finite and non-negative")));
    }
    if !w.iter().any(|&x| x > 0.0) {
        return Err(Error::new(ErrorKind::Weight, "initial", "are all zero: there is nothing to calibrate"));
    }
    Ok(())
}

/// Checks one margin and returns its target total.
fn check_margin(m: usize, margin: &Margin, initial: &[f64]) -> Result<f64> {
    check_same_len(initial.len(), margin.categories.len(), "initial", "categories")
        .map_err(|e| Error::new(e.kind, "categories", format!("of margin {m} {}", e.message)))?;
    let k = margin.targets.len();
    if k == 0 {
        return Err(Error::new(ErrorKind::Empty, "targets", format!("of margin {m} are empty: a margin needs at least one category")));
    }
    if let Some((c, &t)) = margin.targets.iter().enumerate().find(|(_, t)| !(t.is_finite() && **t >= 0.0)) {
        let kind = if t.is_nan() { ErrorKind::NaN } else { ErrorKind::InvalidArgument };
        return Err(Error::new(kind, "targets", format!("of margin {m} hold {t} for category {c}; targets must be finite and non-negative")));
    }
    let mut present = vec![0.0f64; k];
    for (i, &c) in margin.categories.iter().enumerate() {
        if c < 0 || c as usize >= k {
            return Err(Error::new(
                ErrorKind::Category,
                "categories",
                format!("of margin {m} hold {c} at row {i}, but the margin has {k} categories (0..{})", k - 1),
            ));
        }
        present[c as usize] += initial[i];
    }
    if let Some(c) = (0..k).find(|&c| margin.targets[c] > 0.0 && present[c] <= 0.0) {
        return Err(Error::new(
            ErrorKind::Data,
            "targets",
            format!(
                "of margin {m} ask {} for category {c}, which no record of positive weight belongs to; \
                 merge that category with a neighbour or give it target 0",
                margin.targets[c]
            ),
        ));
    }
    let total: f64 = margin.targets.iter().sum();
    if total <= 0.0 {
        return Err(Error::new(ErrorKind::InvalidArgument, "targets", format!("of margin {m} add up to 0; a margin needs a positive total")));
    }
    Ok(total)
}

fn totals(w: &[f64], categories: &[i64], k: usize) -> Vec<f64> {
    let mut t = vec![0.0f64; k];
    for (&x, &c) in w.iter().zip(categories) {
        t[c as usize] += x;
    }
    t
}

fn max_rel_error(w: &[f64], margins: &[Margin], targets: &[Vec<f64>], total: f64) -> f64 {
    let mut worst = 0.0f64;
    for (margin, target) in margins.iter().zip(targets) {
        let achieved = totals(w, margin.categories, target.len());
        for (&a, &t) in achieved.iter().zip(target) {
            let e = if t > 0.0 { (a - t).abs() / t } else { a / total };
            worst = worst.max(e);
        }
    }
    worst
}

/// Rakes `initial` weights to `margins` (see the module docs): sweeps until
/// the largest relative error is at most `tolerance`, at most `max_iterations`.
pub fn rake(initial: &[f64], margins: &[Margin], tolerance: f64, max_iterations: usize) -> Result<Raked> {
    check_initial(initial)?;
    check_non_empty(margins.len(), "margins")?;
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(Error::new(ErrorKind::InvalidArgument, "tolerance", format!("is {tolerance}; it must be a positive number such as 1e-8")));
    }
    if max_iterations == 0 {
        return Err(Error::new(ErrorKind::InvalidArgument, "max_iterations", "is 0; at least one sweep is needed"));
    }
    let sums = margins.iter().enumerate().map(|(m, margin)| check_margin(m, margin, initial)).collect::<Result<Vec<f64>>>()?;
    let total = sums[0];
    let scales: Vec<f64> = sums.iter().map(|s| total / s).collect();
    let targets: Vec<Vec<f64>> = margins.iter().zip(&scales).map(|(m, s)| m.targets.iter().map(|t| t * s).collect()).collect();

    let mut w = initial.to_vec();
    let mut error = f64::INFINITY;
    let mut iterations = 0;
    while iterations < max_iterations {
        iterations += 1;
        for (m, (margin, target)) in margins.iter().zip(&targets).enumerate() {
            let current = totals(&w, margin.categories, target.len());
            let mut factor = vec![1.0f64; target.len()];
            for c in 0..target.len() {
                if current[c] > 0.0 {
                    factor[c] = target[c] / current[c];
                } else if target[c] > 0.0 {
                    // The records of this category were zeroed by target-0 categories of other margins.
                    return Err(Error::new(
                        ErrorKind::Data,
                        "targets",
                        format!(
                            "of margin {m} ask {} for category {c}, but every record of that category lies in a \
                             category of another margin whose target is 0; the margins contradict each other",
                            target[c]
                        ),
                    ));
                }
            }
            for (x, &c) in w.iter_mut().zip(margin.categories) {
                *x *= factor[c as usize];
            }
        }
        error = max_rel_error(&w, margins, &targets, total);
        if error <= tolerance {
            break;
        }
    }
    Ok(Raked { weights: w, iterations, max_rel_error: error, converged: error <= tolerance, scales })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of a two-way table, one per cell, weighted by the cell's count.
    fn table(cells: &[&[f64]]) -> (Vec<f64>, Vec<i64>, Vec<i64>) {
        let (mut w, mut rows, mut cols) = (vec![], vec![], vec![]);
        for (i, row) in cells.iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                w.push(x);
                rows.push(i as i64);
                cols.push(j as i64);
            }
        }
        (w, rows, cols)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn uniform_seed_gives_the_product_of_the_margins_in_one_sweep() {
        // Textbook case: with no interaction in the seed, the fit is r_i * c_j / N.
        let (w, rows, cols) = table(&[&[1.0, 1.0], &[1.0, 1.0]]);
        let (r, c) = ([30.0, 70.0], [40.0, 60.0]);
        let out = rake(&w, &[Margin { categories: &rows, targets: &r }, Margin { categories: &cols, targets: &c }], 1e-12, 50).unwrap();
        let expected = [12.0, 18.0, 28.0, 42.0];
        for (got, want) in out.weights.iter().zip(expected) {
            assert!(close(*got, want, 1e-12), "{:?}", out.weights);
        }
        assert_eq!(out.iterations, 1);
        assert!(out.converged && out.scales == vec![1.0, 1.0]);
    }

    #[test]
    fn two_by_two_fit_keeps_the_odds_ratio_as_solved_by_hand() {
        // Seed [[1, 2], [3, 4]] (odds ratio 4/6 = 2/3), rows [40, 60], columns [50, 50].
        // The fitted table has those margins and the same odds ratio, so its first cell x solves
        //   x (x + 10) / ((40 - x)(50 - x)) = 2/3  <=>  x^2 + 210 x - 4000 = 0,
        // x = (-210 + sqrt(60100)) / 2 = 17.5766..., and the other cells follow from the margins.
        let (w, rows, cols) = table(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let (r, c) = ([40.0, 60.0], [50.0, 50.0]);
        let out = rake(&w, &[Margin { categories: &rows, targets: &r }, Margin { categories: &cols, targets: &c }], 1e-13, 1000).unwrap();
        let x = (-210.0 + 60100f64.sqrt()) / 2.0;
        let expected = [x, 40.0 - x, 50.0 - x, 10.0 + x];
        for (got, want) in out.weights.iter().zip(expected) {
            assert!(close(*got, want, 1e-10), "{got} vs {want}");
        }
        let odds = out.weights[0] * out.weights[3] / (out.weights[1] * out.weights[2]);
        assert!(close(odds, 2.0 / 3.0, 1e-10));
        assert!(out.converged && out.iterations > 1 && out.max_rel_error <= 1e-13);
    }

    #[test]
    fn three_margins_over_records_are_all_met() {
        // 2 x 3 x 2 records with uneven initial weights, three one-way margins.
        let mut w = vec![];
        let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    w.push(1.0 + (i * 7 + j * 3 + k * 5) as f64 % 4.0);
                    a.push(i as i64);
                    b.push(j as i64);
                    c.push(k as i64);
                }
            }
        }
        let (ta, tb, tc) = ([600.0, 400.0], [100.0, 300.0, 600.0], [550.0, 450.0]);
        let margins = [
            Margin { categories: &a, targets: &ta },
            Margin { categories: &b, targets: &tb },
            Margin { categories: &c, targets: &tc },
        ];
        let out = rake(&w, &margins, 1e-12, 1000).unwrap();
        assert!(out.converged);
        for m in &margins {
            let got = totals(&out.weights, m.categories, m.targets.len());
            for (g, t) in got.iter().zip(m.targets) {
                assert!(close(*g, *t, 1e-10), "{got:?} vs {:?}", m.targets);
            }
        }
    }

    #[test]
    fn disagreeing_totals_are_scaled_and_reported() {
        let (w, rows, cols) = table(&[&[1.0, 1.0], &[1.0, 1.0]]);
        let (r, c) = ([30.0, 70.0], [80.0, 120.0]); // second total 200, twice the first
        let out = rake(&w, &[Margin { categories: &rows, targets: &r }, Margin { categories: &cols, targets: &c }], 1e-12, 50).unwrap();
        assert_eq!(out.scales, vec![1.0, 0.5]);
        assert!(close(out.weights.iter().sum::<f64>(), 100.0, 1e-12));
        assert!(close(out.weights[0] + out.weights[2], 40.0, 1e-12));
    }

    #[test]
    fn a_zero_target_zeroes_its_records() {
        let (w, rows, cols) = table(&[&[1.0, 1.0], &[1.0, 1.0]]);
        let (r, c) = ([0.0, 10.0], [4.0, 6.0]);
        let out = rake(&w, &[Margin { categories: &rows, targets: &r }, Margin { categories: &cols, targets: &c }], 1e-12, 50).unwrap();
        assert_eq!(&out.weights[..2], &[0.0, 0.0]);
        assert!(close(out.weights[2], 4.0, 1e-12) && close(out.weights[3], 6.0, 1e-12));
    }

    #[test]
    fn a_target_without_records_is_an_error_naming_margin_and_category() {
        let w = [1.0, 1.0, 0.0];
        let cats = [0i64, 0, 1]; // category 1 holds only a record of weight 0
        let e = rake(&w, &[Margin { categories: &cats, targets: &[5.0, 5.0] }], 1e-9, 10).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Data);
        assert!(e.message.contains("margin 0") && e.message.contains("category 1"), "{}", e.message);
    }

    #[test]
    fn contradictory_margins_through_zero_targets_are_an_error() {
        // Category 1 of the second margin holds only records that the first margin sets to 0.
        let w = [1.0, 1.0, 1.0];
        let a = [0i64, 1, 1];
        let b = [0i64, 1, 1];
        let e = rake(&w, &[Margin { categories: &a, targets: &[5.0, 0.0] }, Margin { categories: &b, targets: &[2.0, 3.0] }], 1e-9, 10)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Data);
        assert!(e.message.contains("margin 1") && e.message.contains("contradict"), "{}", e.message);
    }

    #[test]
    fn the_cap_stops_a_slow_fit_and_says_so() {
        let (w, rows, cols) = table(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let (r, c) = ([40.0, 60.0], [50.0, 50.0]);
        let m = [Margin { categories: &rows, targets: &r }, Margin { categories: &cols, targets: &c }];
        let out = rake(&w, &m, 1e-14, 1).unwrap();
        assert_eq!(out.iterations, 1);
        assert!(!out.converged && out.max_rel_error > 1e-14);
        let longer = rake(&w, &m, 1e-14, 2).unwrap();
        assert!(longer.max_rel_error < out.max_rel_error);
    }

    #[test]
    fn bad_input_is_named() {
        let cats = [0i64, 1];
        let t = [1.0, 1.0];
        let ok = Margin { categories: &cats, targets: &t };
        assert_eq!(rake(&[], &[ok], 1e-9, 10).unwrap_err().kind, ErrorKind::Empty);
        assert_eq!(rake(&[1.0, -1.0], &[ok], 1e-9, 10).unwrap_err().kind, ErrorKind::Weight);
        assert_eq!(rake(&[1.0, f64::NAN], &[ok], 1e-9, 10).unwrap_err().kind, ErrorKind::NaN);
        assert_eq!(rake(&[0.0, 0.0], &[ok], 1e-9, 10).unwrap_err().kind, ErrorKind::Weight);
        assert_eq!(rake(&[1.0, 1.0], &[], 1e-9, 10).unwrap_err().arg, "margins");
        assert_eq!(rake(&[1.0, 1.0], &[ok], 0.0, 10).unwrap_err().arg, "tolerance");
        assert_eq!(rake(&[1.0, 1.0], &[ok], 1e-9, 0).unwrap_err().arg, "max_iterations");
        let short = Margin { categories: &cats[..1], targets: &t };
        assert_eq!(rake(&[1.0, 1.0], &[short], 1e-9, 10).unwrap_err().kind, ErrorKind::LengthMismatch);
        let outside = [0i64, 2];
        let e = rake(&[1.0, 1.0], &[Margin { categories: &outside, targets: &t }], 1e-9, 10).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Category);
        assert!(e.message.contains("row 1"), "{}", e.message);
        let negative = [1.0, -2.0];
        assert_eq!(rake(&[1.0, 1.0], &[Margin { categories: &cats, targets: &negative }], 1e-9, 10).unwrap_err().arg, "targets");
    }
}
