//! Packet dissection: from captured bytes to the few facts filters test.
//!
//! [`dissect`] walks a packet once, layer by layer, through typed zero-copy views
//! ([`wire`]) and records what it found in a [`Dissected`], a small `Copy` value with no
//! heap allocation. It never panics and never reads past the captured bytes: when the
//! capture ends (snap length) or a header is malformed, it stops and keeps what it had.
//!
//! Layers understood:
//!
//! * links: Ethernet (`EN10MB`), raw IP (`RAW`, `IPV4`, `IPV6`), BSD loopback (`NULL`,
//!   `LOOP`), Linux cooked captures (`LINUX_SLL`, `LINUX_SLL2`);
//! * under Ethernet: any stack of VLAN tags with TPID 0x8100, 0x88a8 or 0x9100 (802.1Q,
//!   802.1ad, QinQ), an MPLS label stack (0x8847/0x8848; the payload after the
//!   bottom-of-stack entry is guessed from its version nibble, as routers and libpcap
//!   do), PPPoE sessions (0x8864) carrying IPv4 or IPv6;
//! * IPv4 (options skipped; only the first fragment has a transport header), IPv6 with
//!   hop-by-hop, routing, fragment, destination options and AH extension headers (only a
//!   first fragment has a transport header), ARP and RARP;
//! * TCP, UDP, SCTP (ports), ICMP, ICMPv6 (type, code), IGMP (type).
//!
//! Tunnels (GRE, VXLAN, IP-in-IP...) are not entered: the outermost IP header is the one
//! a filter sees.

pub mod build;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wire::*;

/// The link layer a packet starts with, as far as dissection is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// `LINKTYPE_ETHERNET` (1).
    Ethernet,
    /// `LINKTYPE_RAW` (101): IPv4 or IPv6, told apart by the version nibble.
    Raw,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_NULL` (0, host byte order) and `LINKTYPE_LOOP` (108, network order):
    /// a 4-byte address family.
    Null,
    /// `LINKTYPE_LINUX_SLL` (113).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276).
    LinuxSll2,
    /// Any other link type: nothing is dissected.
    Other(u16),
}

impl Link {
    /// Maps a pcap `LINKTYPE_*` number (the link-type field of a pcap file or pcapng
    /// IDB, upper bits already masked) to what the dissector knows.
    pub fn from_linktype(linktype: u16) -> Self {
        match linktype {
            1 => Self::Ethernet,
            101 => Self::Raw,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            0 | 108 => Self::Null,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            other => Self::Other(other),
        }
    }
}

/// EtherType values the dissector acts on.
pub use wirecap_wire::ethertype;
/// IP protocol numbers the dissector acts on.
pub use wirecap_wire::ip_protocol as ipproto;

/// Up to `N` values of a repeated header (VLAN ids, MPLS labels, EtherTypes), outermost
/// first, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack<T, const N: usize> {
    items: [T; N],
    len: u8,
}

impl<T: Copy + Default, const N: usize> Default for Stack<T, N> {
    fn default() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default + PartialEq, const N: usize> Stack<T, N> {
    /// Appends `v`; returns false (and drops it) when the stack is full.
    fn push(&mut self, v: T) -> bool {
        match self.items.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
                true
            }
            None => false,
        }
    }
    /// The values, outermost first.
    pub fn as_slice(&self) -> &[T] {
        self.items.get(..usize::from(self.len)).unwrap_or(&[])
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when `v` is one of the values.
    pub fn contains(&self, v: &T) -> bool {
        self.as_slice().contains(v)
    }
}

/// Most VLAN tags, MPLS entries and EtherTypes recorded; a deeper stack ends dissection.
pub const MAX_STACK: usize = 8;

/// What an IPv4 header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol field.
    pub proto: u8,
    /// Time to live.
    pub ttl: u8,
    /// Fragment offset in 8-byte units (0 for the first fragment or an unfragmented packet).
    pub frag_offset: u16,
    /// More-fragments flag.
    pub more_frags: bool,
}

/// What an IPv6 header and its extension headers said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Info {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next-header field of the fixed header.
    pub next_header: u8,
    /// The upper-layer protocol after the extension headers, when the chain was walked
    /// to its end (`None` when it was cut off by the capture).
    pub proto: Option<u8>,
    /// Fragment header's offset and more-fragments flag, when there is one.
    pub fragment: Option<(u16, bool)>,
    /// Hop limit.
    pub hop_limit: u8,
}

/// What an ARP or RARP packet (Ethernet + IPv4 layout) said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpInfo {
    /// Operation.
    pub oper: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// The network layer found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// None, or one the dissector does not read.
    #[default]
    None,
    /// IPv4.
    Ipv4(Ipv4Info),
    /// IPv6.
    Ipv6(Ipv6Info),
    /// ARP or RARP (Ethernet + IPv4 addresses).
    Arp(ArpInfo),
}

/// The transport layer found (only in the first fragment of a packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// None (not IP, a later fragment, cut off, or a protocol not read).
    #[default]
    None,
    /// TCP; `flags` is `None` when the capture ends before the flags byte.
    Tcp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
        /// Flags byte.
        flags: Option<u8>,
    },
    /// UDP.
    Udp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// SCTP.
    Sctp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP (over IPv4).
    Icmp {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// ICMPv6.
    Icmpv6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// IGMP.
    Igmp {
        /// Type.
        ty: u8,
    },
}

/// Everything [`dissect`] found in one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dissected {
    /// Ethernet source address (Ethernet link only).
    pub eth_src: Option<MacAddr>,
    /// Ethernet destination address (Ethernet link only).
    pub eth_dst: Option<MacAddr>,
    /// Every EtherType of the header chain, outermost first: the Ethernet type, the type
    /// after each VLAN tag, and the payload type of an MPLS stack (IPv4 0x0800 or IPv6
    /// 0x86dd, guessed from the version nibble) or a PPPoE session (from the PPP
    /// protocol). For cooked and loopback links, the protocol the link header gives.
    pub ethertypes: Stack<u16, MAX_STACK>,
    /// VLAN ids, outermost first.
    pub vlan_ids: Stack<u16, MAX_STACK>,
    /// MPLS labels, outermost first.
    pub mpls_labels: Stack<u32, MAX_STACK>,
    /// The network layer.
    pub network: Network,
    /// Offset of the network header in the packet (meaningful when `network` is not None).
    pub network_offset: usize,
    /// The transport layer.
    pub transport: Transport,
    /// Offset of the transport header (meaningful when `transport` is not None).
    pub transport_offset: usize,
    /// True when the captured bytes ended inside a header the dissector wanted to read.
    pub truncated: bool,
}

impl Dissected {
    /// Source and destination IP addresses, when there is an IP layer.
    pub fn ip_addrs(&self) -> Option<(IpAddr, IpAddr)> {
        match self.network {
            Network::Ipv4(i) => Some((i.src.into(), i.dst.into())),
            Network::Ipv6(i) => Some((i.src.into(), i.dst.into())),
            _ => None,
        }
    }

    /// The upper-layer protocol of the IP layer: IPv4's protocol field, or IPv6's after
    /// its extension headers.
    pub fn ip_proto(&self) -> Option<u8> {
        match self.network {
            Network::Ipv4(i) => Some(i.proto),
            Network::Ipv6(i) => i.proto,
            _ => None,
        }
    }

    /// Source and destination ports of TCP, UDP or SCTP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp { src, dst, .. }
            | Transport::Udp { src, dst }
            | Transport::Sctp { src, dst } => Some((src, dst)),
            _ => None,
        }
    }
}

/// Dissects one packet of link type `link`; `data` is the captured bytes.
pub fn dissect(link: Link, data: &[u8]) -> Dissected {
    let mut d = Dissected::default();
    match link {
        Link::Ethernet => match EthernetFrame::new_checked(data) {
            Ok(eth) => {
                d.eth_src = Some(eth.src());
                d.eth_dst = Some(eth.dst());
                ethertype_chain(&mut d, data, 14, eth.ethertype());
            }
            Err(Truncated) => d.truncated = true,
        },
        Link::Raw => ip_by_version(&mut d, data, 0),
        Link::Ipv4 => {
            d.ethertypes.push(ethertype::IPV4);
            ipv4(&mut d, data, 0);
        }
        Link::Ipv6 => {
            d.ethertypes.push(ethertype::IPV6);
            ipv6(&mut d, data, 0);
        }
        Link::Null => match data.get(..4) {
            Some(&[a, b, c, e]) => {
                // The family is in the capturing host's byte order (NULL) or network order
                // (LOOP); accept both, the values do not collide.
                let le = u32::from_le_bytes([a, b, c, e]);
                let be = u32::from_be_bytes([a, b, c, e]);
                let is = |v: u32| le == v || be == v;
                if is(2) {
                    d.ethertypes.push(ethertype::IPV4);
                    ipv4(&mut d, data, 4);
                } else if is(10) || is(24) || is(28) || is(30) {
                    d.ethertypes.push(ethertype::IPV6);
                    ipv6(&mut d, data, 4);
                }
            }
            _ => d.truncated = true,
        },
        Link::LinuxSll => match SllHeader::new_checked(data) {
            Ok(h) => ethertype_chain(&mut d, data, 16, h.protocol()),
            Err(Truncated) => d.truncated = true,
        },
        Link::LinuxSll2 => match Sll2Header::new_checked(data) {
            Ok(h) => ethertype_chain(&mut d, data, 20, h.protocol()),
            Err(Truncated) => d.truncated = true,
        },
        Link::Other(_) => {}
    }
    d
}

/// Follows EtherTypes through VLAN tags, MPLS and PPPoE to the network layer. `off` is
/// where the payload of the header that announced `ty` starts.
fn ethertype_chain(d: &mut Dissected, data: &[u8], mut off: usize, mut ty: u16) {
    loop {
        if !d.ethertypes.push(ty) {
            return;
        }
        let payload = data.get(off..).unwrap_or(&[]);
        match ty {
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                match VlanTag::new_checked(payload) {
                    Ok(tag) => {
                        if !d.vlan_ids.push(tag.vid()) {
                            return;
                        }
                        ty = tag.ethertype();
                        off += 4;
                    }
                    Err(Truncated) => {
                        d.truncated = true;
                        return;
                    }
                }
            }
            ethertype::MPLS | ethertype::MPLS_MC => {
                loop {
                    let Ok(entry) = MplsEntry::new_checked(data.get(off..).unwrap_or(&[])) else {
                        d.truncated = true;
                        return;
                    };
                    off += 4;
                    if !d.mpls_labels.push(entry.label()) {
                        return;
                    }
                    if entry.bottom() {
                        break;
                    }
                }
                match data.get(off).map(|b| b >> 4) {
                    Some(4) => {
                        d.ethertypes.push(ethertype::IPV4);
                        ipv4(d, data, off);
                    }
                    Some(6) => {
                        d.ethertypes.push(ethertype::IPV6);
                        ipv6(d, data, off);
                    }
                    Some(_) => {}
                    None => d.truncated = true,
                }
                return;
            }
            ethertype::PPPOE_SESSION => {
                match PppoeSession::new_checked(payload) {
                    Ok(s) => {
                        off += 8;
                        match s.ppp_protocol() {
                            0x0021 => {
                                d.ethertypes.push(ethertype::IPV4);
                                ipv4(d, data, off);
                            }
                            0x0057 => {
                                d.ethertypes.push(ethertype::IPV6);
                                ipv6(d, data, off);
                            }
                            _ => {}
                        }
                    }
                    Err(Truncated) => d.truncated = true,
                }
                return;
            }
            ethertype::IPV4 => return ipv4(d, data, off),
            ethertype::IPV6 => return ipv6(d, data, off),
            ethertype::ARP | ethertype::RARP => return arp(d, data, off),
            _ => return,
        }
    }
}

fn ip_by_version(d: &mut Dissected, data: &[u8], off: usize) {
    match data.get(off).map(|b| b >> 4) {
        Some(4) => {
            d.ethertypes.push(ethertype::IPV4);
            ipv4(d, data, off);
        }
        Some(6) => {
            d.ethertypes.push(ethertype::IPV6);
            ipv6(d, data, off);
        }
        Some(_) => {}
        None => d.truncated = true,
    }
}

fn ipv4(d: &mut Dissected, data: &[u8], off: usize) {
    let Ok(ip) = Ipv4Packet::new_checked(data.get(off..).unwrap_or(&[])) else {
        d.truncated = true;
        return;
    };
    if ip.version() != 4 {
        return;
    }
    d.network = Network::Ipv4(Ipv4Info {
        src: ip.src(),
        dst: ip.dst(),
        proto: ip.protocol(),
        ttl: ip.ttl(),
        frag_offset: ip.frag_offset(),
        more_frags: ip.more_frags(),
    });
    d.network_offset = off;
    if ip.frag_offset() != 0 {
        return;
    }
    if ip.header_len() < Ipv4Packet::MIN_LEN {
        return;
    }
    match ip.payload() {
        Some(_) => transport(d, data, off + ip.header_len(), ip.protocol(), false),
        None => d.truncated = true,
    }
}

fn ipv6(d: &mut Dissected, data: &[u8], off: usize) {
    let Ok(ip) = Ipv6Packet::new_checked(data.get(off..).unwrap_or(&[])) else {
        d.truncated = true;
        return;
    };
    if ip.version() != 6 {
        return;
    }
    let mut info = Ipv6Info {
        src: ip.src(),
        dst: ip.dst(),
        next_header: ip.next_header(),
        proto: None,
        fragment: None,
        hop_limit: ip.hop_limit(),
    };
    d.network_offset = off;
    let mut nh = ip.next_header();
    let mut at = off + Ipv6Packet::MIN_LEN;
    // Bounded: each header is at least 8 bytes and the buffer is finite; the count
    // limit only guards against pathological chains.
    for _ in 0..16 {
        match nh {
            ipv6_ext::HOP_BY_HOP
            | ipv6_ext::ROUTING
            | ipv6_ext::FRAGMENT
            | ipv6_ext::AH
            | ipv6_ext::DEST_OPTS => {
                let Ok(ext) = Ipv6ExtHeader::new_checked(data.get(at..).unwrap_or(&[])) else {
                    d.truncated = true;
                    d.network = Network::Ipv6(info);
                    return;
                };
                if nh == ipv6_ext::FRAGMENT {
                    info.fragment = Some((ext.frag_offset(), ext.more_frags()));
                }
                at += ext.header_len(nh);
                nh = ext.next_header();
            }
            _ => {
                info.proto = Some(nh);
                d.network = Network::Ipv6(info);
                let first = info.fragment.is_none_or(|(o, _)| o == 0);
                if first && nh != ipv6_ext::MOBILITY && nh != 59 {
                    transport(d, data, at, nh, true);
                }
                return;
            }
        }
    }
    d.network = Network::Ipv6(info);
}

fn arp(d: &mut Dissected, data: &[u8], off: usize) {
    let Ok(a) = ArpPacket::new_checked(data.get(off..).unwrap_or(&[])) else {
        d.truncated = true;
        return;
    };
    if !a.is_ether_ipv4() {
        return;
    }
    d.network_offset = off;
    d.network = Network::Arp(ArpInfo {
        oper: a.oper(),
        sha: a.sha(),
        spa: a.spa(),
        tha: a.tha(),
        tpa: a.tpa(),
    });
}

fn transport(d: &mut Dissected, data: &[u8], off: usize, proto: u8, v6: bool) {
    let buf = data.get(off..).unwrap_or(&[]);
    let t = match proto {
        ipproto::TCP | ipproto::UDP | ipproto::SCTP => {
            let Ok(p) = PortPair::new_checked(buf) else {
                d.truncated = true;
                return;
            };
            let (src, dst) = (p.src_port(), p.dst_port());
            match proto {
                ipproto::TCP => {
                    let flags = TcpSegment::new_checked(buf).ok().map(|t| t.flags());
                    if flags.is_none() {
                        d.truncated = true;
                    }
                    Transport::Tcp { src, dst, flags }
                }
                ipproto::UDP => Transport::Udp { src, dst },
                _ => Transport::Sctp { src, dst },
            }
        }
        ipproto::ICMP | ipproto::ICMPV6 | ipproto::IGMP => {
            let Ok(m) = IcmpMessage::new_checked(buf) else {
                d.truncated = true;
                return;
            };
            match (proto, v6) {
                (ipproto::ICMP, false) => Transport::Icmp {
                    ty: m.msg_type(),
                    code: m.code(),
                },
                (ipproto::ICMPV6, true) => Transport::Icmpv6 {
                    ty: m.msg_type(),
                    code: m.code(),
                },
                (ipproto::IGMP, false) => Transport::Igmp { ty: m.msg_type() },
                _ => return,
            }
        }
        _ => return,
    };
    d.transport = t;
    d.transport_offset = off;
}

#[cfg(test)]
mod tests;
