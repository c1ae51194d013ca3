//! Agreement statistics. Everything here works on contingency tables built in
//! one pass over the labels; bootstraps then resample the tables, not the items.

pub mod bootstrap;
pub mod confusion;
pub mod design;
pub mod fleiss;
pub mod intervals;
pub mod kappa;
pub mod winrate;

pub use confusion::Label;
pub use kappa::Weights;
