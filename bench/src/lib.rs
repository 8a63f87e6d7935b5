//! corestrom-bench: the Nexmark model, generator and file formats (see [`nexmark`]), and later
//! the Nexmark queries and corestrom's benchmark harness.

pub mod nexmark;

pub mod alloc_counter;
