//! ICMP and ICMPv6 errors a hop sends about a packet it could not pass on (RFC 792,
//! RFC 1812 4.3.2.3, RFC 4443): time exceeded, and fragmentation needed / packet too big.

use std::net::IpAddr;

use crate::checksum;
use crate::{Mac, ethernet, ethertype, icmpv4, icmpv6, ip_protocol, ipv4, ipv6};

/// Why the packet went no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Its TTL or hop limit ran out here (traceroute's answer).
    TimeExceeded,
    /// Larger than the next hop takes, and it may not be fragmented (IPv4 DF, or IPv6):
    /// `mtu` is what the next hop takes (path-MTU discovery).
    TooBig {
        /// The next hop's MTU.
        mtu: u32,
    },
}

/// An error to write about `quote`, the offending IP packet (from its IP header on).
#[derive(Debug, Clone, Copy)]
pub struct IcmpError<'a> {
    /// Ethernet source (this hop).
    pub eth_src: Mac,
    /// Ethernet destination (the hop the packet came from).
    pub eth_dst: Mac,
    /// This hop's address, of the quoted packet's family.
    pub src: IpAddr,
    /// The quoted packet's source.
    pub dst: IpAddr,
    /// Why.
    pub kind: IcmpErrorKind,
    /// The offending packet, IP header first; only its start is quoted.
    pub quote: &'a [u8],
}

/// IPv4: as much of the packet as fits in 576 bytes (RFC 1812 4.3.2.3).
const V4_MAX_IP: usize = 576;
/// IPv6: as much as fits in the minimum MTU (RFC 4443 2.4 c).
const V6_MAX_IP: usize = 1280;
/// Ethernet's minimum frame, without FCS.
const MIN_FRAME: usize = 60;

impl IcmpError<'_> {
    fn quoted(&self) -> usize {
        let room = match self.src {
            IpAddr::V4(_) => V4_MAX_IP - ipv4::MIN_HEADER_LEN - crate::icmp::HEADER_LEN,
            IpAddr::V6(_) => V6_MAX_IP - ipv6::HEADER_LEN - crate::icmp::HEADER_LEN,
        };
        self.quote.len().min(room)
    }

    /// Bytes of the frame [`emit_icmp_error`] writes.
    pub fn frame_len(&self) -> usize {
        let ip = match self.src {
            IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        };
        (ethernet::HEADER_LEN + ip + crate::icmp::HEADER_LEN + self.quoted()).max(MIN_FRAME)
    }
}

/// Writes `e` as an Ethernet frame into `buf` (at least [`IcmpError::frame_len`] bytes)
/// with its checksums; returns the frame length. `None` when the addresses are not of
/// one family.
pub fn emit_icmp_error(buf: &mut [u8], e: &IcmpError<'_>) -> Option<usize> {
    let len = e.frame_len();
    let q = e.quoted();
    let f = &mut buf[..len];
    f.fill(0);
    f[ethernet::field::DST].copy_from_slice(&e.eth_dst);
    f[ethernet::field::SRC].copy_from_slice(&e.eth_src);
    let msg_len = crate::icmp::HEADER_LEN + q;
    match (e.src, e.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            f[ethernet::field::ETHERTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            let ip = &mut f[ethernet::HEADER_LEN..];
            let h = ipv4::MIN_HEADER_LEN;
            ip[0] = 0x45;
            // Network control (RFC 791 precedence 6), as routers mark their ICMP errors.
            ip[1] = 0xc0;
            ip[ipv4::field::LENGTH].copy_from_slice(&((h + msg_len) as u16).to_be_bytes());
            ip[ipv4::field::TTL] = 64;
            ip[ipv4::field::PROTOCOL] = ip_protocol::ICMP;
            ip[ipv4::field::SRC].copy_from_slice(&src.octets());
            ip[ipv4::field::DST].copy_from_slice(&dst.octets());
            let c = checksum::checksum(&ip[..h]);
            ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            let msg = &mut ip[h..h + msg_len];
            match e.kind {
                IcmpErrorKind::TimeExceeded => msg[0] = icmpv4::TIME_EXCEEDED,
                IcmpErrorKind::TooBig { mtu } => {
                    msg[0] = icmpv4::DST_UNREACHABLE;
                    msg[1] = 4;
                    msg[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_be_bytes());
                }
            }
            msg[crate::icmp::HEADER_LEN..].copy_from_slice(&e.quote[..q]);
            let c = checksum::checksum(msg);
            msg[crate::icmp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            f[ethernet::field::ETHERTYPE].copy_from_slice(&ethertype::IPV6.to_be_bytes());
            let ip = &mut f[ethernet::HEADER_LEN..];
            let h = ipv6::HEADER_LEN;
            ip[0] = 0x60;
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&(msg_len as u16).to_be_bytes());
            ip[ipv6::field::NEXT_HEADER] = ip_protocol::ICMPV6;
            ip[ipv6::field::HOP_LIMIT] = 64;
            ip[ipv6::field::SRC].copy_from_slice(&src.octets());
            ip[ipv6::field::DST].copy_from_slice(&dst.octets());
            let msg = &mut ip[h..h + msg_len];
            match e.kind {
                IcmpErrorKind::TimeExceeded => msg[0] = icmpv6::TIME_EXCEEDED,
                IcmpErrorKind::TooBig { mtu } => {
                    msg[0] = icmpv6::PACKET_TOO_BIG;
                    msg[4..8].copy_from_slice(&mtu.to_be_bytes());
                }
            }
            msg[crate::icmp::HEADER_LEN..].copy_from_slice(&e.quote[..q]);
            let acc = checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, msg_len as u32);
            let c = !checksum::fold(checksum::sum(acc, msg));
            msg[crate::icmp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        _ => return None,
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_packet(len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p
    }

    #[test]
    fn time_exceeded_v4_quotes_at_most_576_bytes_with_valid_checksums() {
        let quote = v4_packet(1000);
        let e = IcmpError {
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            kind: IcmpErrorKind::TimeExceeded,
            quote: &quote,
        };
        let mut buf = vec![0u8; 2000];
        let n = emit_icmp_error(&mut buf, &e).unwrap();
        assert_eq!(n, 14 + 576);
        let ip = crate::Ipv4::new_checked(&buf[14..n]).unwrap();
        assert_eq!(ip.total_len(), 576);
        assert_eq!(checksum::checksum(&buf[14..34]), 0, "IP header checksum");
        let msg = &buf[34..n];
        assert_eq!((msg[0], msg[1]), (icmpv4::TIME_EXCEEDED, 0));
        assert_eq!(checksum::checksum(msg), 0, "ICMP checksum");
        assert_eq!(&msg[8..], &quote[..576 - 28]);
    }

    #[test]
    fn too_big_v6_carries_the_mtu_and_a_valid_checksum_and_short_frames_are_padded() {
        let quote = [0x60u8; 48];
        let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let e = IcmpError {
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            src: src.into(),
            dst: dst.into(),
            kind: IcmpErrorKind::TooBig { mtu: 1400 },
            quote: &quote,
        };
        let mut buf = vec![0u8; 2000];
        let n = emit_icmp_error(&mut buf, &e).unwrap();
        assert_eq!(n, 14 + 40 + 8 + 48);
        let msg = &buf[54..n];
        assert_eq!(msg[0], icmpv6::PACKET_TOO_BIG);
        assert_eq!(u32::from_be_bytes(msg[4..8].try_into().unwrap()), 1400);
        let acc = checksum::pseudo_header_v6(src, dst, ip_protocol::ICMPV6, msg.len() as u32);
        assert!(checksum::verifies(acc, msg));

        let e = IcmpError {
            quote: &quote[..8],
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            ..e
        };
        assert_eq!(
            emit_icmp_error(&mut buf, &e),
            Some(60),
            "padded to the minimum"
        );
        let mixed = IcmpError {
            dst: dst.into(),
            ..e
        };
        assert_eq!(emit_icmp_error(&mut buf, &mixed), None);
    }
}
