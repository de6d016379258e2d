//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The forwarder changes a few 16-bit words of each packet (addresses, TTL); updating the
//! checksum from the old and new words costs a handful of additions instead of a pass over
//! the payload. The full computation is kept for completing checksums the kernel left
//! partial (checksum offload) and for tests, which check every update against it.

use std::net::Ipv4Addr;

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `acc`.
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
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data`: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// The IPv4 pseudo-header sum of TCP and UDP (RFC 793, RFC 768).
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u64 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(l4_len)
}

/// RFC 1624 eqn. 3: the checksum `hc` after one 16-bit word of the data it covers changed
/// from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[must_use]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// [`update16`] for a 32-bit field (an IPv4 address): both halves.
#[must_use]
pub fn update32(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let acc = u64::from(!hc)
        + u64::from(!u16::from_be_bytes([old[0], old[1]]))
        + u64::from(!u16::from_be_bytes([old[2], old[3]]))
        + u64::from(u16::from_be_bytes([new[0], new[1]]))
        + u64::from(u16::from_be_bytes([new[2], new[3]]));
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

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    proptest! {
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
