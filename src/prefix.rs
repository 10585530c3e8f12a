//! The prefix types a table can hold, and the bit arithmetic that longest-prefix match and
//! range enumeration need.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// An IP prefix type that a [`RouteTable`](crate::RouteTable) can be keyed by.
///
/// Implemented for [`Ipv4Net`] and [`Ipv6Net`] and sealed: the table's ordering arguments
/// rely on the layout of those two types (ordered by address, then by length).
///
/// ```
/// use rtm::{Ipv4Net, Prefix};
/// fn max_len<P: Prefix>(p: P) -> P { p }
/// let p: Ipv4Net = "10.0.0.0/8".parse().unwrap();
/// assert_eq!(max_len(p), p);
/// ```
pub trait Prefix: sealed::Bits + Copy + Ord + Hash + Debug + Send + Sync + 'static {
    /// The address type of this prefix family (`Ipv4Addr` or `Ipv6Addr`).
    type Addr: sealed::AddrBits + Copy + Ord + Hash + Debug + Send + Sync + 'static;
}

impl Prefix for Ipv4Net {
    type Addr = Ipv4Addr;
}

impl Prefix for Ipv6Net {
    type Addr = Ipv6Addr;
}

pub(crate) mod sealed {
    /// Conversions between an address and its bits, right-aligned in a `u128`.
    pub trait AddrBits: Sized {
        /// The address as an integer.
        fn to_bits(self) -> u128;
        /// The address with these bits (only the low `MAX_LEN` bits are used).
        fn from_bits(bits: u128) -> Self;
        /// The integer a [`Fib`](crate::Fib) walks: the address left-aligned in the
        /// narrowest integer that holds it.
        type FibKey: super::FibKey;
        /// The address as a [`Self::FibKey`].
        fn fib_key(self) -> Self::FibKey;
    }

    /// The prefix as (network bits, length); the seal of [`Prefix`](super::Prefix).
    pub trait Bits: Sized {
        /// The address width in bits.
        const MAX_LEN: u8;
        /// The network address as an integer.
        fn net_bits(&self) -> u128;
        /// The prefix length.
        fn plen(&self) -> u8;
        /// Builds a prefix from canonical parts (`bits` has no host bits set).
        fn from_parts(bits: u128, len: u8) -> Self;
        /// 64 bits monotone in the (address, length) order.
        fn order_hint(&self) -> u64;
    }
}

use sealed::{AddrBits, Bits};

impl AddrBits for Ipv4Addr {
    #[inline]
    fn to_bits(self) -> u128 {
        u32::from(self) as u128
    }
    #[inline]
    fn from_bits(bits: u128) -> Self {
        Ipv4Addr::from(bits as u32)
    }
    type FibKey = u64;
    #[inline]
    fn fib_key(self) -> u64 {
        (u32::from(self) as u64) << 32
    }
}

impl AddrBits for Ipv6Addr {
    #[inline]
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    #[inline]
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }
    type FibKey = u128;
    #[inline]
    fn fib_key(self) -> u128 {
        u128::from(self)
    }
}

impl Bits for Ipv4Net {
    const MAX_LEN: u8 = 32;
    #[inline]
    fn net_bits(&self) -> u128 {
        u32::from(self.addr()) as u128
    }
    #[inline]
    fn plen(&self) -> u8 {
        self.prefix_len()
    }
    #[inline]
    fn from_parts(bits: u128, len: u8) -> Self {
        Ipv4Net::new_assert(Ipv4Addr::from(bits as u32), len)
    }
    #[inline]
    fn order_hint(&self) -> u64 {
        // exact: address, then length
        (u32::from(self.addr()) as u64) << 8 | self.prefix_len() as u64
    }
}

impl Bits for Ipv6Net {
    const MAX_LEN: u8 = 128;
    #[inline]
    fn net_bits(&self) -> u128 {
        u128::from(self.addr())
    }
    #[inline]
    fn plen(&self) -> u8 {
        self.prefix_len()
    }
    #[inline]
    fn from_parts(bits: u128, len: u8) -> Self {
        Ipv6Net::new_assert(Ipv6Addr::from(bits), len)
    }
    #[inline]
    fn order_hint(&self) -> u64 {
        // the top half of the address: ties are decided by the full key
        (u128::from(self.addr()) >> 64) as u64
    }
}

/// The mask of the first `len` bits of a `P`-wide address, right-aligned.
#[inline]
pub(crate) fn mask<P: Prefix>(len: u8) -> u128 {
    let width = P::MAX_LEN as u32;
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if len == 0 {
        0
    } else {
        all & !all.checked_shr(len as u32).unwrap_or(0)
    }
}

/// True when `p` has no host bits set (`10.0.0.0/8`, not `10.1.2.3/8`).
#[inline]
pub(crate) fn is_canonical<P: Prefix>(p: &P) -> bool {
    p.net_bits() & !mask::<P>(p.plen()) == 0
}

/// True when `p` covers the address `a`.
#[inline]
pub(crate) fn covers<P: Prefix>(p: &P, a: u128) -> bool {
    a & mask::<P>(p.plen()) == p.net_bits()
}

/// The number of leading bits `a` and `b` share, within the `P` width.
#[inline]
pub(crate) fn common_len<P: Prefix>(a: u128, b: u128) -> u8 {
    let lz = (a ^ b).leading_zeros();
    let pad = 128 - P::MAX_LEN as u32;
    (lz - pad).min(P::MAX_LEN as u32) as u8
}

/// The last address `p` covers.
#[inline]
pub(crate) fn last_addr<P: Prefix>(p: &P) -> u128 {
    p.net_bits() | (mask::<P>(P::MAX_LEN) & !mask::<P>(p.plen()))
}

/// An address left-aligned in an unsigned integer (`u64` for IPv4, `u128` for IPv6).
///
/// Implemented for the two key types of [`Prefix`]'s addresses; a [`Fib`](crate::Fib)
/// walks it.
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

    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn ipnet_orders_by_address_then_length() {
        let mut v = vec![v4("10.0.0.0/16"), v4("10.0.0.0/8"), v4("9.255.0.0/16")];
        v.sort();
        assert_eq!(
            v,
            vec![v4("9.255.0.0/16"), v4("10.0.0.0/8"), v4("10.0.0.0/16")]
        );
    }

    #[test]
    fn masks_and_canonical_form() {
        assert_eq!(mask::<Ipv4Net>(0), 0);
        assert_eq!(mask::<Ipv4Net>(8), 0xff00_0000);
        assert_eq!(mask::<Ipv4Net>(32), 0xffff_ffff);
        assert_eq!(mask::<Ipv6Net>(128), u128::MAX);
        assert!(is_canonical(&v4("10.0.0.0/8")));
        assert!(!is_canonical(&v4("10.1.2.3/8")));
        assert!(is_canonical(&v4("0.0.0.0/0")));
        assert!(!is_canonical(&"2001:db8::1/32".parse::<Ipv6Net>().unwrap()));
    }

    #[test]
    fn cover_common_len_and_last_addr() {
        let p = v4("10.1.0.0/16");
        assert!(covers(&p, 0x0a01_0203));
        assert!(!covers(&p, 0x0a02_0203));
        assert_eq!(common_len::<Ipv4Net>(0x0a01_0200, 0x0a01_0203), 30);
        assert_eq!(common_len::<Ipv4Net>(5, 5), 32);
        assert_eq!(last_addr(&p), 0x0a01_ffff);
        assert_eq!(last_addr(&v4("0.0.0.0/0")), 0xffff_ffff);
    }
}

#[cfg(test)]
mod fib_key_tests {
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
