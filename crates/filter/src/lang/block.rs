//! Filter blocks: `field op value`, parsed into a [`Pred`] and tested against a
//! [`Dissected`] packet (or, conservatively, a [`crate::summary::Facts`] such as a chunk summary).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::time::{Date, parse_point};
use crate::dissect::{Dissected, Network, Transport, ethertype, ipproto};
use crate::error::ErrorKind;
use crate::summary::Facts;

/// A parse failure inside a block: kind, message and byte offset relative to the block.
#[derive(Debug)]
pub(crate) struct BlockError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) offset: usize,
}

fn err(kind: ErrorKind, offset: usize, message: impl Into<String>) -> BlockError {
    BlockError {
        kind,
        message: message.into(),
        offset,
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// Which addresses or ports of a packet a block looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Either,
    Src,
    Dst,
}

/// A numeric test: `==`/`!=` against an inclusive range `lo..=hi` (a single value has
/// lo == hi), or an ordering against one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NumTest {
    op: Op,
    lo: u64,
    hi: u64,
}

impl NumTest {
    /// True for one value. `!=` is handled by the caller (none of the values match
    /// the `==` test), so here it tests the `==` condition.
    fn hit(&self, v: u64) -> bool {
        match self.op {
            Op::Eq | Op::Ne => self.lo <= v && v <= self.hi,
            Op::Lt => v < self.lo,
            Op::Le => v <= self.lo,
            Op::Gt => v > self.lo,
            Op::Ge => v >= self.lo,
        }
    }

    /// Applies the multi-value rule to the values a packet has for the field: false when
    /// it has none; `!=` when no value hits; otherwise when some value hits.
    fn test<I: IntoIterator<Item = u64>>(&self, values: I) -> bool {
        let mut any_value = false;
        for v in values {
            any_value = true;
            if self.hit(v) {
                return self.op != Op::Ne;
            }
        }
        any_value && self.op == Op::Ne
    }

    /// The smallest and largest value that can satisfy the test (for `!=`: anything).
    fn bounds(&self, max: u64) -> (u64, u64) {
        match self.op {
            Op::Eq => (self.lo, self.hi),
            Op::Ne => (0, max),
            Op::Lt => (0, self.lo.saturating_sub(1)),
            Op::Le => (0, self.lo),
            Op::Gt => (self.lo.saturating_add(1), max),
            Op::Ge => (self.lo, max),
        }
    }
}

/// An IPv4 or IPv6 network (an address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Which IP versions an `ipv4.*`, `ipv6.*` or `ip.*` field looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
    Any,
}

/// Which transport a port field looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PortProto {
    Tcp,
    Udp,
}

/// One compiled filter block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pred {
    /// `ether.proto`: any EtherType of the header chain is one of `values`.
    EtherProto { ne: bool, values: [u16; 3], n: u8 },
    /// `ether.addr[.src|.dst]`: address & mask == value & mask.
    EtherAddr {
        dir: Dir,
        ne: bool,
        value: [u8; 6],
        mask: [u8; 6],
    },
    /// `ether.fcs == fail|ok`.
    EtherFcs { want_bad: bool },
    /// `ipv4.addr`, `ipv6.addr`, `ip.addr` (+ `.src`/`.dst`).
    IpAddr {
        family: Family,
        dir: Dir,
        ne: bool,
        net: IpNet,
    },
    /// `ipv4.proto`, `ipv6.proto`, `ip.proto`.
    IpProto { family: Family, test: NumTest },
    /// `tcp.port`, `udp.port` (+ `.src`/`.dst`).
    Port {
        proto: PortProto,
        dir: Dir,
        test: NumTest,
    },
    /// `tcp.flags`: the packet's flags contain all of `mask` (`ne`: not all of them).
    TcpFlags { ne: bool, mask: u8 },
    /// `frame.time`: `lo <= ts < hi` (negated for `!=`).
    FrameTime { ne: bool, lo: u64, hi: u64 },
    /// `frame.size` (the original wire length).
    FrameSize { test: NumTest },
    /// `vlan.id`: any tag of the stack.
    VlanId { test: NumTest },
    /// `mpls.label`: any label of the stack.
    MplsLabel { test: NumTest },
    /// `icmp.type`, `icmp.code`, `icmpv6.type`, `icmpv6.code`.
    Icmp { v6: bool, code: bool, test: NumTest },
}

/// Everything a block may look at for one packet.
pub(crate) struct PacketView<'a> {
    pub(crate) ts_ns: u64,
    pub(crate) orig_len: u32,
    pub(crate) data: &'a [u8],
    pub(crate) d: &'a Dissected,
    pub(crate) fcs_checkable: bool,
}

impl Pred {
    /// True when evaluating this block needs the dissection of the packet.
    pub(crate) fn needs_dissect(&self) -> bool {
        !matches!(
            self,
            Self::FrameTime { .. } | Self::FrameSize { .. } | Self::EtherFcs { .. }
        )
    }

    pub(crate) fn eval(&self, p: &PacketView<'_>) -> bool {
        let d = p.d;
        match self {
            Self::EtherProto { ne, values, n } => {
                if d.ethertypes.is_empty() {
                    return false;
                }
                let wanted = values.get(..usize::from(*n)).unwrap_or(&[]);
                let hit = d.ethertypes.as_slice().iter().any(|t| wanted.contains(t));
                hit != *ne
            }
            Self::EtherAddr {
                dir,
                ne,
                value,
                mask,
            } => {
                let (Some(src), Some(dst)) = (d.eth_src, d.eth_dst) else {
                    return false;
                };
                let m = |a: [u8; 6]| {
                    a.iter()
                        .zip(value)
                        .zip(mask)
                        .all(|((a, v), m)| a & m == v & m)
                };
                let hit = match dir {
                    Dir::Either => m(src.0) || m(dst.0),
                    Dir::Src => m(src.0),
                    Dir::Dst => m(dst.0),
                };
                hit != *ne
            }
            Self::EtherFcs { want_bad } => {
                if !p.fcs_checkable {
                    return false;
                }
                fcs_is_bad(p.data) == *want_bad
            }
            Self::IpAddr {
                family,
                dir,
                ne,
                net,
            } => {
                let Some((src, dst)) = d.ip_addrs() else {
                    return false;
                };
                let fam_ok = match family {
                    Family::V4 => src.is_ipv4(),
                    Family::V6 => src.is_ipv6(),
                    Family::Any => true,
                };
                if !fam_ok {
                    return false;
                }
                let hit = match dir {
                    Dir::Either => net.contains(src) || net.contains(dst),
                    Dir::Src => net.contains(src),
                    Dir::Dst => net.contains(dst),
                };
                hit != *ne
            }
            Self::IpProto { family, test } => {
                let proto = match (family, d.network) {
                    (Family::V4 | Family::Any, Network::Ipv4(i)) => Some(i.proto),
                    (Family::V6 | Family::Any, Network::Ipv6(i)) => i.proto,
                    _ => None,
                };
                test.test(proto.map(u64::from))
            }
            Self::Port { proto, dir, test } => {
                let ports = match (proto, d.transport) {
                    (PortProto::Tcp, Transport::Tcp { src, dst, .. })
                    | (PortProto::Udp, Transport::Udp { src, dst }) => (src, dst),
                    _ => return false,
                };
                match dir {
                    Dir::Either => test.test([u64::from(ports.0), u64::from(ports.1)]),
                    Dir::Src => test.test([u64::from(ports.0)]),
                    Dir::Dst => test.test([u64::from(ports.1)]),
                }
            }
            Self::TcpFlags { ne, mask } => match d.transport {
                Transport::Tcp { flags: Some(f), .. } => (f & mask == *mask) != *ne,
                _ => false,
            },
            Self::FrameTime { ne, lo, hi } => (*lo <= p.ts_ns && p.ts_ns < *hi) != *ne,
            Self::FrameSize { test } => test.test([u64::from(p.orig_len)]),
            Self::VlanId { test } => test.test(d.vlan_ids.as_slice().iter().map(|&v| u64::from(v))),
            Self::MplsLabel { test } => {
                test.test(d.mpls_labels.as_slice().iter().map(|&v| u64::from(v)))
            }
            Self::Icmp { v6, code, test } => {
                let v = match (v6, d.transport) {
                    (false, Transport::Icmp { ty, code: c })
                    | (true, Transport::Icmpv6 { ty, code: c }) => {
                        if *code {
                            c
                        } else {
                            ty
                        }
                    }
                    _ => return false,
                };
                test.test([u64::from(v)])
            }
        }
    }

    /// False only when no packet summarized by `s` can satisfy this block.
    pub(crate) fn may_match(&self, s: &dyn Facts) -> bool {
        if s.is_empty() {
            return false;
        }
        match self {
            Self::EtherProto {
                ne: false,
                values,
                n,
            } => values
                .get(..usize::from(*n))
                .unwrap_or(&[])
                .iter()
                .any(|&t| s.may_have_ethertype(t)),
            Self::IpAddr { ne: false, net, .. } => s.may_have_net(net.addr, net.prefix),
            Self::IpProto { family, test } => {
                let (lo, hi) = test.bounds(255);
                (lo..=hi.min(255)).any(|p| {
                    let p = p as u8;
                    match family {
                        Family::V4 => s.may_have_ipv4_proto(p),
                        Family::V6 => s.may_have_ipv6_proto(p),
                        Family::Any => s.may_have_ipv4_proto(p) || s.may_have_ipv6_proto(p),
                    }
                })
            }
            Self::Port { proto, test, .. } => {
                let ip = match proto {
                    PortProto::Tcp => ipproto::TCP,
                    PortProto::Udp => ipproto::UDP,
                };
                let (lo, hi) = test.bounds(65_535);
                if test.op == Op::Eq && hi - lo < 64 {
                    (lo..=hi).any(|p| s.may_have_port(ip, p as u16))
                } else {
                    s.may_have_ipv4_proto(ip) || s.may_have_ipv6_proto(ip)
                }
            }
            Self::TcpFlags { ne: false, mask } => s.may_have_tcp_flags(*mask),
            Self::FrameSize { test } => {
                let (lo, hi) = test.bounds(u64::from(u32::MAX));
                s.may_have_len_in(lo, hi)
            }
            Self::VlanId { test } if test.op == Op::Eq && test.hi - test.lo < 64 => {
                (test.lo..=test.hi).any(|v| s.may_have_vlan(v as u16))
            }
            Self::MplsLabel { test } if test.op == Op::Eq && test.hi - test.lo < 64 => {
                (test.lo..=test.hi).any(|v| s.may_have_mpls_label(v as u32))
            }
            _ => true,
        }
    }
}

/// True when the last 4 bytes of an Ethernet frame are not the CRC-32 of the rest.
pub(crate) fn fcs_is_bad(frame: &[u8]) -> bool {
    let Some(split) = frame.len().checked_sub(4) else {
        return false;
    };
    let (body, fcs) = frame.split_at(split);
    let want = u32::from_le_bytes([fcs[0], fcs[1], fcs[2], fcs[3]]);
    crc32(body) != want
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = u32::MAX;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The fields the language knows, for error messages.
pub(crate) const FIELDS: &[&str] = &[
    "ether.proto",
    "ether.addr",
    "ether.addr.src",
    "ether.addr.dst",
    "ether.fcs",
    "ipv4.addr",
    "ipv4.addr.src",
    "ipv4.addr.dst",
    "ipv4.proto",
    "ipv6.addr",
    "ipv6.addr.src",
    "ipv6.addr.dst",
    "ipv6.proto",
    "ip.addr",
    "ip.addr.src",
    "ip.addr.dst",
    "ip.proto",
    "tcp.port",
    "tcp.port.src",
    "tcp.port.dst",
    "tcp.flags",
    "udp.port",
    "udp.port.src",
    "udp.port.dst",
    "frame.time",
    "frame.size",
    "vlan.id",
    "mpls.label",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
];

/// Parses one block, `field op value`. Offsets in errors are relative to `text`.
pub(crate) fn parse_block(text: &str, today: Date) -> Result<Pred, BlockError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let field_start = i;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
    {
        i += 1;
    }
    let field = &text[field_start..i];
    if field.is_empty() {
        return Err(err(
            ErrorKind::Syntax,
            field_start,
            "expected a field name such as `ipv4.proto`",
        ));
    }
    let field_lc = field.to_ascii_lowercase();
    if !FIELDS.contains(&field_lc.as_str()) {
        let hint = closest_field(&field_lc)
            .map(|f| format!("; did you mean `{f}`?"))
            .unwrap_or_default();
        return Err(err(
            ErrorKind::UnknownField,
            field_start,
            format!("unknown field `{field}`{hint}"),
        ));
    }
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let op_start = i;
    let two = text.get(i..i + 2).unwrap_or("");
    let one = text.get(i..i + 1).unwrap_or("");
    let (op, len) = match (two, one) {
        ("==", _) => (Op::Eq, 2),
        ("!=", _) => (Op::Ne, 2),
        ("<=", _) => (Op::Le, 2),
        (">=", _) => (Op::Ge, 2),
        (_, "<") => (Op::Lt, 1),
        (_, ">") => (Op::Gt, 1),
        (_, "=") => {
            return Err(err(
                ErrorKind::Syntax,
                op_start,
                "use `==` to compare, not `=`",
            ));
        }
        _ => {
            return Err(err(
                ErrorKind::Syntax,
                op_start,
                "expected a comparison operator (==, !=, <, <=, >, >=) after the field name",
            ));
        }
    };
    i += len;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let value_start = i;
    let value = text[i..].trim_end();
    if value.is_empty() {
        return Err(err(
            ErrorKind::BadValue,
            value_start,
            format!("missing value after `{}`", op.as_str()),
        ));
    }
    let v = ValueCtx {
        text: value,
        at: value_start,
        op,
        op_at: op_start,
    };
    let (base, dir) = split_dir(&field_lc);
    match base {
        "ether.proto" => ether_proto(&v),
        "ether.addr" => ether_addr(&v, dir),
        "ether.fcs" => {
            v.eq_ne_only("ether.fcs")?;
            let want_bad = match value.to_ascii_lowercase().as_str() {
                "fail" | "bad" => true,
                "ok" | "pass" | "good" => false,
                _ => return Err(v.bad("expected `fail` or `ok`")),
            };
            Ok(Pred::EtherFcs {
                want_bad: want_bad != (op == Op::Ne),
            })
        }
        "ipv4.addr" => ip_addr(&v, Family::V4, dir),
        "ipv6.addr" => ip_addr(&v, Family::V6, dir),
        "ip.addr" => ip_addr(&v, Family::Any, dir),
        "ipv4.proto" => Ok(Pred::IpProto {
            family: Family::V4,
            test: v.num(255, ip_proto_name)?,
        }),
        "ipv6.proto" => Ok(Pred::IpProto {
            family: Family::V6,
            test: v.num(255, ip_proto_name)?,
        }),
        "ip.proto" => Ok(Pred::IpProto {
            family: Family::Any,
            test: v.num(255, ip_proto_name)?,
        }),
        "tcp.port" => Ok(Pred::Port {
            proto: PortProto::Tcp,
            dir,
            test: v.num(65_535, no_names)?,
        }),
        "udp.port" => Ok(Pred::Port {
            proto: PortProto::Udp,
            dir,
            test: v.num(65_535, no_names)?,
        }),
        "tcp.flags" => tcp_flags(&v),
        "frame.time" => frame_time(&v, today),
        "frame.size" => Ok(Pred::FrameSize {
            test: v.num(u64::from(u32::MAX), no_names)?,
        }),
        "vlan.id" => Ok(Pred::VlanId {
            test: v.num(4095, no_names)?,
        }),
        "mpls.label" => Ok(Pred::MplsLabel {
            test: v.num(0xf_ffff, no_names)?,
        }),
        "icmp.type" => Ok(Pred::Icmp {
            v6: false,
            code: false,
            test: v.num(255, icmp_type_name)?,
        }),
        "icmp.code" => Ok(Pred::Icmp {
            v6: false,
            code: true,
            test: v.num(255, no_names)?,
        }),
        "icmpv6.type" => Ok(Pred::Icmp {
            v6: true,
            code: false,
            test: v.num(255, icmpv6_type_name)?,
        }),
        "icmpv6.code" => Ok(Pred::Icmp {
            v6: true,
            code: true,
            test: v.num(255, no_names)?,
        }),
        _ => Err(err(
            ErrorKind::UnknownField,
            field_start,
            format!("unknown field `{field}`"),
        )),
    }
}

fn split_dir(field: &str) -> (&str, Dir) {
    if let Some(b) = field.strip_suffix(".src") {
        (b, Dir::Src)
    } else if let Some(b) = field.strip_suffix(".dst") {
        (b, Dir::Dst)
    } else {
        (field, Dir::Either)
    }
}

fn closest_field(f: &str) -> Option<&'static str> {
    // A cheap "did you mean": same first component, or a shared prefix of 4+ bytes.
    let head = f.split('.').next().unwrap_or("");
    FIELDS
        .iter()
        .copied()
        .filter(|c| c.split('.').next() == Some(head))
        .max_by_key(|c| c.bytes().zip(f.bytes()).take_while(|(a, b)| a == b).count())
}

struct ValueCtx<'a> {
    text: &'a str,
    at: usize,
    op: Op,
    op_at: usize,
}

fn no_names(_: &str) -> Option<u64> {
    None
}

fn ip_proto_name(s: &str) -> Option<u64> {
    Some(match s {
        "icmp" => 1,
        "igmp" => 2,
        "ipip" | "ipv4" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "rsvp" => 46,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "icmp6" => 58,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        _ => return None,
    })
}

fn icmp_type_name(s: &str) -> Option<u64> {
    Some(match s {
        "echo-reply" | "echoreply" => 0,
        "unreachable" | "dest-unreach" => 3,
        "source-quench" => 4,
        "redirect" => 5,
        "echo-request" | "echo" => 8,
        "router-advert" => 9,
        "router-solicit" => 10,
        "time-exceeded" => 11,
        "param-problem" => 12,
        "timestamp" => 13,
        "timestamp-reply" => 14,
        _ => return None,
    })
}

fn icmpv6_type_name(s: &str) -> Option<u64> {
    Some(match s {
        "unreachable" | "dest-unreach" => 1,
        "packet-too-big" => 2,
        "time-exceeded" => 3,
        "param-problem" => 4,
        "echo-request" | "echo" => 128,
        "echo-reply" | "echoreply" => 129,
        "router-solicit" => 133,
        "router-advert" => 134,
        "neighbor-solicit" => 135,
        "neighbor-advert" => 136,
        "redirect" => 137,
        _ => return None,
    })
}

fn parse_u64(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl ValueCtx<'_> {
    fn bad(&self, msg: impl Into<String>) -> BlockError {
        err(ErrorKind::BadValue, self.at, msg)
    }

    fn eq_ne_only(&self, field: &str) -> Result<(), BlockError> {
        match self.op {
            Op::Eq | Op::Ne => Ok(()),
            other => Err(err(
                ErrorKind::BadOperator,
                self.op_at,
                format!(
                    "`{field}` can only be compared with == or !=, not {}",
                    other.as_str()
                ),
            )),
        }
    }

    /// A number, a name, or (for == and !=) a range `a-b`.
    fn num(&self, max: u64, names: fn(&str) -> Option<u64>) -> Result<NumTest, BlockError> {
        let one = |s: &str, at: usize| -> Result<u64, BlockError> {
            let s = s.trim();
            let v = parse_u64(s)
                .or_else(|| names(&s.to_ascii_lowercase()))
                .ok_or_else(|| err(ErrorKind::BadValue, at, format!("`{s}` is not a number")))?;
            if v > max {
                return Err(err(
                    ErrorKind::BadValue,
                    at,
                    format!("{v} is out of range (0-{max})"),
                ));
            }
            Ok(v)
        };
        let whole = names(&self.text.to_ascii_lowercase());
        let (lo, hi) = match self.text.split_once('-') {
            Some((a, b)) if whole.is_none() => {
                if !matches!(self.op, Op::Eq | Op::Ne) {
                    return Err(err(
                        ErrorKind::BadOperator,
                        self.op_at,
                        format!(
                            "a range can only be compared with == or !=, not {}",
                            self.op.as_str()
                        ),
                    ));
                }
                let lo = one(a, self.at)?;
                let hi = one(b, self.at + a.len() + 1)?;
                if lo > hi {
                    return Err(self.bad(format!("empty range: {lo} is greater than {hi}")));
                }
                (lo, hi)
            }
            _ => {
                let v = one(self.text, self.at)?;
                (v, v)
            }
        };
        Ok(NumTest {
            op: self.op,
            lo,
            hi,
        })
    }
}

fn ether_proto(v: &ValueCtx<'_>) -> Result<Pred, BlockError> {
    v.eq_ne_only("ether.proto")?;
    let lc = v.text.to_ascii_lowercase();
    let (values, n): ([u16; 3], u8) = match lc.as_str() {
        "ipv4" | "ip" => ([ethertype::IPV4, 0, 0], 1),
        "ipv6" | "ip6" => ([ethertype::IPV6, 0, 0], 1),
        "arp" => ([ethertype::ARP, 0, 0], 1),
        "rarp" => ([ethertype::RARP, 0, 0], 1),
        "vlan" => ([ethertype::VLAN, ethertype::QINQ, ethertype::QINQ_OLD], 3),
        "mpls" => ([ethertype::MPLS, ethertype::MPLS_MC, 0], 2),
        "pppoe" => ([ethertype::PPPOE_SESSION, ethertype::PPPOE_DISC, 0], 2),
        "lldp" => ([0x88cc, 0, 0], 1),
        _ => match parse_u64(&lc) {
            Some(x) if x <= 0xffff => ([x as u16, 0, 0], 1),
            _ => {
                return Err(v.bad(format!(
                    "`{}` is not an EtherType: use ipv4, ipv6, arp, rarp, vlan, mpls, pppoe, lldp or a number such as 0x0800",
                    v.text
                )));
            }
        },
    };
    Ok(Pred::EtherProto {
        ne: v.op == Op::Ne,
        values,
        n,
    })
}

fn ether_addr(v: &ValueCtx<'_>, dir: Dir) -> Result<Pred, BlockError> {
    v.eq_ne_only("ether.addr")?;
    let mut value = [0u8; 6];
    let mut mask = [0u8; 6];
    let text = v.text;
    // A trailing ':' means "any bytes from here on" (`00:ba:be:`).
    let (body, open_end) = match text.strip_suffix(':') {
        Some(b) => (b, true),
        None => (text, false),
    };
    let groups: Vec<&str> = body.split([':', '-']).collect();
    let wildcard_end = groups.last() == Some(&"*");
    if groups.len() > 6 || (groups.len() < 6 && !open_end && !wildcard_end) {
        return Err(v.bad(format!(
            "`{text}` is not a MAC address: give 6 bytes (00:ba:be:11:22:33) or a prefix ending in `:` or `*` (00:ba:be:)"
        )));
    }
    let mut at = v.at;
    for (i, g) in groups.iter().enumerate() {
        if *g == "*" {
            // wildcard byte: mask stays 0
        } else if (1..=2).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit()) {
            value[i] = u8::from_str_radix(g, 16)
                .map_err(|_| err(ErrorKind::BadValue, at, "bad hex byte"))?;
            mask[i] = 0xff;
        } else {
            return Err(err(
                ErrorKind::BadValue,
                at,
                format!("`{g}` is not a hex byte or `*`"),
            ));
        }
        at += g.len() + 1;
    }
    Ok(Pred::EtherAddr {
        dir,
        ne: v.op == Op::Ne,
        value,
        mask,
    })
}

fn ip_addr(v: &ValueCtx<'_>, family: Family, dir: Dir) -> Result<Pred, BlockError> {
    v.eq_ne_only("an address field")?;
    let (addr_s, prefix_s) = match v.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v.text, None),
    };
    let addr: IpAddr = match family {
        Family::V4 => addr_s
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| v.bad(format!("`{addr_s}` is not an IPv4 address")))?,
        Family::V6 => addr_s
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| v.bad(format!("`{addr_s}` is not an IPv6 address")))?,
        Family::Any => addr_s
            .parse::<IpAddr>()
            .map_err(|_| v.bad(format!("`{addr_s}` is not an IP address")))?,
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_s {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(err(
                    ErrorKind::BadValue,
                    v.at + addr_s.len() + 1,
                    format!("`/{p}` is not a prefix length (0-{max})"),
                ));
            }
        },
    };
    Ok(Pred::IpAddr {
        family,
        dir,
        ne: v.op == Op::Ne,
        net: IpNet { addr, prefix },
    })
}

fn tcp_flags(v: &ValueCtx<'_>) -> Result<Pred, BlockError> {
    v.eq_ne_only("tcp.flags")?;
    let lc = v.text.to_ascii_lowercase();
    let mask = if let Some(n) = parse_u64(&lc) {
        if n == 0 || n > 0xff {
            return Err(v.bad("tcp.flags takes flag names (syn+ack) or a number 1-255"));
        }
        n as u8
    } else {
        let mut m = 0u8;
        let mut at = v.at;
        for name in lc.split(['+', '|', ',']) {
            let bit = match name.trim() {
                "fin" => 0x01,
                "syn" => 0x02,
                "rst" => 0x04,
                "psh" | "push" => 0x08,
                "ack" => 0x10,
                "urg" => 0x20,
                "ece" => 0x40,
                "cwr" => 0x80,
                other => {
                    return Err(err(
                        ErrorKind::BadValue,
                        at,
                        format!(
                            "`{other}` is not a TCP flag (fin, syn, rst, psh, ack, urg, ece, cwr)"
                        ),
                    ));
                }
            };
            m |= bit;
            at += name.len() + 1;
        }
        m
    };
    Ok(Pred::TcpFlags {
        ne: v.op == Op::Ne,
        mask,
    })
}

fn frame_time(v: &ValueCtx<'_>, today: Date) -> Result<Pred, BlockError> {
    let point = |s: &str, at: usize| {
        parse_point(s.trim(), today).map_err(|m| err(ErrorKind::BadValue, at, m))
    };
    if let Some((a, b)) = v.text.split_once('-') {
        if !matches!(v.op, Op::Eq | Op::Ne) {
            return Err(err(
                ErrorKind::BadOperator,
                v.op_at,
                "a time range can only be compared with == or !=",
            ));
        }
        let lo = point(a, v.at)?;
        let hi = point(b, v.at + a.len() + 1)?;
        if lo >= hi {
            return Err(v.bad("empty time range: the start is not before the end"));
        }
        return Ok(Pred::FrameTime {
            ne: v.op == Op::Ne,
            lo,
            hi,
        });
    }
    let t = point(v.text, v.at)?;
    // The manual's `frame.time == T` means "at or after T".
    Ok(match v.op {
        Op::Eq => Pred::FrameTime {
            ne: false,
            lo: t,
            hi: u64::MAX,
        },
        Op::Ne => Pred::FrameTime {
            ne: true,
            lo: t,
            hi: u64::MAX,
        },
        Op::Ge => Pred::FrameTime {
            ne: false,
            lo: t,
            hi: u64::MAX,
        },
        Op::Gt => Pred::FrameTime {
            ne: false,
            lo: t.saturating_add(1),
            hi: u64::MAX,
        },
        Op::Lt => Pred::FrameTime {
            ne: false,
            lo: 0,
            hi: t,
        },
        Op::Le => Pred::FrameTime {
            ne: false,
            lo: 0,
            hi: t.saturating_add(1),
        },
    })
}
