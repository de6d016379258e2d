//! The address rewrite, in place on an Ethernet/IPv4 frame: new MACs, new source and
//! destination addresses, TTL, and the IPv4 header and TCP/UDP checksums updated
//! incrementally (RFC 1624) from the words that changed. ICMP's checksum covers no
//! addresses, so it stays as it is. A UDP checksum of 0 ("none", RFC 768) stays 0, and an
//! updated one that comes out 0 is sent as 0xffff, as RFC 768 asks.
//!
//! The caller has checked the frame: an IPv4 header that [`crate::wire::Ipv4::new_checked`]
//! accepted and no fragment.

use crate::checksum::{self, update16, update32};
use crate::wire::ethernet::field as eth_field;
use crate::wire::{
    ETH_HEADER_LEN, IPV4_MIN_HEADER, Mac, ipv4_field, l4_checksum_field, l4_uses_pseudo_header,
    protocol, read16, write16,
};
use std::net::Ipv4Addr;

/// What to write into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// New Ethernet source.
    pub eth_src: Mac,
    /// New Ethernet destination.
    pub eth_dst: Mac,
    /// New IPv4 source.
    pub ip_src: Ipv4Addr,
    /// New IPv4 destination.
    pub ip_dst: Ipv4Addr,
    /// Decrement the TTL (a hop the packet makes through the forwarder).
    pub decrement_ttl: bool,
    /// The TCP/UDP checksum field holds the partial pseudo-header sum of checksum offload
    /// (not complemented, completed later by whoever segments or sends the packet), not a
    /// finished checksum: it is updated as a sum.
    pub l4_partial: bool,
}

/// Applies `r` to `frame` (Ethernet header, then a checked, unfragmented IPv4 packet).
pub fn apply(frame: &mut [u8], r: &Rewrite) {
    frame[eth_field::DST].copy_from_slice(&r.eth_dst);
    frame[eth_field::SRC].copy_from_slice(&r.eth_src);
    let ip = &mut frame[ETH_HEADER_LEN..];
    let ihl = usize::from(ip[ipv4_field::VER_IHL] & 0x0f) * 4;
    let total = usize::from(read16(ip, ipv4_field::LENGTH).unwrap_or(0));
    let old_src: [u8; 4] = ip[ipv4_field::SRC].try_into().unwrap_or_default();
    let old_dst: [u8; 4] = ip[ipv4_field::DST].try_into().unwrap_or_default();
    let (new_src, new_dst) = (r.ip_src.octets(), r.ip_dst.octets());
    let proto = ip[ipv4_field::PROTOCOL];

    let mut hc = read16(ip, ipv4_field::CHECKSUM).unwrap_or(0);
    if r.decrement_ttl {
        let old = read16(ip, ipv4_field::TTL_PROTO).unwrap_or(0);
        ip[ipv4_field::TTL] = ip[ipv4_field::TTL].saturating_sub(1);
        let new = read16(ip, ipv4_field::TTL_PROTO).unwrap_or(0);
        hc = update16(hc, old, new);
    }
    hc = update32(hc, old_src, new_src);
    hc = update32(hc, old_dst, new_dst);
    ip[ipv4_field::SRC].copy_from_slice(&new_src);
    ip[ipv4_field::DST].copy_from_slice(&new_dst);
    write16(ip, ipv4_field::CHECKSUM, hc);

    if !l4_uses_pseudo_header(proto) {
        return;
    }
    let Some(f) = l4_checksum_field(proto) else {
        return;
    };
    let Some(l4) = ip.get_mut(ihl..total) else {
        return;
    };
    let Some(c) = read16(l4, f.clone()) else {
        return;
    };
    if r.l4_partial {
        // A sum S, not a checksum: S' = S + ~old + new, which is update32 on ~S.
        let c = !update32(update32(!c, old_src, new_src), old_dst, new_dst);
        write16(l4, f, c);
        return;
    }
    if proto == protocol::UDP && c == 0 {
        return;
    }
    let mut c = update32(c, old_src, new_src);
    c = update32(c, old_dst, new_dst);
    if proto == protocol::UDP && c == 0 {
        c = 0xffff;
    }
    write16(l4, f, c);
}

/// Computes the TCP/UDP checksum of `frame` in full and writes it: for packets the kernel
/// handed over with the checksum still partial (`TP_STATUS_CSUMNOTREADY`, checksum
/// offload between local sockets and a veth). Returns false when the L4 header is not
/// there (nothing written). ICMP has no offload and is left alone.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let Some(ip) = frame.get_mut(ETH_HEADER_LEN..) else {
        return false;
    };
    if ip.len() < IPV4_MIN_HEADER {
        return false;
    }
    let ihl = usize::from(ip[ipv4_field::VER_IHL] & 0x0f) * 4;
    let total = usize::from(read16(ip, ipv4_field::LENGTH).unwrap_or(0));
    let proto = ip[ipv4_field::PROTOCOL];
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[ipv4_field::SRC]).unwrap_or_default());
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&ip[ipv4_field::DST]).unwrap_or_default());
    let (Some(f), true) = (l4_checksum_field(proto), l4_uses_pseudo_header(proto)) else {
        return false;
    };
    let Some(l4) = ip.get_mut(ihl..total) else {
        return false;
    };
    if l4.len() < f.end {
        return false;
    }
    write16(l4, f.clone(), 0);
    let len = u16::try_from(l4.len()).unwrap_or(u16::MAX);
    let mut c = !checksum::fold(checksum::sum(
        checksum::pseudo_header(src, dst, proto, len),
        l4,
    ));
    if proto == protocol::UDP && c == 0 {
        c = 0xffff;
    }
    write16(l4, f, c);
    true
}

/// Whether the IPv4 header checksum and the ICMP/TCP/UDP checksum of `frame` verify (a UDP
/// checksum of 0 counts as valid). For tests and for checking frames built by hand.
pub fn checksums_valid(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(ETH_HEADER_LEN..) else {
        return false;
    };
    let Ok(v) = crate::wire::Ipv4::new_checked(ip) else {
        return false;
    };
    let l4 = v.payload();
    let proto = v.protocol();
    let Some(f) = l4_checksum_field(proto) else {
        return true;
    };
    let Some(c) = read16(l4, f) else {
        return false;
    };
    if proto == protocol::UDP && c == 0 {
        return true;
    }
    let acc = if l4_uses_pseudo_header(proto) {
        checksum::pseudo_header(v.src(), v.dst(), proto, l4.len() as u16)
    } else {
        0
    };
    checksum::fold(checksum::sum(acc, l4)) == 0xffff
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Ipv4;
    use proptest::prelude::*;

    /// An Ethernet/IPv4 frame with `payload` as the L4 segment, all checksums computed in full.
    pub(crate) fn frame(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        ttl: u8,
        l4: &[u8],
        udp_zero: bool,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = ttl;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let c = checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(l4);
        if let Some(fld) = l4_checksum_field(proto)
            && l4.len() >= fld.end
        {
            if udp_zero && proto == protocol::UDP {
                write16(&mut f[34..], fld, 0);
            } else if l4_uses_pseudo_header(proto) {
                complete_l4_checksum(&mut f);
            } else {
                write16(&mut f[34..], fld.clone(), 0);
                let c = checksum::checksum(&f[34..]);
                write16(&mut f[34..], fld, c);
            }
        }
        f
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn rw(src: &str, dst: &str) -> Rewrite {
        Rewrite {
            eth_src: [2, 0, 0, 0, 0, 0xc],
            eth_dst: [2, 0, 0, 0, 0, 0xb],
            ip_src: ip(src),
            ip_dst: ip(dst),
            decrement_ttl: true,
            l4_partial: false,
        }
    }

    #[test]
    fn tcp_udp_icmp_rewrites_verify() {
        for proto in [protocol::TCP, protocol::UDP, protocol::ICMP] {
            let l4 = vec![0x5a; 40];
            let mut f = frame(ip("10.9.0.2"), ip("10.9.0.1"), proto, 64, &l4, false);
            assert!(checksums_valid(&f));
            apply(&mut f, &rw("10.9.0.1", "10.9.0.3"));
            assert!(checksums_valid(&f), "proto {proto}");
            let v = Ipv4::new_checked(&f[14..]).unwrap();
            assert_eq!(
                (v.src(), v.dst(), v.ttl()),
                (ip("10.9.0.1"), ip("10.9.0.3"), 63)
            );
            assert_eq!(&f[0..12], &[2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xc]);
        }
    }

    #[test]
    fn udp_checksum_zero_stays_zero() {
        let mut f = frame(
            ip("10.9.0.2"),
            ip("10.9.0.1"),
            protocol::UDP,
            64,
            &[1; 12],
            true,
        );
        apply(&mut f, &rw("10.9.0.1", "10.9.0.3"));
        assert_eq!(read16(&f[34..], 6..8), Some(0));
        assert!(checksums_valid(&f));
    }

    #[test]
    fn completes_a_partial_checksum() {
        let mut f = frame(
            ip("10.9.0.2"),
            ip("10.9.0.1"),
            protocol::TCP,
            64,
            &[7; 33],
            false,
        );
        let good = f.clone();
        // What the kernel leaves with offload: the folded pseudo-header sum, not complemented.
        let len = 33u16;
        let partial = checksum::fold(checksum::pseudo_header(
            ip("10.9.0.2"),
            ip("10.9.0.1"),
            6,
            len,
        ));
        write16(&mut f[34..], 16..18, partial);
        assert!(!checksums_valid(&f));
        assert!(complete_l4_checksum(&mut f));
        assert_eq!(f, good);
    }

    #[test]
    fn a_partial_sum_is_updated_as_a_sum() {
        let mut f = frame(
            ip("10.9.0.2"),
            ip("10.9.0.1"),
            protocol::TCP,
            64,
            &[7; 33],
            false,
        );
        let sum = |a: &str, b: &str| checksum::fold(checksum::pseudo_header(ip(a), ip(b), 6, 33));
        write16(&mut f[34..], 16..18, sum("10.9.0.2", "10.9.0.1"));
        let r = Rewrite {
            l4_partial: true,
            ..rw("10.9.0.1", "10.9.0.3")
        };
        apply(&mut f, &r);
        assert_eq!(read16(&f[34..], 16..18), Some(sum("10.9.0.1", "10.9.0.3")));
        // Completing it then gives the right checksum.
        assert!(complete_l4_checksum(&mut f));
        assert!(checksums_valid(&f));
    }

    proptest! {
        /// Any rewrite of any TCP/UDP/ICMP packet equals a full recomputation of its checksums.
        #[test]
        fn incremental_equals_full(
            proto in prop::sample::select(vec![protocol::TCP, protocol::UDP, protocol::ICMP]),
            l4 in proptest::collection::vec(any::<u8>(), 20..300),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            nsrc in any::<[u8; 4]>(), ndst in any::<[u8; 4]>(),
            ttl in 2u8..=255, udp_zero in any::<bool>(),
        ) {
            let mut f = frame(src.into(), dst.into(), proto, ttl, &l4, udp_zero);
            let r = Rewrite {
                eth_src: [1; 6], eth_dst: [3; 6],
                ip_src: nsrc.into(), ip_dst: ndst.into(), decrement_ttl: true, l4_partial: false,
            };
            apply(&mut f, &r);
            prop_assert!(checksums_valid(&f));
            // And the same bytes as building the rewritten packet from scratch, up to the
            // one's-complement zero (0x0000 vs 0xffff) where the two may differ.
            let mut want = frame(nsrc.into(), ndst.into(), proto, ttl - 1, &l4, udp_zero);
            want[0..6].copy_from_slice(&[3; 6]);
            want[6..12].copy_from_slice(&[1; 6]);
            let ipc = |b: &[u8]| read16(&b[14..], 10..12).unwrap();
            prop_assert!(ipc(&f) == ipc(&want) || ipc(&f) ^ ipc(&want) == 0xffff);
            let fld = l4_checksum_field(proto).unwrap();
            let (a, b) = (read16(&f[34..], fld.clone()).unwrap(), read16(&want[34..], fld.clone()).unwrap());
            prop_assert!(a == b || (a ^ b == 0xffff && (a == 0 || b == 0)), "{a:#x} {b:#x}");
            f[34 + fld.start..34 + fld.end].fill(0);
            f[24..26].fill(0);
            want[34 + fld.start..34 + fld.end].fill(0);
            want[24..26].fill(0);
            prop_assert_eq!(f, want);
        }
    }
}
