//! Confidence intervals that follow the design: items, one factor of clusters
//! (personas), or two crossed factors (personas x questions).
//!
//! **Crossed designs.** Every persona answers the same questions, so both are
//! random samples and an estimate varies with each. Resampling only personas
//! ignores the questions; the plain product ("pigeonhole") bootstrap that
//! resamples both counts the cell-level variance three times (McCullagh 2000,
//! "Resampling and exchangeable arrays", Bernoulli 6; Owen 2007, "The
//! pigeonhole bootstrap", Ann. Appl. Stat. 1). For a mean over R x C cells with
//! persona, question and cell variances s_a, s_b, s_e the bootstrap variances
//! are, to first order, V_1 = s_a/R + s_e/RC (personas resampled),
//! V_2 = s_b/C + s_e/RC (questions resampled) and V_12 = s_a/R + s_b/C + 3 s_e/RC
//! (both), so V = 2 (V_1 + V_2) - V_12 = s_a/R + s_b/C + s_e/RC is the variance
//! wanted. It is the bootstrap form of the two-way cluster-robust variance
//! V_1 + V_2 - V_cell (Cameron, Gelbach & Miller 2011). As the true V lies
//! between max(V_1, V_2) and V_1 + V_2, the estimate is clamped to that range
//! (which also keeps it positive). When the product resamples would cost more
//! than `PRODUCT_BUDGET` (about 10^5 distinct cells at 1000 resamples) the
//! three variances are taken to first order instead (`linearized`): the same
//! quantities without Monte-Carlo error, in one pass over the cells.
//!
//! **The interval.** A normal interval from the bootstrap standard error, with
//! a Student t quantile whose degrees of freedom come from the number of
//! clusters (Satterthwaite's approximation for the crossed sum, G - 1 for one
//! factor), because a variance from 20 questions is itself uncertain. Rates,
//! means of [0, 1] values (`mean.rs`) and kappa use a score (Wilson 1927)
//! interval on the [0, 1] scale of the rate or mean, or of kappa's observed
//! disagreement D_o (kappa = 1 - D_o / D_e, D_e held at
//! its estimate), with the effective sample size u (1 - u) / se_u^2 implied by
//! the design's standard error. Near 0 or 1 that interval stays inside the
//! range and keeps its width, where a normal or percentile interval collapses.
//!
//! **No degenerate intervals.** When every resample gives the same value (all
//! judgments agree, every outcome a tie) the data show no spread, not the
//! absence of uncertainty: the interval then uses the largest variance a [0, 1]
//! outcome with that mean can have, u (1 - u), over the smallest number of
//! independent units (items, or the levels of the smallest factor), and says so.

use rand::RngCore;
use rayon::prelude::*;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::bootstrap::{check_params, dense_ids, interval, jackknife, resample, Method, Tables};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::{below, stream};

/// Fewest levels a resampled factor may have: with 4 the bootstrap has at most
/// 35 distinct resamples and its variance 3 degrees of freedom, too few for a
/// 95% interval to mean what it says.
pub const MIN_LEVELS: usize = 5;
/// Below this many levels the interval is given with a warning.
pub const FEW_LEVELS: usize = 10;
/// Below this many items (item bootstrap) the interval is given with a warning.
pub const FEW_ITEMS: u64 = 20;

/// One resampled factor: a dense id per item and a name for messages.
#[derive(Debug, Clone)]
pub struct Factor {
    pub ids: Vec<u32>,
    pub levels: usize,
    pub name: String,
}

impl Factor {
    pub fn new(ids: &[i64], n_items: usize, name: &str) -> Result<Factor> {
        let (ids, levels) = dense_ids(ids, n_items)?;
        Ok(Factor { ids, levels, name: name.to_string() })
    }
}

/// Builds the factors of a design from 0, 1 or 2 id arrays.
pub fn factors(clusters: &[(&[i64], &str)], n_items: usize) -> Result<Vec<Factor>> {
    if clusters.len() > 2 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "clusters",
            format!("has {} id arrays; give one (e.g. personas) or two crossed factors (personas, questions)", clusters.len()),
        ));
    }
    clusters.iter().map(|&(ids, name)| Factor::new(ids, n_items, name)).collect()
}

/// The non-empty (factor 1, factor 2) cells with their sparse tables.
#[derive(Debug, Clone)]
pub struct Cells {
    pub g1: Vec<u32>,
    pub g2: Vec<u32>,
    /// Entries of cell c are `start[c]..start[c + 1]`.
    pub start: Vec<usize>,
    /// Index into `used` and mass (item count, or for a mean the count or
    /// the sum of values) of each entry.
    pub entries: Vec<(u32, f64)>,
}

/// Dense (factor 1, factor 2) cell id per item, with each cell's two levels.
fn cell_ids(f1: &Factor, f2: &Factor) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let keys: Vec<i64> = f1.ids.iter().zip(&f2.ids).map(|(&a, &b)| a as i64 * f2.levels as i64 + b as i64).collect();
    let (cell, n_cells) = dense_ids(&keys, keys.len()).expect("one key per item");
    let (mut g1, mut g2) = (vec![0u32; n_cells], vec![0u32; n_cells]);
    for (i, &c) in cell.iter().enumerate() {
        g1[c as usize] = f1.ids[i];
        g2[c as usize] = f2.ids[i];
    }
    (cell, g1, g2)
}

impl Cells {
    fn new(slots: &[u32], f1: &Factor, f2: &Factor) -> Cells {
        let (cell, g1, g2) = cell_ids(f1, f2);
        let n_cells = g1.len();
        let mut start = vec![0usize; n_cells + 1];
        for &c in &cell {
            start[c as usize + 1] += 1;
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        // Counting sort of the items by cell, then run lengths of each cell's slots.
        let mut next = start.clone();
        let mut sorted = vec![0u32; slots.len()];
        for (&c, &s) in cell.iter().zip(slots) {
            sorted[next[c as usize]] = s;
            next[c as usize] += 1;
        }
        let mut entries = Vec::new();
        let mut out_start = vec![0usize; n_cells + 1];
        for c in 0..n_cells {
            let part = &mut sorted[start[c]..start[c + 1]];
            part.sort_unstable();
            for run in part.chunk_by(|x, y| x == y) {
                entries.push((run[0], run.len() as f64));
            }
            out_start[c + 1] = entries.len();
        }
        Cells { g1, g2, start: out_start, entries }
    }

    /// The cells of a mean: each holds (slot 0, item count), (slot 1, sum of values).
    fn of_values(values: &[f64], f1: &Factor, f2: &Factor) -> Cells {
        let (cell, g1, g2) = cell_ids(f1, f2);
        let mut entries: Vec<(u32, f64)> = (0..g1.len()).flat_map(|_| [(0, 0.0), (1, 0.0)]).collect();
        for (&c, &y) in cell.iter().zip(values) {
            entries[2 * c as usize].1 += 1.0;
            entries[2 * c as usize + 1].1 += y;
        }
        Cells { start: (0..=g1.len()).map(|c| 2 * c).collect(), g1, g2, entries }
    }
}

/// Sufficient statistics of a design: what each resampling scheme draws from.
/// (One is built per call, so the variants' sizes do not matter.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Design {
    Item(Tables),
    Cluster(Tables, Factor),
    Crossed { by: [Tables; 2], factors: [Factor; 2], cells: Cells },
}

impl Design {
    /// `codes`: one cell code per item (e.g. its pair of labels).
    pub fn new(codes: &[u64], factors: Vec<Factor>) -> Design {
        let mut factors = factors.into_iter();
        match (factors.next(), factors.next()) {
            (None, _) => Design::Item(Tables::new(codes, None)),
            (Some(f), None) => Design::Cluster(Tables::new(codes, Some((&f.ids, f.levels))), f),
            (Some(f1), Some(f2)) => {
                let t1 = Tables::new(codes, Some((&f1.ids, f1.levels)));
                let t2 = Tables::new(codes, Some((&f2.ids, f2.levels)));
                let slot = |c: u64| t1.used.binary_search(&c).expect("code is used") as u32;
                let slots: Vec<u32> = codes.iter().map(|&c| slot(c)).collect();
                let cells = Cells::new(&slots, &f1, &f2);
                Design::Crossed { by: [t1, t2], factors: [f1, f2], cells }
            }
        }
    }

    /// The design of the mean of real `values` (see `Tables::of_values`): the
    /// same resampling schemes as for counts, on per-unit sums and counts.
    pub fn of_values(values: &[f64], factors: Vec<Factor>) -> Design {
        let mut factors = factors.into_iter();
        match (factors.next(), factors.next()) {
            (None, _) => Design::Item(Tables::of_values(values, None)),
            (Some(f), None) => Design::Cluster(Tables::of_values(values, Some((&f.ids, f.levels))), f),
            (Some(f1), Some(f2)) => {
                let by = [&f1, &f2].map(|f| Tables::of_values(values, Some((&f.ids, f.levels))));
                let cells = Cells::of_values(values, &f1, &f2);
                Design::Crossed { by, factors: [f1, f2], cells }
            }
        }
    }

    fn tables(&self) -> &Tables {
        match self {
            Design::Item(t) | Design::Cluster(t, _) => t,
            Design::Crossed { by, .. } => &by[0],
        }
    }

    pub fn used(&self) -> &[u64] {
        &self.tables().used
    }

    pub fn total(&self) -> Vec<f64> {
        self.tables().total()
    }

    fn factors(&self) -> Vec<&Factor> {
        match self {
            Design::Item(_) => vec![],
            Design::Cluster(_, f) => vec![f],
            Design::Crossed { factors, .. } => factors.iter().collect(),
        }
    }

    /// Number of levels resampled per factor (empty for the item bootstrap).
    pub fn units(&self) -> Vec<usize> {
        self.factors().iter().map(|f| f.levels).collect()
    }

    /// The one-scheme bootstrap distribution (items or one factor).
    pub fn one_way(&self) -> Option<&Tables> {
        match self {
            Design::Item(t) | Design::Cluster(t, _) => Some(t),
            Design::Crossed { .. } => None,
        }
    }
}

/// How many times each of `n` units is drawn in one resample.
fn draw_counts(rng: &mut impl RngCore, n: usize) -> Vec<u64> {
    let mut w = vec![0u64; n];
    for _ in 0..n {
        w[below(rng.next_u64(), n as u64) as usize] += 1;
    }
    w
}

/// Product ("pigeonhole") resamples: both factors' levels drawn independently,
/// cell (i, j) weighted by the product of their counts.
pub fn resample_product<F>(used: &[u64], cells: &Cells, levels: [usize; 2], stat: &F, n_resamples: usize, seed: u64) -> Vec<f64>
where
    F: Fn(&[u64], &[f64]) -> f64 + Sync,
{
    (0..n_resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = stream(seed, b as u64);
            let (w1, w2) = (draw_counts(&mut rng, levels[0]), draw_counts(&mut rng, levels[1]));
            let mut acc = vec![0.0f64; used.len()];
            for c in 0..cells.g1.len() {
                let w = w1[cells.g1[c] as usize] * w2[cells.g2[c] as usize];
                if w > 0 {
                    for &(slot, mass) in &cells.entries[cells.start[c]..cells.start[c + 1]] {
                        acc[slot as usize] += w as f64 * mass;
                    }
                }
            }
            stat(used, &acc)
        })
        .collect()
}

/// Largest product-bootstrap work (resamples x cell entries) done by
/// resampling: about 0.1 s. Beyond it (say 10^5 distinct persona x question
/// cells at 1000 resamples) the three variances are taken to first order.
pub const PRODUCT_BUDGET: f64 = 5e7;

/// First-order (delta-method) values of the three bootstrap variances, exact
/// for a rate over a balanced grid and what the resamples estimate for large
/// designs. With the statistic's gradient psi per cell code (central
/// differences; it sums to 0 over the table since kappa and rates do not
/// change when all counts are scaled), S_c = sum of psi over cell c's items,
/// R_i and C_j its sums per level of each factor:
/// V_1 = sum R_i^2, V_2 = sum C_j^2 and, as the two factors' draw counts are
/// independent multinomials, V_12 = sum S_c^2 + (1 - 1/I) sum C_j^2 + (1 - 1/J) sum R_i^2.
pub fn linearized<F>(used: &[u64], total: &[f64], cells: &Cells, levels: [usize; 2], stat: &F) -> (f64, f64, f64)
where
    F: Fn(&[u64], &[f64]) -> f64 + Sync,
{
    let n: f64 = total.iter().sum();
    let h = 1e-4 * n;
    let mut psi: Vec<f64> = (0..used.len())
        .map(|j| {
            let (mut up, mut down) = (total.to_vec(), total.to_vec());
            up[j] += h;
            down[j] -= h;
            (stat(used, &up) - stat(used, &down)) / (2.0 * h)
        })
        .collect();
    let centre = psi.iter().zip(total).map(|(p, t)| p * t).sum::<f64>() / n;
    psi.iter_mut().for_each(|p| *p -= centre);
    let (mut rows, mut cols, mut cell2) = (vec![0.0; levels[0]], vec![0.0; levels[1]], 0.0);
    for c in 0..cells.g1.len() {
        let s: f64 = cells.entries[cells.start[c]..cells.start[c + 1]].iter().map(|&(slot, k)| k * psi[slot as usize]).sum();
        rows[cells.g1[c] as usize] += s;
        cols[cells.g2[c] as usize] += s;
        cell2 += s * s;
    }
    let (r2, c2) = (rows.iter().map(|x| x * x).sum::<f64>(), cols.iter().map(|x| x * x).sum::<f64>());
    let (i, j) = (levels[0] as f64, levels[1] as f64);
    (r2, c2, cell2 + (1.0 - 1.0 / i) * c2 + (1.0 - 1.0 / j) * r2)
}

/// Variance of the finite values and the number of undefined (NaN) ones.
fn finite_var(x: &[f64]) -> (f64, usize) {
    let v: Vec<f64> = x.iter().copied().filter(|x| x.is_finite()).collect();
    let undefined = x.len() - v.len();
    if v.len() < 2 {
        return (f64::NAN, undefined);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64, undefined)
}

/// How the interval of a statistic is put on a bounded scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// A rate in [0, 1]: Wilson interval on the rate.
    Rate,
    /// A mean of values in [0, 1] (a score such as ROUGE): the same interval
    /// as a rate, since such values have at most the variance u (1 - u) of 0/1
    /// outcomes with their mean u, the bound the score interval is built on.
    Mean,
    /// Kappa = 1 - D_o / D_e: Wilson interval on the observed disagreement D_o.
    Kappa { chance_disagreement: f64 },
    /// A difference of two kappas: normal interval. `sides` holds each kappa's
    /// (D_o, D_e), for the worst-case spread when no resample differs.
    Difference { sides: [(f64, f64); 2] },
}

impl Scale {
    /// The [0, 1] value the score interval works on, and the factor d u / d theta.
    fn unit(self, theta: f64) -> Option<(f64, f64)> {
        match self {
            Scale::Rate | Scale::Mean => Some((theta, 1.0)),
            Scale::Kappa { chance_disagreement: de } => Some(((1.0 - theta) * de, de)),
            Scale::Difference { .. } => None,
        }
    }

    fn back(self, u: f64) -> f64 {
        match self {
            Scale::Kappa { chance_disagreement: de } => 1.0 - u / de,
            _ => u,
        }
    }
}

/// Wilson's score interval for a proportion `u` over `n` units with quantile `q`.
pub fn wilson(u: f64, n: f64, q: f64) -> (f64, f64) {
    let q2 = q * q;
    let den = 1.0 + q2 / n;
    let centre = (u + q2 / (2.0 * n)) / den;
    let half = q / den * (u * (1.0 - u) / n + q2 / (4.0 * n * n)).sqrt();
    // At u = 0 or 1 one end is exactly the bound (rounding would move it).
    let lo = if u <= 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if u >= 1.0 { 1.0 } else { (centre + half).min(1.0) };
    (lo, hi)
}

/// The standard error a Wilson interval over `n` units implies at `u`
/// (at the interval's centre, so it is positive even at u = 0 or 1).
pub fn wilson_se(u: f64, n: f64, q: f64) -> f64 {
    let centre = (u + q * q / (2.0 * n)) / (1.0 + q * q / n);
    (centre * (1.0 - centre) / n).sqrt()
}

/// An interval with what it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Ci {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// The standard error the interval is based on (NaN for none).
    pub se: f64,
    pub method: String,
    pub units: Vec<usize>,
    /// Items used.
    pub n: u64,
    /// Resamples whose statistic was undefined.
    pub undefined: usize,
    pub n_resamples: usize,
    pub warnings: Vec<String>,
}

impl Ci {
    pub fn ends(&self) -> (f64, f64, f64) {
        (self.estimate, self.low, self.high)
    }
}

fn design_name(d: &Design) -> &'static str {
    match d {
        Design::Item(_) => "item",
        Design::Cluster(..) => "cluster",
        Design::Crossed { .. } => "crossed",
    }
}

/// The smallest number of independent units: the fallback sample size.
fn min_units(d: &Design, n: u64) -> f64 {
    d.units().into_iter().min().map_or(n as f64, |g| g as f64)
}

/// Estimate and interval of `stat` under the design. `scale` maps the total
/// table to the scale of the score interval; `n` is the number of items used.
#[allow(clippy::too_many_arguments)]
pub fn ci<F, S>(d: &Design, stat: &F, scale: &S, n: u64, n_resamples: usize, level: f64, method: Method, seed: u64) -> Result<Ci>
where
    F: Fn(&[u64], &[f64]) -> f64 + Sync,
    S: Fn(&[u64], &[f64]) -> Scale,
{
    check_params(n_resamples, level)?;
    if matches!(d, Design::Crossed { .. }) && method != Method::Auto {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "method",
            format!("is {:?}; a crossed design has no single bootstrap distribution to take quantiles of: use \"auto\"", method.name()),
        ));
    }
    let total = d.total();
    let estimate = stat(d.used(), &total);
    let mut out = Ci {
        estimate,
        low: f64::NAN,
        high: f64::NAN,
        se: f64::NAN,
        method: format!("{}-{}", design_name(d), method.name()),
        units: d.units(),
        n,
        undefined: 0,
        n_resamples,
        warnings: Vec::new(),
    };
    if let Some(f) = d.factors().into_iter().find(|f| f.levels < MIN_LEVELS) {
        out.warnings.push(format!("only {} {}: too few for a bootstrap interval (at least {MIN_LEVELS} are needed)", f.levels, f.name));
        return Ok(out);
    }
    if !estimate.is_finite() {
        out.warnings.push(if n == 0 { "no items: nothing to estimate".into() } else { "the statistic is undefined on these data".into() });
        return Ok(out);
    }
    for f in d.factors() {
        if f.levels < FEW_LEVELS {
            out.warnings.push(format!("only {} {}: the interval rests on few clusters", f.levels, f.name));
        }
    }
    if d.units().is_empty() && n < FEW_ITEMS {
        out.warnings.push(format!("only {n} items: the interval rests on few items"));
    }
    let alpha = (1.0 - level) / 2.0;
    // Variance of the estimate and its degrees of freedom.
    let (var, df, pct) = match d {
        Design::Crossed { by, factors, cells } => {
            let levels = [factors[0].levels, factors[1].levels];
            let (v1, v2, v12) = if n_resamples as f64 * cells.entries.len() as f64 <= PRODUCT_BUDGET {
                let schemes = [0u64, 1, 2].map(|s| seed ^ s.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let (v1, u1) = finite_var(&resample(&by[0], stat, n_resamples, schemes[0]));
                let (v2, u2) = finite_var(&resample(&by[1], stat, n_resamples, schemes[1]));
                let (v12, u12) = finite_var(&resample_product(&by[0].used, cells, levels, stat, n_resamples, schemes[2]));
                out.undefined = u1 + u2 + u12;
                out.n_resamples = 3 * n_resamples;
                (v1, v2, v12)
            } else {
                out.n_resamples = 0;
                linearized(&by[0].used, &total, cells, levels, stat)
            };
            let v = (2.0 * (v1 + v2) - v12).clamp(v1.max(v2), v1 + v2);
            // Satterthwaite: V_1 and V_2 carry (levels - 1) degrees of freedom each.
            let df = (v1 + v2).powi(2) / (v1 * v1 / (levels[0] - 1) as f64 + v2 * v2 / (levels[1] - 1) as f64);
            (v, df, None)
        }
        Design::Item(t) | Design::Cluster(t, _) => {
            let boot = resample(t, stat, n_resamples, seed);
            let (v, undefined) = finite_var(&boot);
            out.undefined = undefined;
            let df = d.units().first().map_or(n as f64 - 1.0, |&g| (g - 1) as f64);
            let pct = (method != Method::Auto).then(|| {
                let jack = if method == Method::Bca { jackknife(t, stat) } else { Vec::new() };
                interval(estimate, &boot, &jack, level, method)
            });
            (v, df, pct)
        }
    };
    if out.undefined > 0 {
        out.warnings.push(format!(
            "{} of {} resamples had an undefined statistic and were left out",
            out.undefined, out.n_resamples
        ));
    }
    out.se = var.sqrt();
    if let Some((lo, hi)) = pct {
        if lo < hi {
            (out.low, out.high) = (lo, hi);
            return Ok(out);
        }
        out.warnings.push(format!("the {} interval had zero width; a score interval is given instead", method.name()));
    }
    // No spread at all (V_1 = V_2 = 0): the smallest factor's degrees of freedom.
    let df = if df.is_finite() { df } else { min_units(d, n) - 1.0 };
    let q = if df > 1e5 {
        Normal::standard().inverse_cdf(1.0 - alpha) // t and normal agree to 5 digits
    } else {
        StudentsT::new(0.0, 1.0, df.max(1.0)).map_or(f64::NAN, |t| t.inverse_cdf(1.0 - alpha))
    };
    let kind = match scale(d.used(), &total) {
        Scale::Difference { sides } => {
            if out.se.is_nan() || out.se <= 0.0 {
                let units = min_units(d, n);
                out.se = sides.iter().map(|&(u, de)| (wilson_se(u, units, q) / de).powi(2)).sum::<f64>().sqrt();
                out.warnings.push("no resample changed the difference; the interval uses each side's worst-case spread".into());
            }
            (out.low, out.high) = (estimate - q * out.se, estimate + q * out.se);
            "normal"
        }
        s => {
            let (u, slope) = s.unit(estimate).expect("bounded scale");
            let u = u.clamp(0.0, 1.0);
            let se_u = out.se * slope;
            let n_eff = if se_u > 0.0 && u > 0.0 && u < 1.0 {
                u * (1.0 - u) / (se_u * se_u)
            } else {
                let units = min_units(d, n);
                out.se = wilson_se(u, units, q) / slope;
                let what = if s == Scale::Mean { "a mean of [0, 1] values" } else { "a rate" };
                out.warnings.push(format!(
                    "every resample gave the same value; the interval uses the largest variance {what} of {u:.3} can have over {units} units"
                ));
                units
            };
            let (lo, hi) = wilson(u, n_eff, q);
            let (a, b) = (s.back(lo), s.back(hi));
            (out.low, out.high) = (a.min(b), a.max(b));
            "wilson"
        }
    };
    let source = if out.n_resamples == 0 { "-linearized" } else { "" };
    out.method = format!("{}{source}-{kind}", design_name(d));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of_codes(codes: &[u64], c: &[f64]) -> f64 {
        // Cells are outcome values 0 and 1.
        let ones: f64 = codes.iter().zip(c).filter(|(&k, _)| k == 1).map(|(_, &x)| x).sum();
        ones / c.iter().sum::<f64>()
    }

    /// Persona x question table of 0/1 outcomes with additive effects.
    fn crossed(r: usize, c: usize, sa: f64, sb: f64, se: f64, seed: u64) -> (Vec<u64>, Vec<i64>, Vec<i64>) {
        use rand_distr::{Distribution, Normal};
        let mut rng = stream(seed, 0);
        let norm = |s: f64| Normal::new(0.0, s.max(1e-12)).unwrap();
        let a: Vec<f64> = (0..r).map(|_| norm(sa).sample(&mut rng)).collect();
        let b: Vec<f64> = (0..c).map(|_| norm(sb).sample(&mut rng)).collect();
        let (mut codes, mut p, mut q) = (vec![], vec![], vec![]);
        for i in 0..r {
            for j in 0..c {
                let eta = a[i] + b[j] + norm(se).sample(&mut rng);
                let prob = 1.0 / (1.0 + (-eta).exp());
                codes.push((crate::rng::unit(rng.next_u64()) < prob) as u64);
                p.push(i as i64);
                q.push(j as i64);
            }
        }
        (codes, p, q)
    }

    fn design(codes: &[u64], p: &[i64], q: &[i64]) -> Design {
        let f = factors(&[(p, "personas"), (q, "questions")], codes.len()).unwrap();
        Design::new(codes, f)
    }

    #[test]
    fn cells_hold_the_item_counts() {
        let codes = [0u64, 1, 1, 0, 1];
        let d = design(&codes, &[0, 0, 0, 1, 1], &[5, 5, 6, 5, 6]);
        let Design::Crossed { cells, .. } = &d else { panic!() };
        assert_eq!(cells.g1, vec![0, 0, 1, 1]);
        assert_eq!(cells.g2, vec![0, 1, 0, 1]);
        // cell (0, 5) holds one 0 and one 1; (0, 6) one 1; (1, 5) one 0; (1, 6) one 1.
        assert_eq!(cells.entries, vec![(0, 1.0), (1, 1.0), (1, 1.0), (0, 1.0), (1, 1.0)]);
        assert_eq!(d.total(), vec![2.0, 3.0]);
    }

    #[test]
    fn corrected_variance_removes_the_triple_counted_cell_term() {
        // Pure cell noise (no persona or question effect): V_1, V_2 and the
        // wanted V are all about p(1-p)/RC, the product bootstrap about 3x that.
        let (codes, p, q) = crossed(40, 20, 0.0, 0.0, 0.0, 1);
        let d = design(&codes, &p, &q);
        let Design::Crossed { by, factors, cells } = &d else { panic!() };
        let v12 = finite_var(&resample_product(&by[0].used, cells, [factors[0].levels, factors[1].levels], &mean_of_codes, 4000, 2)).0;
        let v1 = finite_var(&resample(&by[0], &mean_of_codes, 4000, 3)).0;
        let m = codes.iter().sum::<u64>() as f64 / 800.0;
        let binom = m * (1.0 - m) / 800.0;
        assert!((v12 / binom - 3.0).abs() < 0.4, "product {}", v12 / binom);
        assert!((v1 / binom - 1.0).abs() < 0.2, "one-way {}", v1 / binom);
        let r = ci(&d, &mean_of_codes, &|_: &[u64], _: &[f64]| Scale::Rate, 800, 2000, 0.95, Method::Auto, 4).unwrap();
        assert!((r.se * r.se / binom - 1.0).abs() < 0.25, "corrected {}", r.se * r.se / binom);
        assert_eq!(r.units, vec![40, 20]);
        assert_eq!(r.method, "crossed-wilson");
    }

    #[test]
    fn crossed_interval_is_wider_than_either_one_way_interval_with_both_effects() {
        let (codes, p, q) = crossed(40, 20, 1.0, 1.0, 0.5, 5);
        let rate = |_: &[u64], _: &[f64]| Scale::Rate;
        let both = ci(&design(&codes, &p, &q), &mean_of_codes, &rate, 800, 1000, 0.95, Method::Auto, 1).unwrap();
        for ids in [&p, &q] {
            let one = Design::new(&codes, factors(&[(ids, "x")], 800).unwrap());
            let r = ci(&one, &mean_of_codes, &rate, 800, 1000, 0.95, Method::Auto, 1).unwrap();
            assert!(both.se > 1.1 * r.se, "{} vs {}", both.se, r.se);
        }
    }

    #[test]
    fn linearized_variances_are_exact_for_a_rate_on_a_balanced_grid() {
        // Rate over R x C cells of one item: the rate is linear in the resampling
        // weights, V_1 = sum_i R_i^2 / N^2 etc. with S_ij = y_ij - mean.
        let (codes, p, q) = crossed(30, 12, 0.8, 0.6, 0.5, 8);
        let d = design(&codes, &p, &q);
        let Design::Crossed { by, cells, .. } = &d else { panic!() };
        let (v1, v2, v12) = linearized(&by[0].used, &d.total(), cells, [30, 12], &mean_of_codes);
        let n = 360.0;
        let m = codes.iter().sum::<u64>() as f64 / n;
        let s: Vec<f64> = codes.iter().map(|&y| y as f64 - m).collect();
        let rows: Vec<f64> = (0..30).map(|i| s[i * 12..(i + 1) * 12].iter().sum()).collect();
        let cols: Vec<f64> = (0..12).map(|j| (0..30).map(|i| s[i * 12 + j]).sum()).collect();
        let (r2, c2) = (rows.iter().map(|x| x * x).sum::<f64>(), cols.iter().map(|x| x * x).sum::<f64>());
        let e2 = s.iter().map(|x| x * x).sum::<f64>();
        let want = [r2 / (n * n), c2 / (n * n), (e2 + (1.0 - 1.0 / 30.0) * c2 + (1.0 - 1.0 / 12.0) * r2) / (n * n)];
        for (got, want) in [v1, v2, v12].iter().zip(want) {
            assert!((got / want - 1.0).abs() < 1e-6, "{got} vs {want}");
        }
        // ... and the bootstrap estimates the same variances.
        let boot = finite_var(&resample_product(&by[0].used, cells, [30, 12], &mean_of_codes, 20_000, 9)).0;
        assert!((boot / v12 - 1.0).abs() < 0.06, "{boot} vs {v12}");
    }

    #[test]
    fn large_crossed_designs_use_the_linearized_variances() {
        let (codes, p, q) = crossed(300, 200, 0.5, 0.5, 0.5, 10);
        let d = design(&codes, &p, &q);
        let rate = |_: &[u64], _: &[f64]| Scale::Rate;
        let lin = ci(&d, &mean_of_codes, &rate, 60_000, 1000, 0.95, Method::Auto, 1).unwrap();
        assert_eq!((lin.method.as_str(), lin.n_resamples), ("crossed-linearized-wilson", 0));
        let boot = ci(&d, &mean_of_codes, &rate, 60_000, 800, 0.95, Method::Auto, 1).unwrap();
        assert_eq!((boot.method.as_str(), boot.n_resamples), ("crossed-wilson", 2400));
        assert!((boot.se / lin.se - 1.0).abs() < 0.1, "{} vs {}", boot.se, lin.se);
    }

    #[test]
    fn too_few_levels_give_no_interval() {
        let (codes, p, q) = crossed(40, 4, 0.5, 0.5, 0.5, 6);
        let r = ci(&design(&codes, &p, &q), &mean_of_codes, &|_: &[u64], _: &[f64]| Scale::Rate, 160, 200, 0.95, Method::Auto, 1).unwrap();
        assert!(r.low.is_nan() && r.high.is_nan() && r.estimate.is_finite());
        assert!(r.warnings[0].starts_with("only 4 questions"), "{:?}", r.warnings);
    }

    #[test]
    fn constant_outcomes_give_a_worst_case_interval_not_a_point() {
        // 30 items all 1: Wilson over 30 units, [0.886, 1] at 95% (z ~ t_29 here).
        let codes = vec![1u64; 30];
        let d = Design::new(&codes, vec![]);
        let r = ci(&d, &mean_of_codes, &|_: &[u64], _: &[f64]| Scale::Rate, 30, 500, 0.95, Method::Auto, 1).unwrap();
        assert_eq!(r.high, 1.0);
        let t = StudentsT::new(0.0, 1.0, 29.0).unwrap().inverse_cdf(0.975);
        assert!((r.low - 30.0 / (30.0 + t * t)).abs() < 1e-12, "{r:?}");
        assert!(r.se > 0.0 && r.warnings.iter().any(|w| w.contains("same value")));
        // The percentile method falls back to the same score interval.
        let p = ci(&d, &mean_of_codes, &|_: &[u64], _: &[f64]| Scale::Rate, 30, 500, 0.95, Method::Percentile, 1).unwrap();
        assert_eq!((p.low, p.high), (r.low, r.high));
    }

    #[test]
    fn wilson_matches_the_closed_form() {
        // 10 of 50 at 95%: the textbook Wilson interval [0.1124, 0.3304].
        let (lo, hi) = wilson(0.2, 50.0, 1.959964);
        assert!((lo - 0.1124).abs() < 1e-4 && (hi - 0.3304).abs() < 1e-4, "{lo} {hi}");
    }

    #[test]
    fn more_than_two_factors_is_an_error() {
        let ids = [0i64, 1];
        let e = factors(&[(&ids, "a"), (&ids, "b"), (&ids, "c")], 2).unwrap_err();
        assert_eq!(e.arg, "clusters");
    }
}

