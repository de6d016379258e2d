//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624): the one
//! implementation for the forwarder, the capture's synthetic traffic and the tests.
//!
//! One folding rule: words are added into a `u64` ([`sum`], never overflows on anything
//! shorter than 2^48 bytes), and [`fold`] adds the carries back until 16 bits remain
//! (RFC 1071's end-around carry, done once at the end, which gives the same 16 bits as
//! carrying after every addition — the tests check that against a naive reference). The
//! checksum is the complement of the folded sum ([`checksum`]); a received header
//! verifies when its folded sum is `0xffff` ([`verifies`]).
//!
//! The forwarder changes a few 16-bit words of each packet (addresses, TTL); updating the
//! checksum from the old and new words ([`update16`], [`update32`]) costs a handful of
//! additions instead of a pass over the payload. The full computation is kept for
//! completing checksums the kernel left partial (checksum offload), for building packets,
//! and for tests, which check every update against it.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `acc`.
#[inline]
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four 16-bit words at a time: the u64 accumulator cannot overflow on any real packet.
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds a wide one's-complement sum to 16 bits (not complemented).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data`: the complement of its folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// Whether `data`, checksum field included, added to `acc` (a pseudo-header sum or 0)
/// verifies: its folded sum is all ones.
#[inline]
pub fn verifies(acc: u64, data: &[u8]) -> bool {
    fold(sum(acc, data)) == 0xffff
}

/// The IPv4 pseudo-header sum of TCP and UDP (RFC 793, RFC 768).
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(l4_len)
}

/// The IPv6 pseudo-header sum of TCP, UDP and ICMPv6 (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, l4_len: u32) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(next_header) + u64::from(l4_len >> 16) + u64::from(l4_len & 0xffff)
}

/// RFC 1624 eqn. 3: the checksum `hc` after one 16-bit word of the data it covers changed
/// from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[must_use]
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// [`update16`] for a 32-bit field (an IPv4 address): both halves.
#[must_use]
#[inline]
pub fn update32(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let acc = u64::from(!hc)
        + u64::from(!u16::from_be_bytes([old[0], old[1]]))
        + u64::from(!u16::from_be_bytes([old[2], old[3]]))
        + u64::from(u16::from_be_bytes([new[0], new[1]]))
        + u64::from(u16::from_be_bytes([new[2], new[3]]));
    !fold(acc)
}

/// [`update16`] for a field of any even length (an IPv6 address: eight words).
#[must_use]
#[inline]
pub fn update_words(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut acc = u64::from(!hc);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    /// RFC 1071 as written: 16-bit one's-complement additions, the carry added back after
    /// each one, an odd byte padded with zero.
    fn naive_folded_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0));
            acc += w;
            if acc > 0xffff {
                acc = (acc & 0xffff) + 1;
            }
        }
        acc as u16
    }

    #[test]
    fn all_ones_and_empty() {
        assert_eq!(fold(sum(0, &[])), 0);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(fold(sum(0, &[0xff; 64])), 0xffff);
        // A sum that needs more than one fold: 0x1_fffe folds to 0xffff, not 0xfffe.
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(u64::MAX), 0xffff);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    proptest! {
        /// The wide sum folded once equals RFC 1071's word-by-word sum, for any length
        /// (the 8-byte fast path, the 2-byte rest and an odd byte).
        #[test]
        fn fold_of_sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(fold(sum(0, &data)), naive_folded_sum(&data));
            let c = checksum(&data);
            prop_assert_eq!(c, !naive_folded_sum(&data));
        }

        /// Summing in pieces cut at even offsets equals summing at once, so a pseudo-header
        /// sum can be carried into the payload's sum.
        #[test]
        fn sums_chain(data in proptest::collection::vec(any::<u8>(), 0..600), cut in any::<prop::sample::Index>()) {
            let at = cut.index(data.len() / 2 + 1) * 2;
            let at = at.min(data.len() & !1);
            prop_assert_eq!(fold(sum(sum(0, &data[..at]), &data[at..])), fold(sum(0, &data)));
        }

        /// A buffer with its own checksum written in verifies.
        #[test]
        fn a_written_checksum_verifies(mut data in proptest::collection::vec(any::<u8>(), 2..600)) {
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verifies(0, &data));
        }

        /// The IPv6 pseudo-header sum equals summing its RFC 8200 layout byte by byte.
        #[test]
        fn pseudo_header_v6_matches_layout(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nh in any::<u8>(), len in any::<u32>()) {
            let mut p = Vec::new();
            p.extend_from_slice(&src);
            p.extend_from_slice(&dst);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, nh]);
            prop_assert_eq!(
                fold(pseudo_header_v6(src.into(), dst.into(), nh, len)),
                naive_folded_sum(&p)
            );
        }

        /// The IPv4 pseudo-header sum likewise (RFC 768 layout).
        #[test]
        fn pseudo_header_v4_matches_layout(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(), len in any::<u16>()) {
            let mut p = Vec::new();
            p.extend_from_slice(&src);
            p.extend_from_slice(&dst);
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&len.to_be_bytes());
            prop_assert_eq!(fold(pseudo_header(src.into(), dst.into(), proto, len)), naive_folded_sum(&p));
        }

        /// Changing any word and updating the checksum incrementally equals recomputing it.
        #[test]
        fn update_matches_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            word in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            if data.len() % 2 == 1 { data.pop(); }
            let hc = checksum(&data);
            let i = word.index(data.len() / 2) * 2;
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let want = checksum(&data);
            let got = update16(hc, old, new);
            // 0x0000 and 0xffff are the same number in one's complement.
            prop_assert!(got == want || (got ^ want) == 0xffff && (got == 0 || want == 0),
                "got {got:#06x} want {want:#06x}");
        }

        #[test]
        fn update_words_matches_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 40..200),
            new in any::<[u8; 16]>(),
        ) {
            let hc = checksum(&data);
            let old: [u8; 16] = data[8..24].try_into().unwrap();
            data[8..24].copy_from_slice(&new);
            let got = update_words(hc, &old, &new);
            let want = checksum(&data);
            prop_assert!(got == want || (got ^ want) == 0xffff && (got == 0 || want == 0));
        }

        #[test]
        fn update32_matches_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 8..100),
            new in any::<[u8; 4]>(),
        ) {
            let hc = checksum(&data);
            let old: [u8; 4] = data[4..8].try_into().unwrap();
            data[4..8].copy_from_slice(&new);
            let got = update32(hc, old, new);
            let want = checksum(&data);
            prop_assert!(got == want || (got ^ want) == 0xffff && (got == 0 || want == 0));
        }
    }
}
