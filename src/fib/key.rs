//! The integer a lookup walks: the address left-aligned, so that the bits at any depth are
//! one shift away whatever the family. It is defined with the addresses
//! ([`crate::prefix::FibKey`]); the Fib's modules name it from here.

pub use crate::prefix::FibKey;
