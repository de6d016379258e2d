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
    /// The don't-fragment flag (path-MTU discovery asks routers for an error instead).
    pub fn dont_fragment(&self) -> bool {
        get16(self.0.as_ref(), ipv4_field::FLAGS_FRAG) & 0x4000 != 0
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

/// Whether `t` is a VLAN tag's TPID (802.1Q, 802.1ad or the pre-standard QinQ).
#[inline]
pub fn is_vlan_tpid(t: u16) -> bool {
    matches!(t, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD)
}

/// Most VLAN tags a frame may carry here (QinQ: an outer and an inner one).
pub const MAX_VLAN_TAGS: usize = 2;

/// The VLAN tags of a frame as the wire carries them (TPID and TCI each, outer first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct VlanTags {
    bytes: [u8; crate::vlan::TAG_LEN * MAX_VLAN_TAGS],
    len: u8,
}

impl VlanTags {
    /// No tag.
    pub const NONE: Self = Self {
        bytes: [0; crate::vlan::TAG_LEN * MAX_VLAN_TAGS],
        len: 0,
    };

    /// The tags of `frame` (after its MAC addresses) and the EtherType after them; `None`
    /// when the frame is cut inside a tag or carries more than [`MAX_VLAN_TAGS`].
    pub fn of(frame: &[u8]) -> Option<(Self, u16)> {
        let mut t = Self::NONE;
        let mut at = eth_field::ETHERTYPE.start;
        let mut kind = read16(frame, eth_field::ETHERTYPE)?;
        while is_vlan_tpid(kind) {
            let n = usize::from(t.len);
            if n == t.bytes.len() {
                return None;
            }
            let tag = frame.get(at..at + crate::vlan::TAG_LEN)?;
            t.bytes[n..n + crate::vlan::TAG_LEN].copy_from_slice(tag);
            t.len += crate::vlan::TAG_LEN as u8;
            at += crate::vlan::TAG_LEN;
            kind = read16(frame, at..at + 2)?;
        }
        Some((t, kind))
    }

    /// `tag` (TPID and TCI, as on the wire) outside these tags; `None` when that makes
    /// more than [`MAX_VLAN_TAGS`].
    pub fn with_outer_tag(&self, tag: [u8; 4]) -> Option<Self> {
        let n = self.len();
        if n + tag.len() > self.bytes.len() {
            return None;
        }
        let mut t = Self::NONE;
        t.bytes[..4].copy_from_slice(&tag);
        t.bytes[4..4 + n].copy_from_slice(self.as_bytes());
        t.len = self.len + 4;
        Some(t)
    }

    /// One 802.1Q tag with VLAN ID `vid` (priority 0).
    pub fn dot1q(vid: u16) -> Self {
        let mut t = Self::NONE;
        t.bytes[..2].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        t.bytes[2..4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
        t.len = crate::vlan::TAG_LEN as u8;
        t
    }

    /// The tags, outer first, as on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Bytes the tags take.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there is no tag.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The outer tag's VLAN ID.
    pub fn outer_vid(&self) -> Option<u16> {
        (self.len > 0).then(|| u16::from_be_bytes([self.bytes[2], self.bytes[3]]) & 0x0fff)
    }

    /// These tags with the outer VLAN ID set to `vid` (priority and inner tags kept), a new
    /// 802.1Q tag when there was none; `None` takes the outer tag off.
    #[must_use]
    pub fn with_outer_vid(&self, vid: Option<u16>) -> Self {
        match (vid, self.len) {
            (None, 0) => *self,
            (None, _) => {
                let mut t = Self::NONE;
                let rest = &self.as_bytes()[crate::vlan::TAG_LEN..];
                t.bytes[..rest.len()].copy_from_slice(rest);
                t.len = rest.len() as u8;
                t
            }
            (Some(v), 0) => Self::dot1q(v),
            (Some(v), _) => {
                let mut t = *self;
                let tci = u16::from_be_bytes([t.bytes[2], t.bytes[3]]) & 0xf000 | (v & 0x0fff);
                t.bytes[2..4].copy_from_slice(&tci.to_be_bytes());
                t
            }
        }
    }

    /// Writes `frame` (untagged) into `out` with these tags after its MAC addresses;
    /// `out` is `frame.len() + self.len()` bytes.
    pub fn insert(&self, frame: &[u8], out: &mut [u8]) {
        let macs = eth_field::SRC.end;
        out[..macs].copy_from_slice(&frame[..macs]);
        out[macs..macs + self.len()].copy_from_slice(self.as_bytes());
        out[macs + self.len()..].copy_from_slice(&frame[macs..]);
    }
}

#[cfg(test)]
mod vlan_tests {
    use super::*;

    #[test]
    fn tags_parse_map_and_insert() {
        // QinQ: outer 802.1ad VID 10 priority 5, inner 802.1Q VID 100, then IPv4.
        let mut f = vec![1u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0xa0, 10, 0x81, 0x00, 0, 100, 0x08, 0x00, 0x45]);
        let (t, kind) = VlanTags::of(&f).unwrap();
        assert_eq!(
            (t.len(), kind, t.outer_vid()),
            (8, ethertype::IPV4, Some(10))
        );
        let m = t.with_outer_vid(Some(20));
        assert_eq!(m.as_bytes(), &[0x88, 0xa8, 0xa0, 20, 0x81, 0x00, 0, 100]);
        assert_eq!(t.with_outer_vid(None).outer_vid(), Some(100));
        assert_eq!(VlanTags::NONE.with_outer_vid(Some(7)), VlanTags::dot1q(7));
        let untagged = [&f[..12], &f[20..]].concat();
        let mut out = vec![0u8; untagged.len() + 8];
        t.insert(&untagged, &mut out);
        assert_eq!(out, f);
        // Three tags, or a frame cut inside one: refused.
        let mut three = f[..12].to_vec();
        three.extend_from_slice(&[0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 8, 0]);
        assert!(VlanTags::of(&three).is_none());
        assert!(VlanTags::of(&f[..15]).is_none());
        assert_eq!(
            VlanTags::of(&untagged).unwrap(),
            (VlanTags::NONE, ethertype::IPV4)
        );
    }
}
