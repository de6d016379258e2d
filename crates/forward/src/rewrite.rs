//! The address rewrite, in place on an Ethernet/IPv4 or Ethernet/IPv6 frame: new MACs,
//! new source and destination addresses, TTL or hop limit, and the checksums updated
//! incrementally (RFC 1624) from the words that changed: IPv4's header checksum, and the
//! TCP/UDP checksums (and ICMPv6's), which cover the addresses through the pseudo-header.
//! ICMPv4's checksum covers no addresses, so an echo's stays as it is. A UDP checksum of 0
//! over IPv4 ("none", RFC 768) stays 0, and an updated one that comes out 0 is sent as
//! 0xffff, as RFC 768 asks.
//!
//! Fragments: every fragment gets the new addresses; only the one carrying the L4 header
//! (offset 0) has a checksum to update, and updating it by the pseudo-header change is
//! exact, because the checksum covers the whole datagram and only the addresses changed.
//!
//! ICMP errors quote the packet that caused them; [`Rewrite::quoted`] rewrites the quoted
//! addresses (and the quoted IPv4 header and L4 checksums, incrementally, when the quote
//! holds them) to what the error's receiver sent, then the error's own checksum is
//! computed in full (errors are rare and short; the quote may be cut anywhere).
//!
//! The caller has checked the frame: an IP header that [`crate::wire::Ipv4::new_checked`]
//! or [`crate::wire::Ipv6::new_checked`] accepted.

use crate::checksum::{self, update_words, update16};
use crate::wire::ethernet::field as eth_field;
use crate::wire::ipv6::field as v6_field;
use crate::wire::{
    ETH_HEADER_LEN, IPV4_MIN_HEADER, Ipv6, Mac, ethertype, icmp, ipv4_field, ipv6,
    l4_checksum_field, protocol, read16, write16,
};
use std::net::IpAddr;

/// What to write into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// New Ethernet source.
    pub eth_src: Mac,
    /// New Ethernet destination.
    pub eth_dst: Mac,
    /// New source address (the frame's family).
    pub ip_src: IpAddr,
    /// New destination address.
    pub ip_dst: IpAddr,
    /// Decrement the TTL or hop limit (a hop the packet makes through the forwarder).
    pub decrement_ttl: bool,
    /// The TCP/UDP checksum field holds the partial pseudo-header sum of checksum offload
    /// (not complemented, completed later by whoever segments or sends the packet), not a
    /// finished checksum: it is updated as a sum.
    pub l4_partial: bool,
    /// For an ICMP error: the new source and destination of the packet it quotes.
    pub quoted: Option<(IpAddr, IpAddr)>,
}

/// Whether a TCP/UDP/ICMP checksum covers the addresses (through the pseudo-header).
fn pseudo(proto: u8) -> bool {
    matches!(proto, protocol::TCP | protocol::UDP | protocol::ICMPV6)
}

/// The checksum field of `proto`'s header (ICMPv6's sits where ICMP's does).
fn l4_field(proto: u8) -> Option<crate::wire::Field> {
    if proto == protocol::ICMPV6 {
        return Some(icmp::field::CHECKSUM);
    }
    l4_checksum_field(proto)
}

/// The IP version of `frame`'s packet, by its EtherType.
fn ip_version(frame: &[u8]) -> Option<u8> {
    match read16(frame, eth_field::ETHERTYPE)? {
        ethertype::IPV4 => Some(4),
        ethertype::IPV6 => Some(6),
        _ => None,
    }
}

/// Replaces the addresses at `src`/`dst` of `ip`; returns the old and new bytes of both
/// (the first `n`), which the caller feeds to the checksum updates that cover them.
fn swap_addresses(
    ip: &mut [u8],
    src: crate::wire::Field,
    dst: crate::wire::Field,
    new_src: &[u8],
    new_dst: &[u8],
) -> Option<([u8; 32], [u8; 32], usize)> {
    let n = new_src.len();
    if src.len() != n || dst.len() != new_dst.len() || ip.len() < dst.end.max(src.end) {
        return None;
    }
    let mut old = [0u8; 32];
    let mut new = [0u8; 32];
    old[..n].copy_from_slice(&ip[src.clone()]);
    old[n..2 * n].copy_from_slice(&ip[dst.clone()]);
    new[..n].copy_from_slice(new_src);
    new[n..2 * n].copy_from_slice(new_dst);
    ip[src].copy_from_slice(new_src);
    ip[dst].copy_from_slice(new_dst);
    Some((old, new, 2 * n))
}

/// Updates the L4 checksum at `f` of `l4` for the pseudo-header words `old` → `new`.
fn update_l4(
    l4: &mut [u8],
    proto: u8,
    f: crate::wire::Field,
    old: &[u8],
    new: &[u8],
    partial: bool,
    v4: bool,
) {
    let Some(c) = read16(l4, f.clone()) else {
        return;
    };
    if partial {
        // A sum S, not a checksum: S' = S + ~old + new, which is the update on ~S.
        write16(l4, f, !update_words(!c, old, new));
        return;
    }
    if v4 && proto == protocol::UDP && c == 0 {
        return;
    }
    let mut c = update_words(c, old, new);
    if proto == protocol::UDP && c == 0 {
        c = 0xffff;
    }
    write16(l4, f, c);
}

/// Applies `r` to `frame` (Ethernet header, then a checked IPv4 or IPv6 packet).
pub fn apply(frame: &mut [u8], r: &Rewrite) {
    frame[eth_field::DST].copy_from_slice(&r.eth_dst);
    frame[eth_field::SRC].copy_from_slice(&r.eth_src);
    match ip_version(frame) {
        Some(4) => apply_v4(&mut frame[ETH_HEADER_LEN..], r),
        Some(6) => apply_v6(&mut frame[ETH_HEADER_LEN..], r),
        _ => {}
    }
}

fn apply_v4(ip: &mut [u8], r: &Rewrite) {
    let (IpAddr::V4(new_src), IpAddr::V4(new_dst)) = (r.ip_src, r.ip_dst) else {
        return;
    };
    let ihl = usize::from(ip[ipv4_field::VER_IHL] & 0x0f) * 4;
    let total = usize::from(read16(ip, ipv4_field::LENGTH).unwrap_or(0));
    let proto = ip[ipv4_field::PROTOCOL];
    let first = read16(ip, ipv4_field::FLAGS_FRAG).unwrap_or(0) & 0x1fff == 0;

    let mut hc = read16(ip, ipv4_field::CHECKSUM).unwrap_or(0);
    if r.decrement_ttl {
        let old = read16(ip, ipv4_field::TTL_PROTO).unwrap_or(0);
        ip[ipv4_field::TTL] = ip[ipv4_field::TTL].saturating_sub(1);
        let new = read16(ip, ipv4_field::TTL_PROTO).unwrap_or(0);
        hc = update16(hc, old, new);
    }
    let Some((old, new, n)) = swap_addresses(
        ip,
        ipv4_field::SRC,
        ipv4_field::DST,
        &new_src.octets(),
        &new_dst.octets(),
    ) else {
        return;
    };
    hc = update_words(hc, &old[..n], &new[..n]);
    write16(ip, ipv4_field::CHECKSUM, hc);
    let Some(l4) = ip.get_mut(ihl..total) else {
        return;
    };
    if !first {
        return;
    }
    if let Some((qs, qd)) = r.quoted {
        if proto == protocol::ICMP {
            rewrite_quoted(l4, qs, qd);
            refresh_icmp(l4, None);
        }
        return;
    }
    if pseudo(proto)
        && let Some(f) = l4_field(proto)
    {
        update_l4(l4, proto, f, &old[..n], &new[..n], r.l4_partial, true);
    }
}

fn apply_v6(ip: &mut [u8], r: &Rewrite) {
    let (IpAddr::V6(new_src), IpAddr::V6(new_dst)) = (r.ip_src, r.ip_dst) else {
        return;
    };
    let Ok(v) = Ipv6::new_checked(&*ip) else {
        return;
    };
    let (upper, total) = (v.upper(), v.total_len());
    if r.decrement_ttl {
        ip[v6_field::HOP_LIMIT] = ip[v6_field::HOP_LIMIT].saturating_sub(1);
    }
    let Some((old, new, n)) = swap_addresses(
        ip,
        v6_field::SRC,
        v6_field::DST,
        &new_src.octets(),
        &new_dst.octets(),
    ) else {
        return;
    };
    if !upper.has_header() {
        return;
    }
    let Some(l4) = ip.get_mut(upper.offset..total) else {
        return;
    };
    if let Some((qs, qd)) = r.quoted
        && upper.protocol == protocol::ICMPV6
    {
        rewrite_quoted(l4, qs, qd);
        let len = l4.len() as u32;
        refresh_icmp(
            l4,
            Some(checksum::pseudo_header_v6(
                new_src,
                new_dst,
                protocol::ICMPV6,
                len,
            )),
        );
        return;
    }
    if pseudo(upper.protocol)
        && let Some(f) = l4_field(upper.protocol)
    {
        update_l4(
            l4,
            upper.protocol,
            f,
            &old[..n],
            &new[..n],
            r.l4_partial,
            false,
        );
    }
}

/// Recomputes the checksum of the ICMP message `msg` in full (`pseudo`: the IPv6
/// pseudo-header sum; ICMPv4 has none).
fn refresh_icmp(msg: &mut [u8], pseudo: Option<u64>) {
    if msg.len() < icmp::HEADER_LEN {
        return;
    }
    write16(msg, icmp::field::CHECKSUM, 0);
    let c = !checksum::fold(checksum::sum(pseudo.unwrap_or(0), msg));
    write16(msg, icmp::field::CHECKSUM, c);
}

/// Rewrites the addresses of the packet an ICMP error `msg` quotes (after the error's
/// 8-byte header) to `src` and `dst`, with the quoted IPv4 header checksum and the quoted
/// TCP/UDP checksum updated when the quote holds them.
fn rewrite_quoted(msg: &mut [u8], src: IpAddr, dst: IpAddr) {
    let Some(q) = msg.get_mut(icmp::HEADER_LEN..) else {
        return;
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            if q.len() < IPV4_MIN_HEADER || q[0] >> 4 != 4 {
                return;
            }
            let ihl = usize::from(q[ipv4_field::VER_IHL] & 0x0f) * 4;
            let proto = q[ipv4_field::PROTOCOL];
            let first = read16(q, ipv4_field::FLAGS_FRAG).unwrap_or(0) & 0x1fff == 0;
            let Some((old, new, n)) = swap_addresses(
                q,
                ipv4_field::SRC,
                ipv4_field::DST,
                &s.octets(),
                &d.octets(),
            ) else {
                return;
            };
            let hc = read16(q, ipv4_field::CHECKSUM).unwrap_or(0);
            write16(
                q,
                ipv4_field::CHECKSUM,
                update_words(hc, &old[..n], &new[..n]),
            );
            if first
                && pseudo(proto)
                && let Some(f) = l4_field(proto)
                && let Some(l4) = q.get_mut(ihl.max(IPV4_MIN_HEADER)..)
            {
                update_l4(l4, proto, f, &old[..n], &new[..n], false, true);
            }
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let Ok(v) = Ipv6::new_quoted(&*q) else {
                return;
            };
            let upper = v.upper();
            let Some((old, new, n)) =
                swap_addresses(q, v6_field::SRC, v6_field::DST, &s.octets(), &d.octets())
            else {
                return;
            };
            if upper.has_header()
                && pseudo(upper.protocol)
                && let Some(f) = l4_field(upper.protocol)
                && let Some(l4) = q.get_mut(upper.offset..)
            {
                update_l4(l4, upper.protocol, f, &old[..n], &new[..n], false, false);
            }
        }
        _ => {}
    }
}

/// The addresses of the packet an ICMP error `msg` quotes, if the quote holds them.
pub fn quoted_addresses(msg: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let q = msg.get(icmp::HEADER_LEN..)?;
    match q.first()? >> 4 {
        4 if q.len() >= IPV4_MIN_HEADER => Some((
            IpAddr::from(<[u8; 4]>::try_from(&q[ipv4_field::SRC]).ok()?),
            IpAddr::from(<[u8; 4]>::try_from(&q[ipv4_field::DST]).ok()?),
        )),
        6 if q.len() >= ipv6::HEADER_LEN => Some((
            IpAddr::from(<[u8; 16]>::try_from(&q[v6_field::SRC]).ok()?),
            IpAddr::from(<[u8; 16]>::try_from(&q[v6_field::DST]).ok()?),
        )),
        _ => None,
    }
}

/// The pseudo-header sum, L4 bytes and protocol of `frame`'s (unfragmented) packet.
fn l4_of(frame: &[u8]) -> Option<(u64, std::ops::Range<usize>, u8)> {
    let ip = frame.get(ETH_HEADER_LEN..)?;
    match ip_version(frame)? {
        4 => {
            let v = crate::wire::Ipv4::new_checked(ip).ok()?;
            let proto = v.protocol();
            let at = ETH_HEADER_LEN + v.header_len();
            let len = v.total_len() - v.header_len();
            let acc = if pseudo(proto) {
                checksum::pseudo_header(v.src(), v.dst(), proto, len as u16)
            } else {
                0
            };
            Some((acc, at..at + len, proto))
        }
        _ => {
            let v = Ipv6::new_checked(ip).ok()?;
            let u = v.upper();
            if !u.has_header() || v.is_fragment() {
                return None;
            }
            let len = v.total_len() - u.offset;
            let acc = checksum::pseudo_header_v6(v.src(), v.dst(), u.protocol, len as u32);
            let at = ETH_HEADER_LEN + u.offset;
            Some((acc, at..at + len, u.protocol))
        }
    }
}

/// Computes the TCP/UDP checksum of `frame` in full and writes it: for packets the kernel
/// handed over with the checksum still partial (`TP_STATUS_CSUMNOTREADY`, checksum
/// offload between local sockets and a veth). Returns false when the L4 header is not
/// there (nothing written). ICMP has no offload and is left alone.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let Some((acc, range, proto)) = l4_of(frame) else {
        return false;
    };
    let (Some(f), true) = (
        l4_checksum_field(proto),
        matches!(proto, protocol::TCP | protocol::UDP),
    ) else {
        return false;
    };
    let l4 = &mut frame[range];
    if l4.len() < f.end {
        return false;
    }
    write16(l4, f.clone(), 0);
    let mut c = !checksum::fold(checksum::sum(acc, l4));
    if proto == protocol::UDP && c == 0 {
        c = 0xffff;
    }
    write16(l4, f, c);
    true
}

/// Whether the IPv4 header checksum and the ICMP/ICMPv6/TCP/UDP checksum of `frame`
/// verify (a UDP checksum of 0 over IPv4 counts as valid). For tests and for checking
/// frames built by hand.
pub fn checksums_valid(frame: &[u8]) -> bool {
    let Some((acc, range, proto)) = l4_of(frame) else {
        return false;
    };
    let l4 = &frame[range];
    let Some(f) = l4_field(proto) else {
        return true;
    };
    let Some(c) = read16(l4, f) else {
        return false;
    };
    if proto == protocol::UDP && c == 0 {
        return ip_version(frame) == Some(4);
    }
    checksum::verifies(acc, l4)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{Ipv4, l4_uses_pseudo_header};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

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
            ip_src: ip(src).into(),
            ip_dst: ip(dst).into(),
            decrement_ttl: true,
            l4_partial: false,
            quoted: None,
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
                ip_src: Ipv4Addr::from(nsrc).into(), ip_dst: Ipv4Addr::from(ndst).into(), decrement_ttl: true, l4_partial: false, quoted: None,
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
