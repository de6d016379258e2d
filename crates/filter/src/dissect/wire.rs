//! Zero-copy views of the headers the filters read, in the smoltcp style: a view is
//! made by `new_checked`, which checks the length once, after which no accessor can
//! panic. Byte offsets come from `wirecap-wire`'s `field` tables (the one owner of the
//! layouts); these views stay here because they are the dissector's hot path: read-only,
//! `Copy`, borrowing the packet for `'a` so that each layer's payload outlives its view.

use std::net::{Ipv4Addr, Ipv6Addr};
use wirecap_wire::{arp, ethernet, icmp, ipv4, ipv6, tcp, udp, vlan};

/// The buffer is shorter than the header needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

type Field = std::ops::Range<usize>;

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    // Callers only pass offsets covered by `new_checked`; `0` keeps this panic-free anyway.
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[inline]
fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline]
fn array<const N: usize>(b: &[u8], f: Field) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(f)
        && s.len() == N
    {
        out.copy_from_slice(s);
    }
    out
}

#[inline]
fn rest(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident, $min:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a> {
            buf: &'a [u8],
        }
        impl<'a> $name<'a> {
            /// Minimum length of this header.
            pub const MIN_LEN: usize = $min;
            /// Checks that `buf` holds at least the fixed part of the header.
            pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
                if buf.len() < Self::MIN_LEN {
                    Err(Truncated)
                } else {
                    Ok(Self { buf })
                }
            }
            /// The underlying bytes (header and everything after it).
            pub fn as_bytes(&self) -> &'a [u8] {
                self.buf
            }
        }
    };
}

view!(
    /// Ethernet II / 802.3 header.
    EthernetFrame,
    ethernet::HEADER_LEN
);
impl<'a> EthernetFrame<'a> {
    /// Destination address.
    pub fn dst(&self) -> MacAddr {
        MacAddr(array(self.buf, ethernet::field::DST))
    }
    /// Source address.
    pub fn src(&self) -> MacAddr {
        MacAddr(array(self.buf, ethernet::field::SRC))
    }
    /// EtherType (or an 802.3 length when ≤ 1500).
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, ethernet::field::ETHERTYPE.start)
    }
    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, ethernet::HEADER_LEN)
    }
}

view!(
    /// One 802.1Q / 802.1ad tag (the 4 bytes after a VLAN TPID: TCI and inner type).
    VlanTag,
    vlan::HEADER_LEN
);
impl<'a> VlanTag<'a> {
    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(self.buf, vlan::field::TCI.start) & 0x0fff
    }
    /// Priority code point.
    pub fn pcp(&self) -> u8 {
        byte(self.buf, vlan::field::TCI.start) >> 5
    }
    /// The EtherType of what follows the tag.
    pub fn ethertype(&self) -> u16 {
        be16(self.buf, vlan::field::ETHERTYPE.start)
    }
    /// What follows the tag.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, vlan::HEADER_LEN)
    }
}

view!(
    /// One MPLS label stack entry.
    MplsEntry,
    4
);
impl<'a> MplsEntry<'a> {
    /// The 20-bit label.
    pub fn label(&self) -> u32 {
        be32(self.buf, 0) >> 12
    }
    /// Traffic class.
    pub fn tc(&self) -> u8 {
        (byte(self.buf, 2) >> 1) & 0x07
    }
    /// Bottom-of-stack bit.
    pub fn bottom(&self) -> bool {
        byte(self.buf, 2) & 0x01 != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        byte(self.buf, 3)
    }
    /// What follows this entry.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, 4)
    }
}

view!(
    /// PPPoE session header plus the PPP protocol field.
    PppoeSession,
    8
);
impl<'a> PppoeSession<'a> {
    /// PPPoE session id.
    pub fn session_id(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// PPP protocol number (0x0021 IPv4, 0x0057 IPv6).
    pub fn ppp_protocol(&self) -> u16 {
        be16(self.buf, 6)
    }
    /// The PPP payload.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, 8)
    }
}

view!(
    /// Linux "cooked" capture header, version 1 (`LINKTYPE_LINUX_SLL`).
    SllHeader,
    16
);
impl<'a> SllHeader<'a> {
    /// ARPHRD type of the device.
    pub fn hatype(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// Protocol (an EtherType for most devices).
    pub fn protocol(&self) -> u16 {
        be16(self.buf, 14)
    }
    /// What follows the header.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, 16)
    }
}

view!(
    /// Linux "cooked" capture header, version 2 (`LINKTYPE_LINUX_SLL2`).
    Sll2Header,
    20
);
impl<'a> Sll2Header<'a> {
    /// Protocol (an EtherType for most devices).
    pub fn protocol(&self) -> u16 {
        be16(self.buf, 0)
    }
    /// ARPHRD type of the device.
    pub fn hatype(&self) -> u16 {
        be16(self.buf, 8)
    }
    /// What follows the header.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, 20)
    }
}

view!(
    /// IPv4 header, fixed part (options are reached through [`Ipv4Packet::header_len`]).
    Ipv4Packet,
    ipv4::MIN_HEADER_LEN
);
impl<'a> Ipv4Packet<'a> {
    /// Version nibble (4 for a well-formed packet).
    pub fn version(&self) -> u8 {
        byte(self.buf, ipv4::field::VER_IHL) >> 4
    }
    /// Header length in bytes (IHL × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(byte(self.buf, ipv4::field::VER_IHL) & 0x0f) * 4
    }
    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buf, ipv4::field::LENGTH.start)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buf, ipv4::field::IDENT.start)
    }
    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        byte(self.buf, ipv4::field::FLAGS_FRAG.start) & 0x20 != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buf, ipv4::field::FLAGS_FRAG.start) & 0x1fff
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        byte(self.buf, ipv4::field::TTL)
    }
    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        byte(self.buf, ipv4::field::PROTOCOL)
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buf, ipv4::field::SRC))
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buf, ipv4::field::DST))
    }
    /// The payload after the header and its options; `None` when the header length
    /// field is below 20 or the options are cut off.
    pub fn payload(&self) -> Option<&'a [u8]> {
        let hl = self.header_len();
        if hl < Self::MIN_LEN {
            return None;
        }
        self.buf.get(hl..)
    }
}

view!(
    /// IPv6 fixed header.
    Ipv6Packet,
    ipv6::HEADER_LEN
);
impl<'a> Ipv6Packet<'a> {
    /// Version nibble (6 for a well-formed packet).
    pub fn version(&self) -> u8 {
        byte(self.buf, ipv6::field::VER_TC_FLOW.start) >> 4
    }
    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        be16(self.buf, ipv6::field::PAYLOAD_LEN.start)
    }
    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        byte(self.buf, ipv6::field::NEXT_HEADER)
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        byte(self.buf, ipv6::field::HOP_LIMIT)
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.buf, ipv6::field::SRC))
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.buf, ipv6::field::DST))
    }
    /// What follows the fixed header.
    pub fn payload(&self) -> &'a [u8] {
        rest(self.buf, ipv6::HEADER_LEN)
    }
}

/// IPv6 extension header numbers the dissector walks through (they are IP protocol
/// numbers).
pub use wirecap_wire::ip_protocol as ipv6_ext;

view!(
    /// A generic IPv6 extension header (hop-by-hop, routing, fragment, destination
    /// options, AH); the length rule depends on the kind.
    Ipv6ExtHeader,
    ipv6::EXT_MIN_LEN
);
impl<'a> Ipv6ExtHeader<'a> {
    /// Next header.
    pub fn next_header(&self) -> u8 {
        byte(self.buf, ipv6::ext_field::NEXT_HEADER)
    }
    /// Length in bytes of this extension header of kind `kind`.
    pub fn header_len(&self, kind: u8) -> usize {
        let n = usize::from(byte(self.buf, ipv6::ext_field::LENGTH));
        match kind {
            ipv6_ext::FRAGMENT => 8,
            // AH counts 4-byte words minus 2.
            ipv6_ext::AH => (n + 2) * 4,
            _ => (n + 1) * 8,
        }
    }
    /// For a fragment header: the fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buf, ipv6::ext_field::FRAG_OFFSET.start) >> 3
    }
    /// For a fragment header: the more-fragments flag.
    pub fn more_frags(&self) -> bool {
        byte(self.buf, ipv6::ext_field::FRAG_OFFSET.end - 1) & 0x01 != 0
    }
}

view!(
    /// TCP header, fixed part.
    TcpSegment,
    tcp::MIN_HEADER_LEN
);
impl<'a> TcpSegment<'a> {
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf, tcp::field::SRC_PORT.start)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, tcp::field::DST_PORT.start)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buf, tcp::field::SEQ.start)
    }
    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        be32(self.buf, tcp::field::ACK.start)
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(byte(self.buf, tcp::field::DATA_OFF) >> 4) * 4
    }
    /// The flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20,
    /// ECE 0x40, CWR 0x80).
    pub fn flags(&self) -> u8 {
        byte(self.buf, tcp::field::FLAGS)
    }
}

view!(
    /// The port pair that starts TCP, UDP and SCTP headers (all a filter needs when the
    /// rest of the header was cut off by the snap length).
    PortPair,
    4
);
impl<'a> PortPair<'a> {
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
}

view!(
    /// UDP header.
    UdpDatagram,
    udp::HEADER_LEN
);
impl<'a> UdpDatagram<'a> {
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf, udp::field::SRC_PORT.start)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, udp::field::DST_PORT.start)
    }
    /// Length field.
    pub fn len(&self) -> u16 {
        be16(self.buf, udp::field::LENGTH.start)
    }
    /// Always false: a checked view holds at least the 8-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

view!(
    /// ICMP, ICMPv6 or IGMP: type and code are the first two bytes of all three.
    IcmpMessage,
    2
);
impl<'a> IcmpMessage<'a> {
    /// Message type.
    pub fn msg_type(&self) -> u8 {
        byte(self.buf, icmp::field::TYPE)
    }
    /// Message code (IGMP: max response time).
    pub fn code(&self) -> u8 {
        byte(self.buf, icmp::field::CODE)
    }
}

view!(
    /// ARP / RARP for Ethernet and IPv4 (the only layout the filters read).
    ArpPacket,
    arp::LEN
);
impl<'a> ArpPacket<'a> {
    /// Hardware type.
    pub fn htype(&self) -> u16 {
        be16(self.buf, arp::field::HTYPE.start)
    }
    /// Protocol type.
    pub fn ptype(&self) -> u16 {
        be16(self.buf, arp::field::PTYPE.start)
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        byte(self.buf, arp::field::HLEN)
    }
    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        byte(self.buf, arp::field::PLEN)
    }
    /// Operation.
    pub fn oper(&self) -> u16 {
        be16(self.buf, arp::field::OPER.start)
    }
    /// True when the addresses are Ethernet + IPv4 (hlen 6, plen 4).
    pub fn is_ether_ipv4(&self) -> bool {
        self.hlen() == 6 && self.plen() == 4
    }
    /// Sender hardware address (meaningful when [`Self::is_ether_ipv4`]).
    pub fn sha(&self) -> MacAddr {
        MacAddr(array(self.buf, arp::field::SHA))
    }
    /// Sender protocol address (meaningful when [`Self::is_ether_ipv4`]).
    pub fn spa(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buf, arp::field::SPA))
    }
    /// Target hardware address.
    pub fn tha(&self) -> MacAddr {
        MacAddr(array(self.buf, arp::field::THA))
    }
    /// Target protocol address.
    pub fn tpa(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.buf, arp::field::TPA))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(EthernetFrame::new_checked(&[0; 13]).err(), Some(Truncated));
        assert!(EthernetFrame::new_checked(&[0; 14]).is_ok());
        assert!(Ipv4Packet::new_checked(&[0x45; 19]).is_err());
        assert!(Ipv6Packet::new_checked(&[0x60; 39]).is_err());
    }

    #[test]
    fn accessors() {
        let mut ip = [0u8; 24];
        ip[0] = 0x46;
        ip[6] = 0x20;
        ip[7] = 0x01;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let v = Ipv4Packet::new_checked(&ip).expect("long enough");
        assert_eq!(v.version(), 4);
        assert_eq!(v.header_len(), 24);
        assert!(v.more_frags());
        assert_eq!(v.frag_offset(), 1);
        assert_eq!(v.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(v.payload(), Some(&[][..]));
        let m = MplsEntry::new_checked(&[0x00, 0x01, 0xd1, 0x40]).expect("4 bytes");
        assert_eq!(m.label(), 29);
        assert!(m.bottom());
        assert_eq!(m.ttl(), 64);
    }
}
