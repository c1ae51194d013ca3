//! persona-exp's native core: agreement statistics, bootstrap intervals on
//! sufficient statistics, weighted resampling, calibration (raking) and pair indexing.
//!
//! Every algorithm is plain Rust over slices and is tested with `cargo test`;
//! `py.rs` (built only with the `python` feature, which maturin enables) is the
//! single file that knows about Python.

pub mod calibrate;
pub mod error;
pub mod pairs;
pub mod resample;
pub mod rng;
pub mod stats;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, ErrorKind, Result};
