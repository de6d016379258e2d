//! Zero-copy views of IPv6 (the fixed header and the walk over extension headers to the
//! upper layer), neighbour discovery messages, and the builder of the NS/NA frames the
//! forwarder sends. Same rules as [`crate::views`]: one length check, then accessors that
//! cannot panic.

use crate::ipv6::{self, ext_field, field};
use crate::{Field, ethernet, ethertype, icmp, icmpv6, ip_protocol, ndp};
use std::net::Ipv6Addr;

use crate::views::Mac;

#[inline]
fn get16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes([b[f.start], b[f.start + 1]])
}

#[inline]
fn addr_at(b: &[u8], f: Field) -> Ipv6Addr {
    <[u8; 16]>::try_from(&b[f]).unwrap_or_default().into()
}

/// Most extension headers walked before giving up (a packet with more is refused rather
/// than costing a loop of attacker-chosen length).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Why an IPv6 packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Error {
    /// Shorter than the fixed header, version not 6, or a payload length outside the frame.
    Malformed,
    /// An extension header runs past the packet, or there are more than
    /// [`MAX_EXTENSION_HEADERS`].
    Extension,
}

/// Where the upper layer of an IPv6 packet is, after its extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upper {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, …; `NO_NEXT`-style values pass through).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// Offset of the fragment header, when the packet is a fragment.
    pub fragment_at: Option<usize>,
    /// The fragment's offset in 8-byte units (0 for the first fragment or no fragment).
    pub fragment_offset: u16,
}

impl Upper {
    /// Whether the upper-layer header is in this packet (not a fragment other than the first).
    pub fn has_header(&self) -> bool {
        self.fragment_offset == 0
    }
}

/// An IPv6 packet whose fixed header and extension-header chain were checked.
#[derive(Debug)]
pub struct Ipv6<T> {
    buf: T,
    upper: Upper,
    end: usize,
}

impl<T: AsRef<[u8]>> Ipv6<T> {
    /// Checks version and payload length (the buffer may hold Ethernet padding after the
    /// packet), and walks the extension headers to the upper layer.
    pub fn new_checked(buf: T) -> Result<Self, Ipv6Error> {
        let b = buf.as_ref();
        if b.len() < ipv6::HEADER_LEN || b[0] >> 4 != 6 {
            return Err(Ipv6Error::Malformed);
        }
        let total = ipv6::HEADER_LEN + usize::from(get16(b, field::PAYLOAD_LEN));
        if total > b.len() {
            return Err(Ipv6Error::Malformed);
        }
        let upper = walk(&b[..total], b[field::NEXT_HEADER])?;
        Ok(Self {
            buf,
            upper,
            end: total,
        })
    }
    /// A view of the packet an ICMPv6 error quotes: cut short, so its payload length is
    /// not checked; the extension headers must lie in what is there.
    pub fn new_quoted(buf: T) -> Result<Self, Ipv6Error> {
        let b = buf.as_ref();
        if b.len() < ipv6::HEADER_LEN || b[0] >> 4 != 6 {
            return Err(Ipv6Error::Malformed);
        }
        let end = (ipv6::HEADER_LEN + usize::from(get16(b, field::PAYLOAD_LEN))).min(b.len());
        let upper = walk(&b[..end], b[field::NEXT_HEADER])?;
        Ok(Self { buf, upper, end })
    }
    /// Length of header, extension headers and payload.
    pub fn total_len(&self) -> usize {
        ipv6::HEADER_LEN + usize::from(get16(self.buf.as_ref(), field::PAYLOAD_LEN))
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr_at(self.buf.as_ref(), field::SRC)
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(self.buf.as_ref(), field::DST)
    }
    /// Where the upper layer is.
    pub fn upper(&self) -> Upper {
        self.upper
    }
    /// Whether this is a fragment.
    pub fn is_fragment(&self) -> bool {
        self.upper.fragment_at.is_some()
    }
    /// The upper-layer bytes (after every extension header, up to the payload length or,
    /// for a quoted packet, what is there).
    pub fn upper_payload(&self) -> &[u8] {
        self.buf
            .as_ref()
            .get(self.upper.offset..self.end)
            .unwrap_or_default()
    }
}

/// Walks the extension headers of `pkt` (an IPv6 packet of its exact length) from
/// `next`, the fixed header's next header.
fn walk(pkt: &[u8], mut next: u8) -> Result<Upper, Ipv6Error> {
    let mut at = ipv6::HEADER_LEN;
    let mut fragment_at = None;
    let mut fragment_offset = 0;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        let len = match next {
            ip_protocol::HOP_BY_HOP | ip_protocol::ROUTING | ip_protocol::DEST_OPTS => {
                let l = *pkt
                    .get(at + ext_field::LENGTH)
                    .ok_or(Ipv6Error::Extension)?;
                (usize::from(l) + 1) * 8
            }
            ip_protocol::AH => {
                let l = *pkt
                    .get(at + ext_field::LENGTH)
                    .ok_or(Ipv6Error::Extension)?;
                (usize::from(l) + 2) * 4
            }
            ip_protocol::FRAGMENT => {
                let f = pkt
                    .get(at + ext_field::FRAG_OFFSET.start..at + ext_field::FRAG_OFFSET.end)
                    .ok_or(Ipv6Error::Extension)?;
                fragment_at = Some(at);
                fragment_offset = u16::from_be_bytes([f[0], f[1]]) >> 3;
                ipv6::EXT_MIN_LEN
            }
            _ => {
                return Ok(Upper {
                    protocol: next,
                    offset: at,
                    fragment_at,
                    fragment_offset,
                });
            }
        };
        if at + len > pkt.len() {
            return Err(Ipv6Error::Extension);
        }
        next = pkt[at + ext_field::NEXT_HEADER];
        at += len;
    }
    Err(Ipv6Error::Extension)
}

/// A neighbour solicitation or advertisement, checked: an ICMPv6 message of type 135 or
/// 136 at least as long as its fixed part.
#[derive(Debug)]
pub struct Ndp<T>(T);

/// Which neighbour discovery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdpKind {
    /// Neighbour solicitation: who has the target?
    Solicit,
    /// Neighbour advertisement: the target is at this MAC.
    Advert,
}

impl<T: AsRef<[u8]>> Ndp<T> {
    /// A view of `icmp` (the ICMPv6 message), if it is an NS or NA.
    pub fn new_checked(icmp: T) -> Option<Self> {
        let b = icmp.as_ref();
        let ok = b.len() >= ndp::OPTIONS_AT
            && matches!(
                b[icmp::field::TYPE],
                icmpv6::NEIGHBOUR_SOLICIT | icmpv6::NEIGHBOUR_ADVERT
            )
            && b[icmp::field::CODE] == 0;
        ok.then_some(Self(icmp))
    }
    /// Solicitation or advertisement.
    pub fn kind(&self) -> NdpKind {
        if self.0.as_ref()[icmp::field::TYPE] == icmpv6::NEIGHBOUR_SOLICIT {
            NdpKind::Solicit
        } else {
            NdpKind::Advert
        }
    }
    /// The address asked about or announced.
    pub fn target(&self) -> Ipv6Addr {
        addr_at(self.0.as_ref(), ndp::field::TARGET)
    }
    /// The MAC of the link-layer address option of type `kind` (source for NS, target
    /// for NA), if present.
    pub fn lladdr(&self, kind: u8) -> Option<Mac> {
        let mut opts = self.0.as_ref().get(ndp::OPTIONS_AT..)?;
        // Every option is at least 8 bytes, so this ends after len/8 rounds.
        while opts.len() >= 2 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                return None;
            }
            if opts[0] == kind && len >= ndp::LLADDR_OPT_LEN {
                return opts[2..8].try_into().ok();
            }
            opts = &opts[len..];
        }
        None
    }
}

/// The solicited-node multicast address of `a` (RFC 4291 section 2.7.1): where an NS for
/// `a` is sent.
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of IPv6 multicast group `a` (RFC 2464: 33:33 and its last 32 bits).
pub fn multicast_mac(a: Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Length of the NS/NA frames [`emit_ndp`] writes: Ethernet, IPv6, the message and one
/// link-layer address option.
pub const NDP_FRAME_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + ndp::OPTIONS_AT + ndp::LLADDR_OPT_LEN;

/// An NS or NA to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpMessage {
    /// Solicitation or advertisement.
    pub kind: NdpKind,
    /// Ethernet source (also the link-layer address option).
    pub eth_src: Mac,
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The address asked about or announced.
    pub target: Ipv6Addr,
    /// Advertisement flags ([`ndp::FLAG_SOLICITED`], [`ndp::FLAG_OVERRIDE`]).
    pub flags: u8,
}

/// Writes `m` as an Ethernet frame into `buf` (at least [`NDP_FRAME_LEN`] bytes), with its
/// ICMPv6 checksum; returns the frame length.
pub fn emit_ndp(buf: &mut [u8], m: &NdpMessage) -> usize {
    let f = &mut buf[..NDP_FRAME_LEN];
    f.fill(0);
    f[ethernet::field::DST].copy_from_slice(&m.eth_dst);
    f[ethernet::field::SRC].copy_from_slice(&m.eth_src);
    f[ethernet::field::ETHERTYPE].copy_from_slice(&ethertype::IPV6.to_be_bytes());
    let ip = &mut f[ethernet::HEADER_LEN..];
    ip[0] = 0x60;
    let plen = (ndp::OPTIONS_AT + ndp::LLADDR_OPT_LEN) as u16;
    ip[field::PAYLOAD_LEN].copy_from_slice(&plen.to_be_bytes());
    ip[field::NEXT_HEADER] = ip_protocol::ICMPV6;
    ip[field::HOP_LIMIT] = ndp::HOP_LIMIT;
    ip[field::SRC].copy_from_slice(&m.src.octets());
    ip[field::DST].copy_from_slice(&m.dst.octets());
    let msg = &mut ip[ipv6::HEADER_LEN..];
    let (ty, opt) = match m.kind {
        NdpKind::Solicit => (icmpv6::NEIGHBOUR_SOLICIT, ndp::OPT_SOURCE_LLADDR),
        NdpKind::Advert => (icmpv6::NEIGHBOUR_ADVERT, ndp::OPT_TARGET_LLADDR),
    };
    msg[icmp::field::TYPE] = ty;
    if m.kind == NdpKind::Advert {
        msg[ndp::field::FLAGS] = m.flags;
    }
    msg[ndp::field::TARGET].copy_from_slice(&m.target.octets());
    let o = &mut msg[ndp::OPTIONS_AT..];
    o[0] = opt;
    o[1] = 1;
    o[2..8].copy_from_slice(&m.eth_src);
    let acc = crate::checksum::pseudo_header_v6(m.src, m.dst, ip_protocol::ICMPV6, u32::from(plen));
    let c = !crate::checksum::fold(crate::checksum::sum(acc, msg));
    msg[icmp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    NDP_FRAME_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn packet(next: u8, ext: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((ext.len() + upper.len()) as u16).to_be_bytes());
        p[6] = next;
        p[7] = 64;
        p[8..24].copy_from_slice(&v6("2001:db8::2").octets());
        p[24..40].copy_from_slice(&v6("2001:db8::1").octets());
        p.extend_from_slice(ext);
        p.extend_from_slice(upper);
        p
    }

    #[test]
    fn walks_extension_headers_to_the_upper_layer() {
        let plain = packet(ip_protocol::UDP, &[], &[0; 8]);
        let v = Ipv6::new_checked(&plain[..]).unwrap();
        assert_eq!(v.upper().protocol, ip_protocol::UDP);
        assert_eq!(v.upper().offset, 40);
        assert!(!v.is_fragment());
        // Hop-by-hop (8 bytes), then a first fragment, then TCP.
        let mut ext = vec![ip_protocol::FRAGMENT, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[ip_protocol::TCP, 0, 0x00, 0x01, 0, 0, 0, 7]);
        let p = packet(ip_protocol::HOP_BY_HOP, &ext, &[0; 20]);
        let v = Ipv6::new_checked(&p[..]).unwrap();
        assert_eq!(
            v.upper(),
            Upper {
                protocol: ip_protocol::TCP,
                offset: 56,
                fragment_at: Some(48),
                fragment_offset: 0
            }
        );
        assert!(v.upper().has_header());
        assert_eq!(v.upper_payload().len(), 20);
        // A later fragment (offset 185 × 8) has no upper-layer header.
        let ext = [ip_protocol::UDP, 0, 0x05, 0xc8, 0, 0, 0, 7];
        let p = packet(ip_protocol::FRAGMENT, &ext, &[0; 100]);
        let u = Ipv6::new_checked(&p[..]).unwrap().upper();
        assert_eq!((u.fragment_offset, u.has_header()), (185, false));
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let mut p = packet(ip_protocol::UDP, &[], &[0; 8]);
        assert_eq!(
            Ipv6::new_checked(&p[..39]).unwrap_err(),
            Ipv6Error::Malformed
        );
        p[0] = 0x40;
        assert_eq!(Ipv6::new_checked(&p[..]).unwrap_err(), Ipv6Error::Malformed);
        // An extension header claiming more than the packet holds.
        let p = packet(ip_protocol::DEST_OPTS, &[ip_protocol::UDP, 9], &[0; 6]);
        assert_eq!(Ipv6::new_checked(&p[..]).unwrap_err(), Ipv6Error::Extension);
        // A chain longer than the bound.
        let ext: Vec<u8> = (0..=MAX_EXTENSION_HEADERS)
            .flat_map(|_| [ip_protocol::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0])
            .collect();
        let p = packet(ip_protocol::DEST_OPTS, &ext, &[]);
        assert_eq!(Ipv6::new_checked(&p[..]).unwrap_err(), Ipv6Error::Extension);
        // Padding after the packet is fine.
        let mut p = packet(ip_protocol::UDP, &[], &[0; 8]);
        p.extend_from_slice(&[0; 10]);
        assert_eq!(Ipv6::new_checked(&p[..]).unwrap().total_len(), 48);
    }

    #[test]
    fn emitted_ndp_parses_back_and_verifies() {
        let mut buf = [0u8; 128];
        let m = NdpMessage {
            kind: NdpKind::Solicit,
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: multicast_mac(solicited_node(v6("2001:db8::abcd:3"))),
            src: v6("2001:db8::1"),
            dst: solicited_node(v6("2001:db8::abcd:3")),
            target: v6("2001:db8::abcd:3"),
            flags: 0,
        };
        let n = emit_ndp(&mut buf, &m);
        assert_eq!(m.dst, v6("ff02::1:ffcd:3"));
        assert_eq!(&buf[..6], &[0x33, 0x33, 0xff, 0xcd, 0, 3]);
        let ip = Ipv6::new_checked(&buf[14..n]).unwrap();
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!(ip.upper().protocol, ip_protocol::ICMPV6);
        let msg = ip.upper_payload();
        let acc = crate::checksum::pseudo_header_v6(ip.src(), ip.dst(), 58, msg.len() as u32);
        assert!(crate::checksum::verifies(acc, msg));
        let nd = Ndp::new_checked(msg).unwrap();
        assert_eq!(nd.kind(), NdpKind::Solicit);
        assert_eq!(nd.target(), m.target);
        assert_eq!(nd.lladdr(ndp::OPT_SOURCE_LLADDR), Some(m.eth_src));
        assert_eq!(nd.lladdr(ndp::OPT_TARGET_LLADDR), None);
    }

    #[test]
    fn ndp_options_with_a_zero_length_end_the_walk() {
        let mut msg = vec![0u8; 24];
        msg[0] = icmpv6::NEIGHBOUR_ADVERT;
        msg.extend_from_slice(&[5, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(Ndp::new_checked(&msg[..]).unwrap().lladdr(5), None);
        assert!(Ndp::new_checked(&msg[..20]).is_none());
    }
}
