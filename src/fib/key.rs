//! The integer a lookup walks: the address left-aligned, so that the bits at any depth are
//! one shift away whatever the family.

/// An address left-aligned in an unsigned integer (`u64` for IPv4, `u128` for IPv6).
///
/// Implemented for the two key types of [`Prefix`](crate::Prefix)'s addresses; a
/// [`Fib`](crate::Fib) uses it internally.
///
/// ```
/// use rtm::FibKey;
/// let key: u64 = 0x0a01_0203 << 32; // 10.1.2.3, left-aligned
/// assert_eq!(key.slot(0, 8), 10);
/// assert_eq!(key.slot(8, 8), 1);
/// ```
pub trait FibKey: Copy + Send + Sync + 'static {
    /// `width` bits of the key starting at bit `depth` (bit 0 is the most significant);
    /// bits past the end of the address read as zero. `depth < 64` for `u64`, `< 128` for
    /// `u128`; `1 <= width <= 16`.
    fn slot(self, depth: u32, width: u32) -> usize;
}

impl FibKey for u64 {
    #[inline(always)]
    fn slot(self, depth: u32, width: u32) -> usize {
        (self.wrapping_shl(depth) >> (64 - width)) as usize
    }
}

impl FibKey for u128 {
    #[inline(always)]
    fn slot(self, depth: u32, width: u32) -> usize {
        (self.wrapping_shl(depth) >> (128 - width)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_left_aligned_bit_fields() {
        let k: u64 = 0x0a01_0203 << 32;
        assert_eq!(k.slot(0, 8), 0x0a);
        assert_eq!(k.slot(0, 16), 0x0a01);
        assert_eq!(k.slot(16, 6), 0x02 >> 2);
        assert_eq!(k.slot(28, 6), 0b0011 << 2);
        let k6: u128 = 0x2001_0db8 << 96;
        assert_eq!(k6.slot(0, 16), 0x2001);
        assert_eq!(k6.slot(16, 6), 0x0d >> 2);
        assert_eq!(k6.slot(124, 6), 0);
    }
}
