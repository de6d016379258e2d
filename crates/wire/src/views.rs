//! Zero-copy views of the headers the forwarder reads and rewrites: Ethernet, ARP, IPv4,
//! and the checksum fields of ICMP, TCP and UDP.
//!
//! In the manner of smoltcp's `wire` module: each view wraps a byte buffer, `new_checked`
//! checks the length once, after which no accessor can panic; byte offsets come from the
//! crate's `field` tables. Setters exist only where the buffer is mutable.

use crate::{Field, arp::field as arp_field, ethernet::field as eth_field, ip_protocol};
use std::net::Ipv4Addr;

#[inline]
fn get16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}
#[inline]
fn set16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}
#[inline]
fn ip_at(b: &[u8], f: Field) -> Ipv4Addr {
    Ipv4Addr::new(b[f.start], b[f.start + 1], b[f.start + 2], b[f.start + 3])
}

/// A MAC address.
pub type Mac = [u8; 6];
/// The broadcast MAC address.
pub const BROADCAST: Mac = [0xff; 6];

/// Formats a MAC address the usual way (`02:00:00:00:00:01`).
pub fn mac_to_string(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub use crate::ethertype;
/// IP protocol numbers (the forwarder's name for [`crate::ip_protocol`]).
pub use crate::ip_protocol as protocol;

/// Length of an Ethernet II header (no VLAN tag: the kernel strips the outer tag).
pub const ETH_HEADER_LEN: usize = crate::ethernet::HEADER_LEN;

/// An Ethernet II frame.
#[derive(Debug)]
pub struct Ethernet<T>(T);

impl<T: AsRef<[u8]>> Ethernet<T> {
    /// A view, if `buf` holds at least a header.
    pub fn new_checked(buf: T) -> Option<Self> {
        (buf.as_ref().len() >= ETH_HEADER_LEN).then_some(Self(buf))
    }
    /// Destination MAC.
    pub fn dst(&self) -> Mac {
        self.0.as_ref()[eth_field::DST]
            .try_into()
            .unwrap_or_default()
    }
    /// Source MAC.
    pub fn src(&self) -> Mac {
        self.0.as_ref()[eth_field::SRC]
            .try_into()
            .unwrap_or_default()
    }
    /// EtherType.
    pub fn ethertype(&self) -> u16 {
        get16(self.0.as_ref(), eth_field::ETHERTYPE)
    }
    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.0.as_ref()[ETH_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ethernet<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, m: Mac) {
        self.0.as_mut()[eth_field::DST].copy_from_slice(&m);
    }
    /// Sets the source MAC.
    pub fn set_src(&mut self, m: Mac) {
        self.0.as_mut()[eth_field::SRC].copy_from_slice(&m);
    }
    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, t: u16) {
        set16(self.0.as_mut(), eth_field::ETHERTYPE, t);
    }
    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.0.as_mut()[ETH_HEADER_LEN..]
    }
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const ARP_LEN: usize = crate::arp::LEN;

/// ARP operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has TPA? Tell SPA.
    Request,
    /// SPA is at SHA.
    Reply,
}

/// An Ethernet/IPv4 ARP packet (RFC 826).
#[derive(Debug)]
pub struct Arp<T>(T);

impl<T: AsRef<[u8]>> Arp<T> {
    /// A view, if `buf` holds an Ethernet/IPv4 ARP request or reply.
    pub fn new_checked(buf: T) -> Option<Self> {
        let b = buf.as_ref();
        let ok = b.len() >= ARP_LEN
            && get16(b, arp_field::HTYPE) == 1
            && get16(b, arp_field::PTYPE) == ethertype::IPV4
            && b[arp_field::HLEN] == 6
            && b[arp_field::PLEN] == 4
            && matches!(get16(b, arp_field::OPER), 1 | 2);
        ok.then_some(Self(buf))
    }
    /// Request or reply.
    pub fn op(&self) -> ArpOp {
        if get16(self.0.as_ref(), arp_field::OPER) == 1 {
            ArpOp::Request
        } else {
            ArpOp::Reply
        }
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> Mac {
        self.0.as_ref()[arp_field::SHA]
            .try_into()
            .unwrap_or_default()
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip_at(self.0.as_ref(), arp_field::SPA)
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip_at(self.0.as_ref(), arp_field::TPA)
    }
}

/// Writes an Ethernet frame carrying an ARP packet into `buf` (at least
/// [`ARP_FRAME_LEN`] bytes); returns the frame length.
pub fn emit_arp(
    buf: &mut [u8],
    eth_dst: Mac,
    op: ArpOp,
    sender: (Mac, Ipv4Addr),
    target: (Mac, Ipv4Addr),
) -> usize {
    let f = &mut buf[..ARP_FRAME_LEN];
    f.fill(0);
    f[eth_field::DST].copy_from_slice(&eth_dst);
    f[eth_field::SRC].copy_from_slice(&sender.0);
    set16(f, eth_field::ETHERTYPE, ethertype::ARP);
    let a = &mut f[ETH_HEADER_LEN..];
    set16(a, arp_field::HTYPE, 1);
    set16(a, arp_field::PTYPE, ethertype::IPV4);
    a[arp_field::HLEN] = 6;
    a[arp_field::PLEN] = 4;
    set16(
        a,
        arp_field::OPER,
        match op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        },
    );
    a[arp_field::SHA].copy_from_slice(&sender.0);
    a[arp_field::SPA].copy_from_slice(&sender.1.octets());
    a[arp_field::THA].copy_from_slice(&target.0);
    a[arp_field::TPA].copy_from_slice(&target.1.octets());
    ARP_FRAME_LEN
}

/// An ARP frame padded to the Ethernet minimum (60 bytes without FCS).
pub const ARP_FRAME_LEN: usize = 60;

/// Byte offsets in the IPv4 header.
pub use crate::ipv4::field as ipv4_field;

/// Shortest IPv4 header.
pub const IPV4_MIN_HEADER: usize = crate::ipv4::MIN_HEADER_LEN;

/// Why an IPv4 header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Shorter than a header, version not 4, header length below 20, or total length
    /// outside the frame.
    Malformed,
    /// The header checksum does not verify.
    Checksum,
}

/// An IPv4 packet whose header length, total length and header checksum were checked.
#[derive(Debug)]
pub struct Ipv4<T>(T);

impl<T: AsRef<[u8]>> Ipv4<T> {
    /// Checks version, lengths (the buffer may hold Ethernet padding after the packet) and
    /// the header checksum.
    pub fn new_checked(buf: T) -> Result<Self, Ipv4Error> {
        let b = buf.as_ref();
        if b.len() < IPV4_MIN_HEADER || b[0] >> 4 != 4 {
            return Err(Ipv4Error::Malformed);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let total = usize::from(get16(b, ipv4_field::LENGTH));
        if ihl < IPV4_MIN_HEADER || total < ihl || total > b.len() {
            return Err(Ipv4Error::Malformed);
        }
        if crate::checksum::fold(crate::checksum::sum(0, &b[..ihl])) != 0xffff {
            return Err(Ipv4Error::Checksum);
        }
        Ok(Self(buf))
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.0.as_ref()[ipv4_field::VER_IHL] & 0x0f) * 4
    }
    /// Total length (header and payload).
    pub fn total_len(&self) -> usize {
        usize::from(get16(self.0.as_ref(), ipv4_field::LENGTH))
    }
    /// Whether this is a fragment (more fragments follow, or an offset other than 0).
    pub fn is_fragment(&self) -> bool {
        get16(self.0.as_ref(), ipv4_field::FLAGS_FRAG) & 0x3fff != 0
    }
    /// Fragment offset, in 8-byte units (0: the fragment that carries the L4 header).
    pub fn fragment_offset(&self) -> u16 {
        get16(self.0.as_ref(), ipv4_field::FLAGS_FRAG) & 0x1fff
    }
    /// TTL.
    pub fn ttl(&self) -> u8 {
        self.0.as_ref()[ipv4_field::TTL]
    }
    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.0.as_ref()[ipv4_field::PROTOCOL]
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        ip_at(self.0.as_ref(), ipv4_field::SRC)
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        ip_at(self.0.as_ref(), ipv4_field::DST)
    }
    /// Header checksum.
    pub fn checksum(&self) -> u16 {
        get16(self.0.as_ref(), ipv4_field::CHECKSUM)
    }
    /// The payload (up to the total length, without Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.0.as_ref()[self.header_len()..self.total_len()]
    }
}

/// Offset of the checksum field in an L4 header, and the shortest header that holds it.
#[inline]
pub fn l4_checksum_field(protocol: u8) -> Option<Field> {
    match protocol {
        ip_protocol::ICMP => Some(crate::icmp::field::CHECKSUM),
        ip_protocol::TCP => Some(crate::tcp::field::CHECKSUM),
        ip_protocol::UDP => Some(crate::udp::field::CHECKSUM),
        _ => None,
    }
}

/// Whether the L4 checksum of `protocol` covers the IPv4 pseudo-header.
#[inline]
pub fn l4_uses_pseudo_header(protocol: u8) -> bool {
    matches!(protocol, ip_protocol::TCP | ip_protocol::UDP)
}

/// Reads a big-endian u16 at `f` of `b`, if it lies inside.
#[inline]
pub fn read16(b: &[u8], f: Field) -> Option<u16> {
    let s = b.get(f)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Writes a big-endian u16 at `f` of `b` (the caller checked the bounds).
#[inline]
pub fn write16(b: &mut [u8], f: Field, v: u16) {
    set16(b, f, v);
}
