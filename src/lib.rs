//! corestrom
