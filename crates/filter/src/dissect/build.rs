//! Emitters: build well-formed packets layer by layer, for tests and tools that need
//! packets with known contents (the same layouts [`super::wire`] reads).
//!
//! ```
//! use wirecap_filter::dissect::build::PacketBuilder;
//! let pkt = PacketBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
//!     .vlan(0x8100, 100)
//!     .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
//!     .udp(5000, 53)
//!     .payload(&[0; 12])
//!     .build();
//! assert_eq!(pkt.len(), 14 + 4 + 20 + 8 + 12);
//! ```
//!
//! Checksums are left zero: filters do not check them.

use super::{ethertype, ipproto};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Layer {
    Ethernet {
        dst: [u8; 6],
        src: [u8; 6],
    },
    Vlan {
        tpid: u16,
        vid: u16,
    },
    Mpls {
        label: u32,
    },
    Pppoe,
    Ipv4 {
        src: [u8; 4],
        dst: [u8; 4],
        frag: u16,
        more: bool,
        options: u8,
        proto: Option<u8>,
    },
    Ipv6 {
        src: [u8; 16],
        dst: [u8; 16],
        proto: Option<u8>,
    },
    Ipv6Ext {
        kind: u8,
        frag_offset: u16,
    },
    Arp {
        oper: u16,
        spa: [u8; 4],
        tpa: [u8; 4],
        rarp: bool,
    },
    Tcp {
        src: u16,
        dst: u16,
        flags: u8,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    Sctp {
        src: u16,
        dst: u16,
    },
    Icmp {
        ty: u8,
        code: u8,
    },
    Icmpv6 {
        ty: u8,
        code: u8,
    },
    Igmp {
        ty: u8,
    },
    Payload(Vec<u8>),
}

/// Builds a packet from the outermost layer inwards; [`PacketBuilder::build`] fills in
/// the type, protocol and length fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketBuilder {
    layers: Vec<Layer>,
}

impl PacketBuilder {
    /// Starts an Ethernet frame.
    pub fn ethernet(src: [u8; 6], dst: [u8; 6]) -> Self {
        Self {
            layers: vec![Layer::Ethernet { dst, src }],
        }
    }
    /// Starts a packet with no link header (raw IP links).
    pub fn raw() -> Self {
        Self::default()
    }
    /// Adds a VLAN tag with this TPID (0x8100, 0x88a8, 0x9100) and id.
    pub fn vlan(mut self, tpid: u16, vid: u16) -> Self {
        self.layers.push(Layer::Vlan {
            tpid,
            vid: vid & 0x0fff,
        });
        self
    }
    /// Adds an MPLS label stack entry (the last one added gets the bottom-of-stack bit).
    pub fn mpls(mut self, label: u32) -> Self {
        self.layers.push(Layer::Mpls {
            label: label & 0xf_ffff,
        });
        self
    }
    /// Adds a PPPoE session header.
    pub fn pppoe(mut self) -> Self {
        self.layers.push(Layer::Pppoe);
        self
    }
    /// Adds an IPv4 header.
    pub fn ipv4(mut self, src: [u8; 4], dst: [u8; 4]) -> Self {
        self.layers.push(Layer::Ipv4 {
            src,
            dst,
            frag: 0,
            more: false,
            options: 0,
            proto: None,
        });
        self
    }
    /// Adds an IPv4 header with `options` 4-byte words of NOP options, fragment offset
    /// `frag` (8-byte units) and the more-fragments flag.
    pub fn ipv4_full(
        mut self,
        src: [u8; 4],
        dst: [u8; 4],
        options: u8,
        frag: u16,
        more: bool,
    ) -> Self {
        self.layers.push(Layer::Ipv4 {
            src,
            dst,
            frag: frag & 0x1fff,
            more,
            options: options.min(10),
            proto: None,
        });
        self
    }
    /// Adds an IPv4 header whose protocol field is `proto` whatever follows.
    pub fn ipv4_proto(mut self, src: [u8; 4], dst: [u8; 4], proto: u8) -> Self {
        self.layers.push(Layer::Ipv4 {
            src,
            dst,
            frag: 0,
            more: false,
            options: 0,
            proto: Some(proto),
        });
        self
    }
    /// Adds an IPv6 header.
    pub fn ipv6(mut self, src: [u8; 16], dst: [u8; 16]) -> Self {
        self.layers.push(Layer::Ipv6 {
            src,
            dst,
            proto: None,
        });
        self
    }
    /// Adds an IPv6 header whose next-header field is `proto` whatever follows.
    pub fn ipv6_proto(mut self, src: [u8; 16], dst: [u8; 16], proto: u8) -> Self {
        self.layers.push(Layer::Ipv6 {
            src,
            dst,
            proto: Some(proto),
        });
        self
    }
    /// Adds an IPv6 extension header of kind 0, 43, 44, 51 or 60 (8 bytes; a fragment
    /// header gets offset `frag_offset`).
    pub fn ipv6_ext(mut self, kind: u8, frag_offset: u16) -> Self {
        self.layers.push(Layer::Ipv6Ext { kind, frag_offset });
        self
    }
    /// Adds an ARP (or RARP) packet for Ethernet/IPv4.
    pub fn arp(mut self, oper: u16, spa: [u8; 4], tpa: [u8; 4], rarp: bool) -> Self {
        self.layers.push(Layer::Arp {
            oper,
            spa,
            tpa,
            rarp,
        });
        self
    }
    /// Adds a 20-byte TCP header.
    pub fn tcp(mut self, src: u16, dst: u16, flags: u8) -> Self {
        self.layers.push(Layer::Tcp { src, dst, flags });
        self
    }
    /// Adds a UDP header.
    pub fn udp(mut self, src: u16, dst: u16) -> Self {
        self.layers.push(Layer::Udp { src, dst });
        self
    }
    /// Adds an SCTP common header.
    pub fn sctp(mut self, src: u16, dst: u16) -> Self {
        self.layers.push(Layer::Sctp { src, dst });
        self
    }
    /// Adds an ICMP header (8 bytes).
    pub fn icmp(mut self, ty: u8, code: u8) -> Self {
        self.layers.push(Layer::Icmp { ty, code });
        self
    }
    /// Adds an ICMPv6 header (8 bytes).
    pub fn icmpv6(mut self, ty: u8, code: u8) -> Self {
        self.layers.push(Layer::Icmpv6 { ty, code });
        self
    }
    /// Adds an IGMP message (8 bytes).
    pub fn igmp(mut self, ty: u8) -> Self {
        self.layers.push(Layer::Igmp { ty });
        self
    }
    /// Appends payload bytes.
    pub fn payload(mut self, bytes: &[u8]) -> Self {
        self.layers.push(Layer::Payload(bytes.to_vec()));
        self
    }

    /// Emits the packet.
    pub fn build(&self) -> Vec<u8> {
        // Built inside out, so every header knows what it carries and how long it is.
        let mut out: Vec<u8> = Vec::new();
        let mut inner: Option<&Layer> = None;
        let mut mpls_bottom = true;
        for layer in self.layers.iter().rev() {
            let mut h: Vec<u8> = Vec::new();
            match layer {
                Layer::Ethernet { dst, src } => {
                    h.extend_from_slice(dst);
                    h.extend_from_slice(src);
                    h.extend_from_slice(&ether_type_of(inner).to_be_bytes());
                }
                Layer::Vlan { tpid: _, vid } => {
                    h.extend_from_slice(&vid.to_be_bytes());
                    h.extend_from_slice(&ether_type_of(inner).to_be_bytes());
                }
                Layer::Mpls { label } => {
                    let v = (label << 12) | (u32::from(mpls_bottom) << 8) | 64;
                    mpls_bottom = false;
                    h.extend_from_slice(&v.to_be_bytes());
                }
                Layer::Pppoe => {
                    let ppp: u16 = match inner {
                        Some(Layer::Ipv6 { .. }) => 0x0057,
                        _ => 0x0021,
                    };
                    h.extend_from_slice(&[0x11, 0x00, 0x00, 0x01]);
                    let len = (out.len() + 2) as u16;
                    h.extend_from_slice(&len.to_be_bytes());
                    h.extend_from_slice(&ppp.to_be_bytes());
                }
                Layer::Ipv4 {
                    src,
                    dst,
                    frag,
                    more,
                    options,
                    proto,
                } => {
                    let hl = 20 + usize::from(*options) * 4;
                    let total = (hl + out.len()).min(0xffff) as u16;
                    h.push(0x40 | (hl / 4) as u8);
                    h.push(0);
                    h.extend_from_slice(&total.to_be_bytes());
                    h.extend_from_slice(&[0x12, 0x34]);
                    let ff = frag | if *more { 0x2000 } else { 0 };
                    h.extend_from_slice(&ff.to_be_bytes());
                    h.push(64);
                    h.push(proto.unwrap_or_else(|| ip_proto_of(inner)));
                    h.extend_from_slice(&[0, 0]);
                    h.extend_from_slice(src);
                    h.extend_from_slice(dst);
                    h.resize(hl, 1); // NOP options
                }
                Layer::Ipv6 { src, dst, proto } => {
                    h.extend_from_slice(&[0x60, 0, 0, 0]);
                    h.extend_from_slice(&(out.len().min(0xffff) as u16).to_be_bytes());
                    h.push(proto.unwrap_or_else(|| ip_proto_of(inner)));
                    h.push(64);
                    h.extend_from_slice(src);
                    h.extend_from_slice(dst);
                }
                Layer::Ipv6Ext { kind, frag_offset } => {
                    h.push(ip_proto_of(inner));
                    if *kind == 51 {
                        h.push(0); // AH: (0 + 2) * 4 = 8 bytes
                    } else {
                        h.push(0);
                    }
                    if *kind == 44 {
                        h.extend_from_slice(&(frag_offset << 3).to_be_bytes());
                        h.extend_from_slice(&[0, 0, 0, 1]);
                    } else {
                        h.extend_from_slice(&[1, 4, 0, 0, 0, 0]); // PadN
                    }
                }
                Layer::Arp {
                    oper,
                    spa,
                    tpa,
                    rarp: _,
                } => {
                    h.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
                    h.extend_from_slice(&oper.to_be_bytes());
                    h.extend_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
                    h.extend_from_slice(spa);
                    h.extend_from_slice(&[0; 6]);
                    h.extend_from_slice(tpa);
                }
                Layer::Tcp { src, dst, flags } => {
                    h.extend_from_slice(&src.to_be_bytes());
                    h.extend_from_slice(&dst.to_be_bytes());
                    h.extend_from_slice(&[
                        0, 0, 0, 1, 0, 0, 0, 0, 0x50, *flags, 0xff, 0xff, 0, 0, 0, 0,
                    ]);
                }
                Layer::Udp { src, dst } => {
                    h.extend_from_slice(&src.to_be_bytes());
                    h.extend_from_slice(&dst.to_be_bytes());
                    h.extend_from_slice(&((8 + out.len()).min(0xffff) as u16).to_be_bytes());
                    h.extend_from_slice(&[0, 0]);
                }
                Layer::Sctp { src, dst } => {
                    h.extend_from_slice(&src.to_be_bytes());
                    h.extend_from_slice(&dst.to_be_bytes());
                    h.extend_from_slice(&[0; 8]);
                }
                Layer::Icmp { ty, code } | Layer::Icmpv6 { ty, code } => {
                    h.extend_from_slice(&[*ty, *code, 0, 0, 0, 0, 0, 0]);
                }
                Layer::Igmp { ty } => h.extend_from_slice(&[*ty, 0, 0, 0, 224, 0, 0, 1]),
                Layer::Payload(p) => h.extend_from_slice(p),
            }
            h.extend_from_slice(&out);
            out = h;
            if !matches!(layer, Layer::Payload(_)) {
                inner = Some(layer);
            }
        }
        out
    }
}

fn ether_type_of(inner: Option<&Layer>) -> u16 {
    match inner {
        Some(Layer::Vlan { tpid, .. }) => *tpid,
        Some(Layer::Mpls { .. }) => ethertype::MPLS,
        Some(Layer::Pppoe) => ethertype::PPPOE_SESSION,
        Some(Layer::Ipv4 { .. }) => ethertype::IPV4,
        Some(Layer::Ipv6 { .. }) => ethertype::IPV6,
        Some(Layer::Arp { rarp: true, .. }) => ethertype::RARP,
        Some(Layer::Arp { .. }) => ethertype::ARP,
        _ => 0x88b5, // local experimental EtherType
    }
}

fn ip_proto_of(inner: Option<&Layer>) -> u8 {
    match inner {
        Some(Layer::Tcp { .. }) => ipproto::TCP,
        Some(Layer::Udp { .. }) => ipproto::UDP,
        Some(Layer::Sctp { .. }) => ipproto::SCTP,
        Some(Layer::Icmp { .. }) => ipproto::ICMP,
        Some(Layer::Icmpv6 { .. }) => ipproto::ICMPV6,
        Some(Layer::Igmp { .. }) => ipproto::IGMP,
        Some(Layer::Ipv4 { .. }) => 4,
        Some(Layer::Ipv6 { .. }) => 41,
        Some(Layer::Ipv6Ext { kind, .. }) => *kind,
        _ => 59, // no next header
    }
}
