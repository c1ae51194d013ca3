//! One error type for the core. Each error names the offending argument so the
//! Python layer can raise a specific exception with a useful message.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Empty,
    LengthMismatch,
    NaN,
    Category,
    Weight,
    InvalidArgument,
    Data,
}

impl ErrorKind {
    /// Name of the matching class in `persona_exp.errors`.
    pub fn class_name(self) -> &'static str {
        match self {
            ErrorKind::Empty => "EmptyInputError",
            ErrorKind::LengthMismatch => "LengthMismatchError",
            ErrorKind::NaN => "NaNError",
            ErrorKind::Category => "CategoryError",
            ErrorKind::Weight => "WeightError",
            ErrorKind::InvalidArgument => "InvalidArgumentError",
            ErrorKind::Data => "DataError",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// The argument at fault, as the Python facade names it.
    pub arg: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, arg: &'static str, message: impl Into<String>) -> Self {
        Error { kind, arg, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.arg, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn check_same_len(a: usize, b: usize, arg_a: &'static str, arg_b: &'static str) -> Result<()> {
    if a != b {
        return Err(Error::new(
            ErrorKind::LengthMismatch,
            arg_b,
            format!("has {b} elements but {arg_a} has {a}; they must align element by element"),
        ));
    }
    Ok(())
}

/// The most elements an output array built from caller-given sizes may hold:
/// 2^31 (16 GiB of 64-bit values), far beyond any real design. A larger
/// request (a typo such as n = 10^12) is an error here instead of a failed
/// allocation, which would abort the whole process.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The number of elements `factors` multiply to, checked for overflow and
/// against MAX_ELEMENTS; `what` says what they count, for the message.
pub(crate) fn checked_elements(factors: &[usize], arg: &'static str, what: &str) -> Result<usize> {
    if factors.contains(&0) {
        return Ok(0);
    }
    let total = factors.iter().try_fold(1usize, |acc, &f| acc.checked_mul(f));
    match total {
        Some(n) if n <= MAX_ELEMENTS => Ok(n),
        _ => {
            let shown = factors.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" x ");
            Err(Error::new(
                ErrorKind::InvalidArgument,
                arg,
                format!("asks for {shown} {what}, more than the {MAX_ELEMENTS} (2^31) one array may hold; ask for fewer, or in batches"),
            ))
        }
    }
}

/// A vector of `n` copies of `value`, or an error when the memory cannot be
/// had (where `vec!` would abort the process).
pub(crate) fn filled_vec<T: Clone>(n: usize, value: T, arg: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        let bytes = n.saturating_mul(std::mem::size_of::<T>());
        Error::new(ErrorKind::InvalidArgument, arg, format!("needs {n} elements ({bytes} bytes), more memory than this machine can allocate"))
    })?;
    v.resize(n, value);
    Ok(v)
}

pub(crate) fn check_non_empty(n: usize, arg: &'static str) -> Result<()> {
    if n == 0 {
        return Err(Error::new(ErrorKind::Empty, arg, "is empty: at least one element is needed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_for_overflow_and_the_cap() {
        assert_eq!(checked_elements(&[1000, 150], "n", "prompts").unwrap(), 150_000);
        assert_eq!(checked_elements(&[usize::MAX, 0], "n", "prompts").unwrap(), 0);
        let over = checked_elements(&[usize::MAX, 2], "n_personas", "prompts").unwrap_err();
        assert_eq!((over.kind, over.arg), (ErrorKind::InvalidArgument, "n_personas"));
        assert!(checked_elements(&[MAX_ELEMENTS + 1], "n", "rows").unwrap_err().message.contains("2^31"));
        assert_eq!(checked_elements(&[MAX_ELEMENTS], "n", "rows").unwrap(), MAX_ELEMENTS);
    }

    #[test]
    fn an_impossible_allocation_is_an_error() {
        // More bytes than any address space: try_reserve fails where vec! would abort.
        let e = filled_vec(usize::MAX / 2, 0u64, "n").unwrap_err();
        assert_eq!((e.kind, e.arg), (ErrorKind::InvalidArgument, "n"));
        assert_eq!(filled_vec(3, 7u8, "n").unwrap(), vec![7, 7, 7]);
    }
}
