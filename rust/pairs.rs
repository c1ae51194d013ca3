//! Pair indexing: which prompts each persona answers, and which judgments two
//! annotators share.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{check_same_len, checked_elements, filled_vec, Error, ErrorKind, Result};
use crate::rng::stream;

/// For each of `personas`, `per_persona` distinct prompts of `0..pool`
/// (row-major `personas x per_persona`). Persona p's row depends only on
/// `(seed, p)`, so growing the population leaves existing rows unchanged.
pub fn assign_prompts(personas: usize, pool: usize, per_persona: usize, seed: u64) -> Result<Vec<i64>> {
    if per_persona > pool {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "n_per_persona",
            format!("is {per_persona} but the pool has only {pool} prompts; prompts are drawn without replacement"),
        ));
    }
    let total = checked_elements(&[personas, per_persona], "n_personas", "prompts (personas x prompts per persona)")?;
    let mut out = filled_vec(total, 0i64, "n_personas")?;
    if per_persona == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(per_persona).enumerate().for_each(|(p, row)| {
        let mut rng = stream(seed, p as u64);
        for (d, i) in row.iter_mut().zip(rand::seq::index::sample(&mut rng, pool, per_persona)) {
            *d = i as i64;
        }
    });
    Ok(out)
}

/// The items two annotators share, joined on their keys.
#[derive(Debug, Default, PartialEq)]
pub struct Aligned {
    pub keys: Vec<u64>,
    pub a: Vec<i64>,
    pub b: Vec<i64>,
    pub index_a: Vec<i64>,
    pub index_b: Vec<i64>,
}

fn index_of(keys: &[u64], arg: &'static str) -> Result<FxHashMap<u64, usize>> {
    let mut map = FxHashMap::with_capacity_and_hasher(keys.len(), Default::default());
    for (i, &k) in keys.iter().enumerate() {
        if let Some(j) = map.insert(k, i) {
            return Err(Error::new(
                ErrorKind::Data,
                arg,
                format!("holds the key {k} twice (positions {j} and {i}); each item must be judged once per annotator"),
            ));
        }
    }
    Ok(map)
}

/// Hash join of `(keys_a, labels_a)` with `(keys_b, labels_b)`, in the order of a.
pub fn align(keys_a: &[u64], labels_a: &[i64], keys_b: &[u64], labels_b: &[i64]) -> Result<Aligned> {
    check_same_len(keys_a.len(), labels_a.len(), "keys_a", "labels_a")?;
    check_same_len(keys_b.len(), labels_b.len(), "keys_b", "labels_b")?;
    index_of(keys_a, "keys_a")?;
    let in_b = index_of(keys_b, "keys_b")?;
    let mut out = Aligned::default();
    for (i, k) in keys_a.iter().enumerate() {
        if let Some(&j) = in_b.get(k) {
            out.keys.push(*k);
            out.a.push(labels_a[i]);
            out.b.push(labels_b[j]);
            out.index_a.push(i as i64);
            out.index_b.push(j as i64);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_distinct_in_range_and_stable_under_growth() {
        let small = assign_prompts(10, 300, 150, 4).unwrap();
        let big = assign_prompts(20, 300, 150, 4).unwrap();
        assert_eq!(&big[..small.len()], &small[..]);
        for row in big.chunks(150) {
            let mut r = row.to_vec();
            r.sort();
            r.dedup();
            assert_eq!(r.len(), 150);
            assert!(r.iter().all(|&i| (0..300).contains(&i)));
        }
        assert_ne!(small, assign_prompts(10, 300, 150, 5).unwrap());
        assert!(assign_prompts(2, 3, 4, 0).is_err());
    }

    #[test]
    fn sizes_that_overflow_or_exceed_the_cap_are_errors() {
        let overflow = assign_prompts(usize::MAX, 10, 2, 0).unwrap_err();
        assert_eq!((overflow.kind, overflow.arg), (ErrorKind::InvalidArgument, "n_personas"));
        let huge = assign_prompts(1_000_000_000, 3000, 150, 0).unwrap_err();
        assert!(huge.message.contains("1000000000 x 150"), "{}", huge.message);
        assert_eq!(assign_prompts(usize::MAX, 10, 0, 0).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn align_joins_in_order_of_a() {
        let r = align(&[5, 1, 9, 3], &[0, 1, 1, 0], &[3, 4, 5], &[1, 1, 0]).unwrap();
        assert_eq!(r.keys, vec![5, 3]);
        assert_eq!((r.a, r.b), (vec![0, 0], vec![0, 1]));
        assert_eq!((r.index_a, r.index_b), (vec![0, 3], vec![2, 0]));
        assert_eq!(align(&[1, 1], &[0, 0], &[1], &[0]).unwrap_err().arg, "keys_a");
    }
}
