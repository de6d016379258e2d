//! Software TCP segmentation: a GSO/GRO super-packet (one TCP/IPv4 or TCP/IPv6 packet larger than the
//! MTU, as a veth hands over what a local sender's stack or GRO built) cut into segments
//! that fit, as the NIC would have on the wire.
//!
//! Each segment gets the headers of the original with its own IPv4 total length and
//! identification (+1 per segment) or IPv6 payload length, sequence number (+ payload offset), flags (FIN and PSH
//! on the last segment only, CWR on the first only) and both checksums computed in full.

use crate::checksum;
use crate::rewrite::complete_l4_checksum;
use crate::wire::tcp::MIN_HEADER_LEN as TCP_MIN_HEADER;
use crate::wire::tcp::field::{DATA_OFF, FLAGS as TCP_FLAGS, SEQ as TCP_SEQ};
use crate::wire::tcp::flags::{CWR, FIN, PSH};
use crate::wire::{ETH_HEADER_LEN, Ipv6, ipv4_field, ipv6, read16, write16};

/// Where the TCP header of `frame` (Ethernet, then an unfragmented TCP/IPv4 or TCP/IPv6
/// packet) starts and where the IP packet ends, both from the start of the IP header, and
/// whether it is IPv6.
pub(crate) fn tcp_at(frame: &[u8]) -> Option<(usize, usize, bool)> {
    let ip = frame.get(ETH_HEADER_LEN..)?;
    match read16(frame, crate::wire::ethernet::field::ETHERTYPE)? {
        crate::wire::ethertype::IPV4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(read16(ip, ipv4_field::LENGTH)?);
            Some((ihl, total, false))
        }
        crate::wire::ethertype::IPV6 => {
            let v = Ipv6::new_checked(ip).ok()?;
            let u = v.upper();
            (u.protocol == crate::wire::protocol::TCP && !v.is_fragment()).then_some((
                u.offset,
                v.total_len(),
                true,
            ))
        }
        _ => None,
    }
}

/// Cuts `frame` (Ethernet, then a checked, unfragmented TCP/IPv4 or TCP/IPv6 packet) into
/// segments whose IP packets fit `mtu`, building each in `buf` and handing it to `each`.
/// Returns the number of segments, 0 when the packet cannot be cut (headers alone exceed
/// the MTU, or the TCP header is malformed).
pub fn segment_tcp(
    frame: &[u8],
    mtu: usize,
    buf: &mut Vec<u8>,
    each: &mut dyn FnMut(&[u8]),
) -> usize {
    let Some((ihl, total, v6)) = tcp_at(frame) else {
        return 0;
    };
    let ip = &frame[ETH_HEADER_LEN..];
    let Some(tcp) = ip.get(ihl..total) else {
        return 0;
    };
    let Some(&off) = tcp.get(DATA_OFF) else {
        return 0;
    };
    let thl = usize::from(off >> 4) * 4;
    if thl < TCP_MIN_HEADER || thl > tcp.len() || ihl + thl >= mtu {
        return 0;
    }
    let payload = &tcp[thl..];
    let mss = mtu - ihl - thl;
    let hdr = ETH_HEADER_LEN + ihl + thl;
    let ident = read16(ip, ipv4_field::IDENT).unwrap_or(0);
    let seq = u32::from_be_bytes(tcp[TCP_SEQ].try_into().unwrap_or_default());
    let flags = tcp[TCP_FLAGS];
    let n = payload.len().div_ceil(mss).max(1);
    for (k, chunk) in payload.chunks(mss).enumerate() {
        buf.clear();
        buf.extend_from_slice(&frame[..hdr]);
        buf.extend_from_slice(chunk);
        let (last, first) = (k + 1 == n, k == 0);
        {
            let ip = &mut buf[ETH_HEADER_LEN..];
            if v6 {
                let plen = (ihl - ipv6::HEADER_LEN + thl + chunk.len()) as u16;
                write16(ip, ipv6::field::PAYLOAD_LEN, plen);
            } else {
                write16(ip, ipv4_field::LENGTH, (ihl + thl + chunk.len()) as u16);
                write16(ip, ipv4_field::IDENT, ident.wrapping_add(k as u16));
                write16(ip, ipv4_field::CHECKSUM, 0);
                let c = checksum::checksum(&ip[..ihl]);
                write16(ip, ipv4_field::CHECKSUM, c);
            }
            let t = &mut ip[ihl..];
            let s = seq.wrapping_add((k * mss) as u32);
            t[TCP_SEQ].copy_from_slice(&s.to_be_bytes());
            let mut f = flags;
            if !last {
                f &= !(FIN | PSH);
            }
            if !first {
                f &= !CWR;
            }
            t[TCP_FLAGS] = f;
        }
        complete_l4_checksum(buf);
        each(buf);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::checksums_valid;
    use crate::rewrite::tests::frame;
    use crate::wire::{Ipv4, protocol};

    #[test]
    fn cuts_a_super_packet_into_valid_segments() {
        let mut tcp = vec![0u8; 20];
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18 | FIN; // PSH ACK FIN
        let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
        tcp.extend_from_slice(&data);
        let f = frame(
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            protocol::TCP,
            64,
            &tcp,
            false,
        );
        let mut segs = Vec::new();
        let mut buf = Vec::new();
        let n = segment_tcp(&f, 1500, &mut buf, &mut |s| segs.push(s.to_vec()));
        assert_eq!(n, 3);
        let mut joined = Vec::new();
        for (k, s) in segs.iter().enumerate() {
            assert!(checksums_valid(s), "segment {k}");
            let v = Ipv4::new_checked(&s[14..]).unwrap();
            assert!(v.total_len() <= 1500);
            let t = v.payload();
            assert_eq!(
                u32::from_be_bytes(t[4..8].try_into().unwrap()),
                1000 + (k * 1460) as u32
            );
            assert_eq!(t[13] & (FIN | PSH) != 0, k == 2, "FIN/PSH on the last only");
            assert_eq!(read16(&s[14..], 4..6), Some(0x1234 + k as u16));
            joined.extend_from_slice(&t[20..]);
        }
        assert_eq!(joined, data);
    }
}
