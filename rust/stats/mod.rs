//! Agreement statistics and bounded means. Everything here works on tables
//! built in one pass over the data (cell counts, or per-unit counts and sums
//! for a mean); bootstraps then resample the tables, not the items.

pub mod bootstrap;
pub mod confusion;
pub mod design;
pub mod fleiss;
pub mod intervals;
pub mod kappa;
pub mod mean;
pub mod winrate;

pub use confusion::Label;
pub use kappa::Weights;
