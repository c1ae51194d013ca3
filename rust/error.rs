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

pub(crate) fn check_non_empty(n: usize, arg: &'static str) -> Result<()> {
    if n == 0 {
        return Err(Error::new(ErrorKind::Empty, arg, "is empty: at least one element is needed"));
    }
    Ok(())
}
