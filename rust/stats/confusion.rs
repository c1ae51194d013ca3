//! Contingency tables of two label arrays.
//!
//! Labels are category indices `0..k`; `-1` means missing. Tables are built
//! "padded": a `(k+1) x (k+1)` table whose row/column 0 counts missing labels,
//! so one branch-free pass serves every later statistic (pairwise deletion just
//! drops row and column 0).

use rayon::prelude::*;

use crate::error::{check_non_empty, check_same_len, Error, ErrorKind, Result};

/// An integer label type the core reads directly from numpy memory.
pub trait Label: Copy + Ord + Send + Sync + 'static {
    const MIN: Self;
    const MAX: Self;
    fn value(self) -> i64;
}

macro_rules! impl_label {
    ($($t:ty),*) => {$(
        impl Label for $t {
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn value(self) -> i64 { self as i64 }
        }
    )*};
}
impl_label!(i8, u8, i16, i32, i64);

/// Rows handled per parallel task: large enough to amortize scheduling,
/// small enough that two cores share work evenly.
pub(crate) const CHUNK: usize = 1 << 16;

/// Smallest and largest label over the given arrays (in one vectorizable pass).
pub fn label_range<T: Label>(arrays: &[&[T]]) -> (i64, i64) {
    arrays
        .iter()
        .map(|xs| {
            // Folding in the native type lets the compiler vectorize (32 u8 lanes).
            xs.par_chunks(CHUNK)
                .map(|c| {
                    let (lo, hi) = c.iter().fold((T::MAX, T::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                    (lo.value(), hi.value())
                })
                .reduce(|| (i64::MAX, i64::MIN), |(a, b), (c, d)| (a.min(c), b.max(d)))
        })
        .fold((i64::MAX, i64::MIN), |(a, b), (c, d)| (a.min(c), b.max(d)))
}

/// The most categories a label array may use: tables have `(k+1)^2` cells, and
/// a larger label almost always means raw codes that were not mapped to 0..k-1.
pub const MAX_K: usize = 1024;

/// Checks labels against `k` (or infers `k = max + 1`) and returns `k`.
pub fn resolve_k<T: Label>(arrays: &[(&'static str, &[T])], k: Option<usize>) -> Result<usize> {
    let mut k_seen = 0i64;
    for &(name, xs) in arrays {
        let (lo, hi) = label_range(&[xs]);
        if lo < -1 {
            return Err(Error::new(
                ErrorKind::Category,
                name,
                format!("holds the label {lo}; labels are 0..k-1, with -1 for missing"),
            ));
        }
        if hi >= MAX_K as i64 && k.is_none() {
            return Err(Error::new(
                ErrorKind::Category,
                name,
                format!("holds the label {hi}; labels are category indices 0..k-1 with k <= {MAX_K}: map raw codes to indices first"),
            ));
        }
        if let Some(k) = k {
            if hi >= k as i64 {
                return Err(Error::new(
                    ErrorKind::Category,
                    name,
                    format!("holds the label {hi}, outside the categories 0..{} (k = {k})", k as i64 - 1),
                ));
            }
        }
        k_seen = k_seen.max(hi + 1);
    }
    match k {
        Some(0) => Err(Error::new(ErrorKind::InvalidArgument, "k", "must be at least 1")),
        Some(k) if k > MAX_K => Err(Error::new(ErrorKind::InvalidArgument, "k", format!("is {k}; at most {MAX_K} categories are supported"))),
        Some(k) => Ok(k),
        None => Ok((k_seen.max(1)) as usize),
    }
}

/// The padded `(k+1)^2` table of two validated label arrays (row = a, column = b).
pub fn padded_table<T: Label>(a: &[T], b: &[T], k: usize) -> Vec<u64> {
    let w = k + 1;
    let cells = w * w;
    if k == 2 && std::any::TypeId::of::<T>() == std::any::TypeId::of::<u8>() {
        // Binary unsigned labels cannot be missing: three sums give the table.
        let (n, sa, sb, sab) = a
            .par_chunks(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .map(|(ca, cb)| {
                let (mut sa, mut sb, mut sab) = (0u32, 0u32, 0u32);
                for (&x, &y) in ca.iter().zip(cb) {
                    let (x, y) = (x.value() as u32, y.value() as u32);
                    sa += x;
                    sb += y;
                    sab += x & y;
                }
                (ca.len() as u64, sa as u64, sb as u64, sab as u64)
            })
            .reduce(|| (0, 0, 0, 0), |p, q| (p.0 + q.0, p.1 + q.1, p.2 + q.2, p.3 + q.3));
        let mut t = vec![0u64; cells];
        t[w + 1] = n + sab - sa - sb; // (0, 0)
        t[w + 2] = sb - sab; // (0, 1)
        t[2 * w + 1] = sa - sab; // (1, 0)
        t[2 * w + 2] = sab; // (1, 1)
        return t;
    }
    a.par_chunks(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .map(|(ca, cb)| {
            // Interleaved sub-tables break the dependency chain of repeated
            // increments to the same cell.
            // (Only for small tables: large ones would not fit in cache.)
            const WAYS: usize = 8;
            let ways = if cells <= 4096 { WAYS } else { 1 };
            let mut sub = vec![0u32; ways * cells];
            let mut ia = ca.chunks_exact(WAYS);
            let mut ib = cb.chunks_exact(WAYS);
            for (xa, xb) in (&mut ia).zip(&mut ib) {
                for j in 0..WAYS {
                    let cell = (xa[j].value() + 1) as usize * w + (xb[j].value() + 1) as usize;
                    sub[(j % ways) * cells + cell] += 1;
                }
            }
            for (x, y) in ia.remainder().iter().zip(ib.remainder()) {
                sub[((x.value() + 1) as usize) * w + (y.value() + 1) as usize] += 1;
            }
            let mut t = vec![0u64; cells];
            for j in 0..ways {
                for c in 0..cells {
                    t[c] += sub[j * cells + c] as u64;
                }
            }
            t
        })
        .reduce(|| vec![0u64; cells], add_tables)
}

pub(crate) fn add_tables(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// Drops the missing row and column of a padded table: `k x k` counts.
pub fn strip_missing(padded: &[u64], k: usize) -> Vec<u64> {
    let w = k + 1;
    let mut t = Vec::with_capacity(k * k);
    for i in 1..w {
        t.extend_from_slice(&padded[i * w + 1..(i + 1) * w]);
    }
    t
}

/// Validates two label arrays and returns `(k, padded table)`.
pub fn table_of<T: Label>(a: &[T], b: &[T], k: Option<usize>) -> Result<(usize, Vec<u64>)> {
    check_non_empty(a.len(), "a")?;
    check_same_len(a.len(), b.len(), "a", "b")?;
    let k = resolve_k(&[("a", a), ("b", b)], k)?;
    Ok((k, padded_table(a, b, k)))
}

/// The `k x k` confusion table (row = a, column = b), missing labels excluded.
pub fn confusion<T: Label>(a: &[T], b: &[T], k: Option<usize>) -> Result<(usize, Vec<u64>)> {
    let (k, padded) = table_of(a, b, k)?;
    Ok((k, strip_missing(&padded, k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[i64], b: &[i64], k: usize) -> Vec<u64> {
        let mut t = vec![0u64; k * k];
        for (&x, &y) in a.iter().zip(b) {
            if x >= 0 && y >= 0 {
                t[x as usize * k + y as usize] += 1;
            }
        }
        t
    }

    #[test]
    fn matches_naive_count_with_missing() {
        let a: Vec<i64> = (0..200_003i64).map(|i| (i * 7919) % 6 - 1).collect();
        let b: Vec<i64> = (0..200_003i64).map(|i| (i * 104729 + 3) % 6 - 1).collect();
        let (k, t) = confusion(&a, &b, None).unwrap();
        assert_eq!(k, 5);
        assert_eq!(t, naive(&a, &b, 5));
    }

    #[test]
    fn binary_u8_fast_path_matches_generic() {
        let a: Vec<u8> = (0..150_001u64).map(|i| ((i * 2654435761) >> 7 & 1) as u8).collect();
        let b: Vec<u8> = (0..150_001u64).map(|i| ((i * 40503 + 11) >> 5 & 1) as u8).collect();
        let (_, fast) = confusion(&a, &b, Some(2)).unwrap();
        let a64: Vec<i64> = a.iter().map(|&x| x as i64).collect();
        let b64: Vec<i64> = b.iter().map(|&x| x as i64).collect();
        assert_eq!(fast, naive(&a64, &b64, 2));
        assert_eq!(fast.iter().sum::<u64>(), 150_001);
    }

    #[test]
    fn rejects_bad_labels_naming_the_argument() {
        let e = confusion(&[0i8, 1, 2], &[0i8, 1, 1], Some(2)).unwrap_err();
        assert_eq!((e.kind, e.arg), (ErrorKind::Category, "a"));
        let e = confusion(&[0i8, 1], &[0i8, -2], None).unwrap_err();
        assert_eq!((e.kind, e.arg), (ErrorKind::Category, "b"));
        let e = confusion(&[0i8, 1], &[0i8], None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LengthMismatch);
        let e = confusion::<i8>(&[], &[], None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Empty);
    }
}
