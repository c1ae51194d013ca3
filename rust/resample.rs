//! Weighted sampling of row indices (census microdata rows weighted by PWGTP).
//!
//! With replacement: Vose's alias method, O(1) per draw with one random memory
//! access. Without replacement: Efraimidis-Spirakis keys `Exp(1)/w` (the n
//! smallest win), the exponentials drawn by a ziggurat whose tables and rare
//! steps use the pure-Rust `libm`, so keys are bit-identical on every platform. Work is split in fixed-size chunks, each with its own
//! seeded stream, so the result does not depend on the thread count.

use rand::RngCore;
use rayon::prelude::*;

use crate::error::{check_non_empty, checked_elements, filled_vec, Error, ErrorKind, Result};
use crate::rng::{below, stream, unit};

const CHUNK: usize = 1 << 15;

/// Validates weights and returns their sum and the number of positive ones.
pub fn check_weights(w: &[f64]) -> Result<(f64, usize)> {
    check_non_empty(w.len(), "weights")?;
    let (sum, positive, bad) = w
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, xs)| {
            let mut bad = None;
            let (mut s, mut p) = (0.0, 0usize);
            for (i, &x) in xs.iter().enumerate() {
                if !(x >= 0.0 && x.is_finite()) && bad.is_none() {
                    bad = Some((c * CHUNK + i, x));
                }
                s += x;
                p += (x > 0.0) as usize;
            }
            (s, p, bad)
        })
        .reduce(|| (0.0, 0, None), |a, b| (a.0 + b.0, a.1 + b.1, a.2.or(b.2)));
    if let Some((i, x)) = bad {
        let kind = if x.is_nan() { ErrorKind::NaN } else { ErrorKind::Weight };
        return Err(Error::new(kind, "weights", format!("holds {x} at row {i}; weights must be finite and non-negative")));
    }
    if positive == 0 {
        return Err(Error::new(ErrorKind::Weight, "weights", "are all zero: no row can be drawn"));
    }
    Ok((sum, positive))
}

/// A Vose alias table: slot i keeps itself with probability `prob` else `alias`.
#[derive(Clone, Copy, Default)]
struct Slot {
    prob: f64,
    alias: u32,
}

fn alias_table(w: &[f64], sum: f64) -> Vec<Slot> {
    let n = w.len();
    let scale = n as f64 / sum;
    let mut table: Vec<Slot> = w.iter().enumerate().map(|(i, &x)| Slot { prob: x * scale, alias: i as u32 }).collect();
    let mut small: Vec<u32> = Vec::new();
    let mut large: Vec<u32> = Vec::new();
    for (i, s) in table.iter().enumerate() {
        if s.prob < 1.0 { small.push(i as u32) } else { large.push(i as u32) }
    }
    while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
        small.pop();
        table[s as usize].alias = l;
        let rest = (table[l as usize].prob + table[s as usize].prob) - 1.0;
        table[l as usize].prob = rest;
        if rest < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    // Leftovers are 1 up to rounding.
    for i in large.into_iter().chain(small) {
        table[i as usize].prob = 1.0;
    }
    table
}

/// `n` row indices drawn with probability proportional to `w`, with replacement.
pub fn sample_with_replacement(w: &[f64], n: usize, seed: u64) -> Result<Vec<i64>> {
    checked_elements(&[n], "n", "draws")?;
    let (sum, _) = check_weights(w)?;
    let table = alias_table(w, sum);
    let rows = w.len() as u64;
    let mut out = filled_vec(n, 0i64, "n")?;
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
        let mut rng = stream(seed, c as u64);
        for d in dst.iter_mut() {
            let i = below(rng.next_u64(), rows) as usize;
            let s = table[i];
            *d = if unit(rng.next_u64()) < s.prob { i as i64 } else { s.alias as i64 };
        }
    });
    Ok(out)
}

/// Exponential variates by Marsaglia and Tsang's ziggurat (256 layers). The
/// tables and the rare wedge and tail steps use the pure-Rust `libm`, so the
/// draws are bit-identical on every platform, and about 99% of draws cost one
/// random number, one multiply and one comparison instead of a logarithm.
struct ExpZiggurat {
    x: [f64; 257],
    f: [f64; 257],
}

const ZIG_R: f64 = 7.697_117_470_131_05;
const ZIG_V: f64 = 3.949_659_822_581_557e-3;

impl ExpZiggurat {
    fn get() -> &'static ExpZiggurat {
        static TABLES: std::sync::OnceLock<ExpZiggurat> = std::sync::OnceLock::new();
        TABLES.get_or_init(|| {
            let mut x = [0.0; 257];
            let mut f = [0.0; 257];
            x[0] = ZIG_V / libm::exp(-ZIG_R);
            x[1] = ZIG_R;
            for i in 1..256 {
                x[i + 1] = -libm::log(ZIG_V / x[i] + libm::exp(-x[i]));
            }
            x[256] = 0.0;
            for i in 0..257 {
                f[i] = libm::exp(-x[i]);
            }
            ExpZiggurat { x, f }
        })
    }

    #[inline]
    fn sample(&self, rng: &mut impl RngCore) -> f64 {
        let mut offset = 0.0;
        loop {
            let bits = rng.next_u64();
            let i = (bits & 0xff) as usize;
            let x = unit(bits) * self.x[i];
            if x < self.x[i + 1] {
                return offset + x;
            }
            if i == 0 {
                // The tail beyond R is again exponential (memorylessness).
                offset += ZIG_R;
                continue;
            }
            let y = self.f[i + 1] + unit(rng.next_u64()) * (self.f[i] - self.f[i + 1]);
            if y < libm::exp(-x) {
                return offset + x;
            }
        }
    }
}

/// `n` distinct row indices by Efraimidis-Spirakis, in ascending row order.
///
/// Three parallel passes over the rows: (1) check each weight and draw its key,
/// keeping a small systematic sample of keys; (2) count the keys below a
/// bracket that the sample puts around the n-th smallest and gather those inside
/// it, then select exactly among them; (3) write the chosen row indices.
pub fn sample_without_replacement(w: &[f64], n: usize, seed: u64) -> Result<Vec<i64>> {
    draw_without_replacement(w, n, seed).map(|(rows, _)| rows)
}

/// The same rows as [`sample_without_replacement`], in draw order: by
/// ascending key, i.e. the first `n` places of a weighted random permutation.
/// Each row's key depends only on the seed and the row, so the first `n` rows
/// of a longer draw are this draw (prefix-stable in `n`).
pub fn sample_without_replacement_in_draw_order(w: &[f64], n: usize, seed: u64) -> Result<Vec<i64>> {
    let (mut rows, keys) = draw_without_replacement(w, n, seed)?;
    rows.sort_unstable_by_key(|&r| (keys[r as usize], r));
    Ok(rows)
}

/// The chosen rows in ascending row order, and every row's key.
fn draw_without_replacement(w: &[f64], n: usize, seed: u64) -> Result<(Vec<i64>, Vec<u64>)> {
    check_non_empty(w.len(), "weights")?;
    let zig = ExpZiggurat::get();
    let step = (w.len() / SAMPLE).max(1);
    // Keys as raw bits: for non-negative floats the bit order is the numeric order.
    let mut keys = vec![0u64; w.len()];
    let drawn: Vec<(Vec<u64>, usize, Option<(usize, f64)>)> = keys
        .par_chunks_mut(CHUNK)
        .zip(w.par_chunks(CHUNK))
        .enumerate()
        .map(|(c, (dst, ws))| {
            let mut rng = stream(seed, c as u64);
            let (mut positive, mut bad) = (0usize, None);
            for (i, (k, &x)) in dst.iter_mut().zip(ws).enumerate() {
                if !(x >= 0.0 && x.is_finite()) && bad.is_none() {
                    bad = Some((c * CHUNK + i, x));
                }
                positive += (x > 0.0) as usize;
                let e = zig.sample(&mut rng);
                *k = if x > 0.0 { (e / x).to_bits() } else { f64::INFINITY.to_bits() };
            }
            let first = (step - (c * CHUNK) % step) % step;
            let sample = dst[first.min(dst.len())..].iter().step_by(step).copied().collect();
            (sample, positive, bad)
        })
        .collect();
    if let Some((i, x)) = drawn.iter().find_map(|d| d.2) {
        let kind = if x.is_nan() { ErrorKind::NaN } else { ErrorKind::Weight };
        return Err(Error::new(kind, "weights", format!("holds {x} at row {i}; weights must be finite and non-negative")));
    }
    let positive: usize = drawn.iter().map(|d| d.1).sum();
    if positive == 0 {
        return Err(Error::new(ErrorKind::Weight, "weights", "are all zero: no row can be drawn"));
    }
    if n > positive {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "n",
            format!("is {n} but only {positive} rows have a positive weight; sampling without replacement cannot draw more"),
        ));
    }
    if n == 0 {
        return Ok((Vec::new(), keys));
    }
    let sample: Vec<u64> = drawn.into_iter().flat_map(|d| d.0).collect();
    let (threshold, counts) = threshold_and_counts(&keys, sample, n - 1);
    let mut out = vec![0i64; counts.iter().sum::<usize>() + 1];
    let mut parts: Vec<&mut [i64]> = Vec::with_capacity(counts.len());
    let mut rest = out.as_mut_slice();
    for &c in &counts {
        let (head, tail) = rest.split_at_mut(c);
        parts.push(head);
        rest = tail;
    }
    parts.into_par_iter().zip(keys.par_chunks(CHUNK)).enumerate().for_each(|(c, (dst, ks))| {
        // Branch-free: always write, advance only past chosen rows.
        let mut j = 0;
        for (i, &k) in ks.iter().enumerate() {
            if j < dst.len() {
                dst[j] = (c * CHUNK + i) as i64;
            }
            j += (k <= threshold) as usize;
        }
    });
    out.pop();
    // Ties at the threshold (vanishingly rare) are cut from the end so exactly n remain.
    let mut pos = out.len();
    while out.len() > n {
        pos -= 1;
        if keys[out[pos] as usize] == threshold {
            out.remove(pos);
        }
    }
    Ok((out, keys))
}

/// Size of the systematic sample that brackets the threshold key.
const SAMPLE: usize = 8192;

/// The `rank`-th smallest key (0-based) and, per chunk, how many keys are at
/// most that value. The sample brackets the answer; one parallel pass counts
/// the keys below the bracket and gathers those inside it, and an exact
/// selection among those finishes. If the bracket misses (a chance of about
/// 1e-4), a full selection is the fallback.
fn threshold_and_counts(keys: &[u64], mut sample: Vec<u64>, rank: usize) -> (u64, Vec<usize>) {
    let s = sample.len() as f64;
    let q = (rank as f64 + 0.5) / keys.len() as f64;
    let margin = 4.0 * (q * (1.0 - q) * s).sqrt() + 2.0;
    let lo_rank = (q * s - margin).floor();
    let hi_rank = (q * s + margin).ceil();
    let lo = if lo_rank >= 1.0 { *sample.select_nth_unstable(lo_rank as usize).1 } else { 0 };
    let hi = if hi_rank < s { *sample.select_nth_unstable(hi_rank as usize).1 } else { u64::MAX };
    let per_chunk: Vec<(usize, Vec<u64>)> = keys
        .par_chunks(CHUNK)
        .map(|ks| {
            // Branch-free: always write, advance only past keys inside the bracket.
            let mut below = 0usize;
            let mut inside = vec![0u64; ks.len() + 1];
            let mut j = 0;
            for &k in ks {
                below += (k < lo) as usize;
                inside[j] = k;
                j += (k >= lo && k <= hi) as usize;
            }
            inside.truncate(j);
            (below, inside)
        })
        .collect();
    let below: usize = per_chunk.iter().map(|c| c.0).sum();
    let inside_total: usize = per_chunk.iter().map(|c| c.1.len()).sum();
    if below <= rank && rank < below + inside_total {
        let mut inside: Vec<u64> = per_chunk.iter().flat_map(|c| c.1.iter().copied()).collect();
        let threshold = *inside.select_nth_unstable(rank - below).1;
        let counts = per_chunk.iter().map(|(b, ins)| b + ins.iter().filter(|&&k| k <= threshold).count()).collect();
        return (threshold, counts);
    }
    let mut all = keys.to_vec();
    let threshold = *all.select_nth_unstable(rank).1;
    let counts = keys.par_chunks(CHUNK).map(|ks| ks.iter().filter(|&&k| k <= threshold).count()).collect();
    (threshold, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_frequencies_follow_weights() {
        let w = [1.0, 2.0, 0.0, 7.0];
        let draws = sample_with_replacement(&w, 200_000, 5).unwrap();
        let mut counts = [0usize; 4];
        for d in draws {
            counts[d as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        for (c, x) in counts.iter().zip(w) {
            let expected = 200_000.0 * x / 10.0;
            assert!((*c as f64 - expected).abs() < 5.0 * expected.sqrt().max(1.0), "{counts:?}");
        }
    }

    #[test]
    fn without_replacement_is_distinct_sorted_and_reproducible() {
        let w: Vec<f64> = (0..10_000).map(|i| (i % 7) as f64).collect();
        let s = sample_without_replacement(&w, 3000, 11).unwrap();
        assert_eq!(s.len(), 3000);
        assert!(s.windows(2).all(|p| p[0] < p[1]));
        assert!(s.iter().all(|&i| w[i as usize] > 0.0));
        assert_eq!(s, sample_without_replacement(&w, 3000, 11).unwrap());
        assert_ne!(s, sample_without_replacement(&w, 3000, 12).unwrap());
    }

    #[test]
    fn without_replacement_inclusion_grows_with_weight() {
        // Over many seeds, a row of weight 4 is included more often than one of weight 1.
        let w = [1.0, 4.0, 1.0, 1.0, 1.0];
        let mut hits = [0usize; 5];
        for seed in 0..4000 {
            for i in sample_without_replacement(&w, 2, seed).unwrap() {
                hits[i as usize] += 1;
            }
        }
        assert!(hits[1] > 2 * hits[0], "{hits:?}");
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let w: Vec<f64> = (0..200_000).map(|i| 1.0 + (i % 13) as f64).collect();
        let a = sample_with_replacement(&w, 100_000, 3).unwrap();
        let b = sample_without_replacement(&w, 50_000, 3).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(a, pool.install(|| sample_with_replacement(&w, 100_000, 3).unwrap()));
        assert_eq!(b, pool.install(|| sample_without_replacement(&w, 50_000, 3).unwrap()));
    }

    #[test]
    fn threshold_matches_sorting_with_ties_and_skew() {
        let mut x: u64 = 12345;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let spread: Vec<u64> = (0..100_000).map(|_| next() >> 4).collect();
        let ties: Vec<u64> = (0..100_000).map(|_| next() % 3).collect();
        let skewed: Vec<u64> = (0..100_000).map(|i| if i % 1000 == 0 { next() } else { 7 }).collect();
        for keys in [spread, ties, skewed] {
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            for rank in [0, 1, 500, 33_333, 50_000, 99_998, 99_999] {
                let sample: Vec<u64> = keys.iter().step_by(keys.len() / SAMPLE).copied().collect();
                let biased: Vec<u64> = sample.iter().map(|&k| k / 2).collect();
                for (name, s) in [("bracket", sample), ("fallback", biased)] {
                    let (th, counts) = threshold_and_counts(&keys, s, rank);
                    assert_eq!(th, sorted[rank], "{name}, rank {rank}");
                    let at_most: usize = keys.iter().filter(|&&k| k <= th).count();
                    assert_eq!(counts.iter().sum::<usize>(), at_most, "{name}, rank {rank}");
                }
            }
        }
    }

    #[test]
    fn ziggurat_draws_follow_the_exponential_distribution() {
        let zig = ExpZiggurat::get();
        let mut rng = stream(42, 0);
        let n = 400_000;
        let draws: Vec<f64> = (0..n).map(|_| zig.sample(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        // Kolmogorov-Smirnov distance against 1 - exp(-x); critical value at 1e-3 is 1.95/sqrt(n).
        let mut sorted = draws.clone();
        sorted.sort_by(f64::total_cmp);
        let d = sorted
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let cdf = 1.0 - (-x).exp();
                (cdf - i as f64 / n as f64).abs().max(((i + 1) as f64 / n as f64 - cdf).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / (n as f64).sqrt(), "KS distance {d}");
        assert!(sorted[n - 1] > 8.0, "the tail beyond R is reached");
    }

    #[test]
    fn bad_weights_are_named() {
        assert_eq!(sample_with_replacement(&[1.0, -1.0], 3, 0).unwrap_err().kind, ErrorKind::Weight);
        assert_eq!(sample_with_replacement(&[0.0, 0.0], 3, 0).unwrap_err().kind, ErrorKind::Weight);
        assert_eq!(sample_with_replacement(&[1.0, f64::NAN], 3, 0).unwrap_err().kind, ErrorKind::NaN);
        assert_eq!(sample_with_replacement(&[], 3, 0).unwrap_err().kind, ErrorKind::Empty);
        assert_eq!(sample_without_replacement(&[1.0, 0.0], 2, 0).unwrap_err().arg, "n");
    }

    #[test]
    fn a_huge_draw_is_an_error_not_an_abort() {
        // 10^12 draws would be 8 TB: refused before any allocation.
        let e = sample_with_replacement(&[1.0, 2.0], 1_000_000_000_000, 0).unwrap_err();
        assert_eq!((e.kind, e.arg), (ErrorKind::InvalidArgument, "n"));
        assert!(e.message.contains("1000000000000"), "{}", e.message);
        assert_eq!(sample_without_replacement(&[1.0, 2.0], 1_000_000_000_000, 0).unwrap_err().arg, "n");
    }

    #[test]
    fn draw_order_is_a_prefix_stable_permutation_of_the_same_rows() {
        let w: Vec<f64> = (0..20_000).map(|i| 1.0 + (i % 7) as f64).collect();
        let long = sample_without_replacement_in_draw_order(&w, 5_000, 9).unwrap();
        let short = sample_without_replacement_in_draw_order(&w, 1_200, 9).unwrap();
        assert_eq!(&long[..1_200], &short[..]);
        let mut rows = short.clone();
        rows.sort_unstable();
        assert_eq!(rows, sample_without_replacement(&w, 1_200, 9).unwrap());
        rows.dedup();
        assert_eq!(rows.len(), 1_200);
        // Heavier rows come earlier: the mean weight of the first places exceeds that of the last.
        let mean = |r: &[i64]| r.iter().map(|&i| w[i as usize]).sum::<f64>() / r.len() as f64;
        assert!(mean(&long[..1_000]) > mean(&long[4_000..]));
    }
}
