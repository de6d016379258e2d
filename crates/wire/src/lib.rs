//! wirecap's packet header layouts, for everything that reads or writes packet bytes: the
//! filter's dissector, the inline forwarder's rewrite and segmentation, and the capture's
//! synthetic traffic.
//!
//! ```text
//!   field tables (byte offsets)     ethernet · vlan · arp · ipv4 · ipv6 · tcp · udp · icmp
//!   numbers                         ethertype · ip_protocol (with the IPv6 extension headers)
//!                                   · icmpv4 · icmpv6 · ndp
//!   views (smoltcp's wire style)    Ethernet<T> · Arp<T> · Ipv4<T> · Ipv6<T> (extension-header
//!                                   walk) · Ndp<T> · VlanTags: new_checked once, then
//!                                   accessors that cannot panic, setters where T is mutable
//!   checksum                        RFC 1071 sum and fold, RFC 1624 incremental update
//! ```
//!
//! What it owns: where each field of these headers sits ([`ethernet::field`],
//! [`ipv4::field`], …), the numbers that name EtherTypes and IP protocols, the zero-copy
//! views the forwarder reads and rewrites through, and the one Internet checksum
//! ([`checksum`]) — the full sum and the incremental update, with one folding rule proven
//! against a naive reference.
//!
//! What it never does: allocate on a packet path, panic on a short or malformed buffer
//! (a view is refused instead), do I/O, or decide anything about a packet (forwarding,
//! filtering and capturing are the callers' business).

pub mod checksum;
mod icmp_error;
mod views;
mod views6;

pub use icmp_error::{IcmpError, IcmpErrorKind, emit_icmp_error};
pub use views::*;
pub use views6::*;

/// A run of bytes in a header.
pub type Field = std::ops::Range<usize>;

/// EtherType values.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP.
    pub const RARP: u16 = 0x8035;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag.
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
    /// PPPoE discovery.
    pub const PPPOE_DISC: u16 = 0x8863;
    /// PPPoE session.
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// IP protocol numbers (IPv4's protocol field, IPv6's next header).
pub mod ip_protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// IPv6 destination options.
    pub const DEST_OPTS: u8 = 60;
    /// IPv6 mobility header: has no upper layer after it.
    pub const MOBILITY: u8 = 135;
}

/// Ethernet II.
pub mod ethernet {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Destination MAC.
        pub const DST: Field = 0..6;
        /// Source MAC.
        pub const SRC: Field = 6..12;
        /// EtherType (or an 802.3 length when ≤ 1500).
        pub const ETHERTYPE: Field = 12..14;
    }
    /// Header length (no VLAN tag).
    pub const HEADER_LEN: usize = 14;
}

/// One 802.1Q / 802.1ad tag, counted from after its TPID (the EtherType before it).
pub mod vlan {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Tag control information: PCP (3 bits), DEI (1), VID (12).
        pub const TCI: Field = 0..2;
        /// EtherType of what follows the tag.
        pub const ETHERTYPE: Field = 2..4;
    }
    /// TCI and inner EtherType.
    pub const HEADER_LEN: usize = 4;
    /// A tag on the wire, TPID included.
    pub const TAG_LEN: usize = 4;
}

/// ARP for Ethernet and IPv4 (RFC 826).
pub mod arp {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Hardware type.
        pub const HTYPE: Field = 0..2;
        /// Protocol type.
        pub const PTYPE: Field = 2..4;
        /// Hardware address length.
        pub const HLEN: usize = 4;
        /// Protocol address length.
        pub const PLEN: usize = 5;
        /// Operation.
        pub const OPER: Field = 6..8;
        /// Sender hardware address.
        pub const SHA: Field = 8..14;
        /// Sender protocol address.
        pub const SPA: Field = 14..18;
        /// Target hardware address.
        pub const THA: Field = 18..24;
        /// Target protocol address.
        pub const TPA: Field = 24..28;
    }
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;
}

/// IPv4 (RFC 791).
pub mod ipv4 {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Version and header length.
        pub const VER_IHL: usize = 0;
        /// Total length.
        pub const LENGTH: Field = 2..4;
        /// Identification.
        pub const IDENT: Field = 4..6;
        /// Flags and fragment offset.
        pub const FLAGS_FRAG: Field = 6..8;
        /// TTL and protocol, as one 16-bit word (what the checksum update sees).
        pub const TTL_PROTO: Field = 8..10;
        /// TTL.
        pub const TTL: usize = 8;
        /// Protocol.
        pub const PROTOCOL: usize = 9;
        /// Header checksum.
        pub const CHECKSUM: Field = 10..12;
        /// Source address.
        pub const SRC: Field = 12..16;
        /// Destination address.
        pub const DST: Field = 16..20;
    }
    /// Shortest header.
    pub const MIN_HEADER_LEN: usize = 20;
}

/// IPv6 (RFC 8200): the fixed header and the generic extension header.
pub mod ipv6 {
    /// Byte offsets of the fixed header.
    pub mod field {
        use crate::Field;
        /// Version, traffic class, flow label.
        pub const VER_TC_FLOW: Field = 0..4;
        /// Payload length.
        pub const PAYLOAD_LEN: Field = 4..6;
        /// Next header.
        pub const NEXT_HEADER: usize = 6;
        /// Hop limit.
        pub const HOP_LIMIT: usize = 7;
        /// Source address.
        pub const SRC: Field = 8..24;
        /// Destination address.
        pub const DST: Field = 24..40;
    }
    /// Byte offsets of an extension header.
    pub mod ext_field {
        use crate::Field;
        /// Next header.
        pub const NEXT_HEADER: usize = 0;
        /// Length (units depend on the kind).
        pub const LENGTH: usize = 1;
        /// Fragment header: offset (13 bits, ×8 bytes), then 2 reserved bits and M.
        pub const FRAG_OFFSET: Field = 2..4;
    }
    /// Fixed header length.
    pub const HEADER_LEN: usize = 40;
    /// Shortest extension header.
    pub const EXT_MIN_LEN: usize = 8;
}

/// TCP (RFC 9293).
pub mod tcp {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Source port.
        pub const SRC_PORT: Field = 0..2;
        /// Destination port.
        pub const DST_PORT: Field = 2..4;
        /// Sequence number.
        pub const SEQ: Field = 4..8;
        /// Acknowledgment number.
        pub const ACK: Field = 8..12;
        /// Data offset (high nibble, in 4-byte words).
        pub const DATA_OFF: usize = 12;
        /// Flags.
        pub const FLAGS: usize = 13;
        /// Checksum.
        pub const CHECKSUM: Field = 16..18;
    }
    /// Flag bits of [`field::FLAGS`].
    pub mod flags {
        /// FIN.
        pub const FIN: u8 = 0x01;
        /// SYN.
        pub const SYN: u8 = 0x02;
        /// RST.
        pub const RST: u8 = 0x04;
        /// PSH.
        pub const PSH: u8 = 0x08;
        /// ACK.
        pub const ACK: u8 = 0x10;
        /// URG.
        pub const URG: u8 = 0x20;
        /// ECE.
        pub const ECE: u8 = 0x40;
        /// CWR.
        pub const CWR: u8 = 0x80;
    }
    /// Shortest header.
    pub const MIN_HEADER_LEN: usize = 20;
}

/// UDP (RFC 768).
pub mod udp {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Source port.
        pub const SRC_PORT: Field = 0..2;
        /// Destination port.
        pub const DST_PORT: Field = 2..4;
        /// Length.
        pub const LENGTH: Field = 4..6;
        /// Checksum.
        pub const CHECKSUM: Field = 6..8;
    }
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// ICMP and ICMPv6 (type and code also start IGMP).
pub mod icmp {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Type.
        pub const TYPE: usize = 0;
        /// Code.
        pub const CODE: usize = 1;
        /// Checksum.
        pub const CHECKSUM: Field = 2..4;
    }
    /// Header length (type, code, checksum, 4 bytes of rest-of-header).
    pub const HEADER_LEN: usize = 8;
}

/// ICMPv6 message types (RFC 4443, RFC 4861) the forwarder tells apart.
pub mod icmpv6 {
    /// Destination unreachable (an error).
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big (an error: path-MTU discovery).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded (an error: traceroute).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem (an error).
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour solicitation.
    pub const NEIGHBOUR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOUR_ADVERT: u8 = 136;
}

/// ICMPv4 message types the forwarder tells apart.
pub mod icmpv4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (code 4: fragmentation needed, path-MTU discovery).
    pub const DST_UNREACHABLE: u8 = 3;
    /// Time exceeded (traceroute).
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
}

/// Neighbour discovery (RFC 4861): solicitations and advertisements, counted from the
/// start of the ICMPv6 header.
pub mod ndp {
    /// Byte offsets.
    pub mod field {
        use crate::Field;
        /// Advertisement flags: router (0x80), solicited (0x40), override (0x20).
        pub const FLAGS: usize = 4;
        /// The address asked about (NS) or announced (NA).
        pub const TARGET: Field = 8..24;
    }
    /// Where the options start.
    pub const OPTIONS_AT: usize = 24;
    /// Option type: source link-layer address.
    pub const OPT_SOURCE_LLADDR: u8 = 1;
    /// Option type: target link-layer address.
    pub const OPT_TARGET_LLADDR: u8 = 2;
    /// A link-layer address option for Ethernet (type, length 1, MAC).
    pub const LLADDR_OPT_LEN: usize = 8;
    /// Advertisement flag: solicited.
    pub const FLAG_SOLICITED: u8 = 0x40;
    /// Advertisement flag: override.
    pub const FLAG_OVERRIDE: u8 = 0x20;
    /// Hop limit every NDP message carries (RFC 4861 checks it).
    pub const HOP_LIMIT: u8 = 255;
}
