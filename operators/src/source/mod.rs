//! Built-in sources.

mod iter;

pub use iter::{IterSource, VecSource};
