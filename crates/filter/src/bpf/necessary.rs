//! A necessary condition for a tcpdump expression, for chunk skipping.
//!
//! libpcap's compiled program cannot be inspected for "which hosts or ports does it
//! need", so this module reads the expression text itself with a deliberately small
//! parser. It understands only the common primitives on Ethernet, and gives up (answers
//! "may match") on anything else:
//!
//! * `ip`, `ip6`, `arp`, `rarp`, `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `igmp`;
//! * `ip proto N`, `ip6 proto N`, `proto N` (numbers, or `\tcp`-style names);
//! * `[ip|ip6|arp|rarp] [src|dst] host ADDR`, `src ADDR`, `dst ADDR` (IPv4 or IPv6 literals);
//! * `[src|dst] net ADDR/LEN` (full literals with a prefix length);
//! * `[tcp|udp|sctp] [src|dst] port N`, `... portrange A-B` (numbers only);
//! * `less N`, `greater N`;
//! * `and`/`&&`, `or`/`||` (equal precedence, left to right, as in tcpdump) and
//!   parentheses; `not`/`!` is parsed but its operand is replaced by "anything".
//!
//! Anything else — `vlan`, `mpls` and `pppoes` (which shift later offsets), byte tests
//! (`tcp[13]`), comparisons, service or host names, shorthand like `host a or b` — makes
//! the whole expression "may match". Every recognized primitive is mapped to a check
//! that is *implied* by it on every packet (see [`crate::summary`] for how the summary
//! records the bytes libpcap's code reads), and `and`/`or` of implied checks are implied
//! by `and`/`or` of the primitives, so the result never rejects a chunk that holds a
//! matching packet.

use std::net::IpAddr;

use crate::summary::Facts;

/// What a matching packet must satisfy (an over-approximation of the expression).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cond {
    /// Anything may match.
    True,
    /// Some EtherType of the frame is `.0`.
    EtherType(u16),
    /// IPv4 protocol `v4` or IPv6 next header `v6`.
    Proto {
        v4: Option<u8>,
        v6: Option<u8>,
    },
    /// An address in `addr/prefix`.
    Net(IpAddr, u8),
    /// A port in `lo..=hi` for one of the protocols.
    Port {
        protos: Vec<u8>,
        lo: u16,
        hi: u16,
    },
    /// Original length in `lo..=hi`.
    Len(u64, u64),
    And(Box<Self>, Box<Self>),
    Or(Box<Self>, Box<Self>),
}

/// The necessary condition derived from one expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Necessary(Cond);

impl Necessary {
    /// Derives the condition for `expr` on link type `linktype`; anything not fully
    /// understood (or a link other than Ethernet) gives "may match".
    pub(crate) fn derive(expr: &str, linktype: u16) -> Self {
        if linktype != 1 {
            return Self(Cond::True);
        }
        let Some(toks) = tokenize(expr) else {
            return Self(Cond::True);
        };
        if toks.is_empty() {
            return Self(Cond::True);
        }
        let mut p = Parser {
            toks: &toks,
            pos: 0,
            depth: 0,
        };
        match p.expr() {
            Some(c) if p.pos == toks.len() => Self(c),
            _ => Self(Cond::True),
        }
    }

    /// True when the derived condition gives up (everything may match).
    pub fn is_trivial(&self) -> bool {
        self.0 == Cond::True
    }

    /// Checks the condition against a chunk summary.
    pub(crate) fn may_match(&self, s: &dyn Facts) -> bool {
        !s.is_empty() && eval(&self.0, s)
    }
}

fn eval(c: &Cond, s: &dyn Facts) -> bool {
    match c {
        Cond::True => true,
        Cond::EtherType(t) => s.may_have_ethertype(*t),
        Cond::Proto { v4, v6 } => {
            v4.is_some_and(|p| s.may_have_ipv4_proto(p))
                || v6.is_some_and(|p| s.may_have_ipv6_proto(p))
        }
        Cond::Net(a, p) => s.may_have_net(*a, *p),
        Cond::Port { protos, lo, hi } => {
            if hi - lo < 64 {
                protos
                    .iter()
                    .any(|&pr| (*lo..=*hi).any(|port| s.may_have_port(pr, port)))
            } else {
                protos
                    .iter()
                    .any(|&pr| s.may_have_ipv4_proto(pr) || s.may_have_ipv6_proto(pr))
            }
        }
        Cond::Len(lo, hi) => s.may_have_len_in(*lo, *hi),
        Cond::And(a, b) => eval(a, s) && eval(b, s),
        Cond::Or(a, b) => eval(a, s) || eval(b, s),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    LParen,
    RParen,
    Not,
    And,
    Or,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = b.get(i..i + 2);
        match c {
            b'(' => out.push(Tok::LParen),
            b')' => out.push(Tok::RParen),
            b'!' if two != Some(b"!=") => out.push(Tok::Not),
            b'&' if two == Some(b"&&") => {
                out.push(Tok::And);
                i += 1;
            }
            b'|' if two == Some(b"||") => {
                out.push(Tok::Or);
                i += 1;
            }
            c if c.is_ascii_alphanumeric()
                || matches!(c, b'.' | b':' | b'/' | b'-' | b'\\' | b'_') =>
            {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || matches!(b[i], b'.' | b':' | b'/' | b'-' | b'\\' | b'_'))
                {
                    i += 1;
                }
                let w = s[start..i].to_ascii_lowercase();
                out.push(match w.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Word(w),
                });
                continue;
            }
            // `[`, `=`, `<`, `>`, `&` alone, `|` alone, ...: not understood.
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn word(&self, ahead: usize) -> Option<&str> {
        match self.toks.get(self.pos + ahead) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    /// `and` and `or` have equal precedence and associate left to right in tcpdump.
    fn expr(&mut self) -> Option<Cond> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    let right = self.unary()?;
                    left = Cond::And(Box::new(left), Box::new(right));
                }
                Some(Tok::Or) => {
                    self.pos += 1;
                    let right = self.unary()?;
                    left = Cond::Or(Box::new(left), Box::new(right));
                }
                _ => return Some(left),
            }
        }
    }

    fn unary(&mut self) -> Option<Cond> {
        self.depth += 1;
        if self.depth > 100 {
            return None;
        }
        let r = match self.peek()? {
            Tok::Not => {
                self.pos += 1;
                self.unary()?;
                Some(Cond::True)
            }
            Tok::LParen => {
                self.pos += 1;
                let c = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return None;
                }
                self.pos += 1;
                Some(c)
            }
            Tok::Word(_) => self.primitive(),
            _ => None,
        };
        self.depth -= 1;
        r
    }

    fn take_word(&mut self) -> Option<String> {
        let w = self.word(0)?.to_owned();
        self.pos += 1;
        Some(w)
    }

    fn primitive(&mut self) -> Option<Cond> {
        let first = self.take_word()?;
        match first.as_str() {
            "less" | "greater" => {
                let n: u64 = parse_num(&self.take_word()?)?;
                return Some(if first == "less" {
                    Cond::Len(0, n)
                } else {
                    Cond::Len(n, u64::MAX)
                });
            }
            "ip" | "ip6" | "arp" | "rarp" | "tcp" | "udp" | "sctp" | "icmp" | "icmp6" | "igmp" => {}
            "src" | "dst" | "host" | "net" | "port" | "portrange" | "proto" => {
                self.pos -= 1;
                return self.qualified(None);
            }
            _ => return None,
        }
        // A protocol word alone, or followed by more qualifiers.
        match self.word(0) {
            Some("src" | "dst" | "host" | "net" | "port" | "portrange" | "proto") => {
                self.qualified(Some(first))
            }
            _ => proto_alone(&first),
        }
    }

    /// `[src|dst] (host|net|port|portrange|proto) VALUE`, or `src|dst ADDR`.
    fn qualified(&mut self, proto: Option<String>) -> Option<Cond> {
        let mut w = self.take_word()?;
        if w == "src" || w == "dst" {
            w = self.take_word()?;
            if let Ok(a) = w.parse::<IpAddr>() {
                return host_cond(proto.as_deref(), a);
            }
        }
        match w.as_str() {
            "host" => {
                let a: IpAddr = self.take_word()?.parse().ok()?;
                host_cond(proto.as_deref(), a)
            }
            "net" => {
                if !matches!(proto.as_deref(), None | Some("ip" | "ip6")) {
                    return None;
                }
                let v = self.take_word()?;
                let (a, p) = v.split_once('/')?;
                let a: IpAddr = a.parse().ok()?;
                let p: u8 = p.parse().ok()?;
                if p > if a.is_ipv4() { 32 } else { 128 } {
                    return None;
                }
                // `net A mask M` is not understood.
                if self.word(0) == Some("mask") {
                    return None;
                }
                Some(Cond::Net(a, p))
            }
            "port" | "portrange" => {
                let protos = match proto.as_deref() {
                    None => vec![6, 17, 132],
                    Some("tcp") => vec![6],
                    Some("udp") => vec![17],
                    Some("sctp") => vec![132],
                    _ => return None,
                };
                let v = self.take_word()?;
                let (lo, hi) = if w == "port" {
                    let n = parse_port(&v)?;
                    (n, n)
                } else {
                    let (a, b) = v.split_once('-')?;
                    let (a, b) = (parse_port(a)?, parse_port(b)?);
                    (a.min(b), a.max(b))
                };
                Some(Cond::Port { protos, lo, hi })
            }
            "proto" => {
                let v = self.take_word()?;
                let n: u8 = match v.strip_prefix('\\') {
                    Some(name) => match name {
                        "icmp" => 1,
                        "igmp" => 2,
                        "tcp" => 6,
                        "udp" => 17,
                        "sctp" => 132,
                        _ => return None,
                    },
                    None => u8::try_from(parse_num(&v)?).ok()?,
                };
                match proto.as_deref() {
                    Some("ip") => Some(Cond::Proto {
                        v4: Some(n),
                        v6: None,
                    }),
                    Some("ip6") => Some(Cond::Proto {
                        v4: None,
                        v6: Some(n),
                    }),
                    None => Some(Cond::Proto {
                        v4: Some(n),
                        v6: Some(n),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn host_cond(proto: Option<&str>, a: IpAddr) -> Option<Cond> {
    match proto {
        None | Some("ip" | "ip6" | "arp" | "rarp") => {
            Some(Cond::Net(a, if a.is_ipv4() { 32 } else { 128 }))
        }
        _ => None,
    }
}

fn proto_alone(p: &str) -> Option<Cond> {
    let both = |n| Cond::Proto {
        v4: Some(n),
        v6: Some(n),
    };
    Some(match p {
        "ip" => Cond::EtherType(0x0800),
        "ip6" => Cond::EtherType(0x86dd),
        "arp" => Cond::EtherType(0x0806),
        "rarp" => Cond::EtherType(0x8035),
        "tcp" => both(6),
        "udp" => both(17),
        "sctp" => both(132),
        "icmp" => Cond::Proto {
            v4: Some(1),
            v6: None,
        },
        "igmp" => Cond::Proto {
            v4: Some(2),
            v6: None,
        },
        "icmp6" => Cond::Proto {
            v4: None,
            v6: Some(58),
        },
        _ => return None,
    })
}

fn parse_num(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn parse_port(s: &str) -> Option<u16> {
    u16::try_from(parse_num(s)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(e: &str) -> Cond {
        Necessary::derive(e, 1).0
    }

    #[test]
    fn understood_primitives() {
        assert_eq!(
            cond("tcp"),
            Cond::Proto {
                v4: Some(6),
                v6: Some(6)
            }
        );
        assert_eq!(cond("ip"), Cond::EtherType(0x800));
        assert_eq!(
            cond("host 10.0.0.1"),
            Cond::Net("10.0.0.1".parse().expect("ip"), 32)
        );
        assert_eq!(
            cond("src net 10.0.0.0/8"),
            Cond::Net("10.0.0.0".parse().expect("ip"), 8)
        );
        assert_eq!(
            cond("udp dst port 53"),
            Cond::Port {
                protos: vec![17],
                lo: 53,
                hi: 53
            }
        );
        assert_eq!(
            cond("ip proto \\udp"),
            Cond::Proto {
                v4: Some(17),
                v6: None
            }
        );
        assert_eq!(cond("less 64"), Cond::Len(0, 64));
        assert!(matches!(cond("tcp and not port 22"), Cond::And(_, b) if *b == Cond::True));
        // equal precedence, left to right: (tcp or udp) and port 53
        assert!(
            matches!(cond("tcp or udp and port 53"), Cond::And(a, _) if matches!(*a, Cond::Or(_, _)))
        );
    }

    #[test]
    fn gives_up_on_anything_else() {
        for e in [
            "vlan and tcp",
            "tcp[13] & 2 != 0",
            "host 10.0.0.1 or 10.0.0.2",
            "port http",
            "host example.com",
            "net 192.168",
            "net 10.0.0.0 mask 255.0.0.0",
            "ether host 00:01:02:03:04:05",
            "len >= 100",
            "mpls 29",
            "tcp port 80 443",
            "(tcp",
            "ip multicast",
            "",
        ] {
            assert_eq!(cond(e), Cond::True, "{e}");
        }
        assert_eq!(Necessary::derive("tcp", 101).0, Cond::True);
    }
}
