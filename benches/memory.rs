//! Side-by-side comparisons (filled in by the benchmark suite).
fn main() {}
