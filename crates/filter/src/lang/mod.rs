//! The appliance filter language.
//!
//! A filter is a list of named **filter blocks** and one **filter expression** over
//! their names, separated by `;` (or new lines):
//!
//! ```text
//! all_udp: ipv4.proto == udp;
//! all_tcp: ipv4.proto == tcp;
//! udp5000: udp.port == 5000;
//! ((!all_udp) & (all_tcp)) | udp5000
//! ```
//!
//! A text that is one lone block (`ipv4.proto == tcp`), or a single named block with no
//! expression, is a whole filter. The expression combines names with `!` (`not`), `&`
//! (`&&`, `and`) and `|` (`||`, `or`) and parentheses; `!` binds tightest, then `&`,
//! then `|`.
//!
//! # Blocks
//!
//! A block is `field op value` with `op` one of `== != < <= > >=`. Fields:
//!
//! | field | values | ops |
//! |---|---|---|
//! | `ether.proto` | `ipv4 ipv6 arp rarp vlan mpls pppoe lldp` or a number (`0x0800`) | `== !=` |
//! | `ether.addr[.src/.dst]` | `00:ba:be:11:22:33`, a prefix `00:ba:be:` / `00:*`, `*` per byte | `== !=` |
//! | `ether.fcs` | `fail`, `ok` | `== !=` |
//! | `ipv4.addr`, `ipv6.addr`, `ip.addr` `[.src/.dst]` | an address or CIDR network | `== !=` |
//! | `ipv4.proto`, `ipv6.proto`, `ip.proto` | `tcp udp icmp igmp gre esp ah sctp ospf ...` or 0–255 | all |
//! | `tcp.port`, `udp.port` `[.src/.dst]` | a port or a range `1000-2000` | all (ranges: `== !=`) |
//! | `tcp.flags` | `syn`, `syn+ack`, ... or a number | `== !=` |
//! | `frame.time` | `20141225_08:00:00.100.200.300`, `07:00:00` (today), `A-B` | all (ranges: `== !=`) |
//! | `frame.size` | bytes on the wire (original length) | all |
//! | `vlan.id` | 0–4095 or a range | all |
//! | `mpls.label` | 0–1048575 or a range | all |
//! | `icmp.type`, `icmp.code`, `icmpv6.type`, `icmpv6.code` | number or name (`echo-request`) | all |
//!
//! # Meaning, precisely
//!
//! * **A packet without the field matches no block on it**, whatever the operator:
//!   `tcp.port != 80` is "TCP, and neither port is 80"; it does not match UDP.
//! * **Fields with several values** (both addresses, both ports, every VLAN tag, every
//!   MPLS label, every EtherType of the header chain): `==`, `<`, `<=`, `>`, `>=` hold
//!   when *some* value satisfies them, `!=` when *no* value equals the value (or lies
//!   in the range). So `x != v` is `!(x == v)` restricted to packets that have `x`.
//! * `ether.proto` is any EtherType in the header chain: the Ethernet type, the type
//!   after each VLAN tag, and IPv4/IPv6 carried in MPLS or PPPoE. `ether.proto == ipv4`
//!   therefore matches IPv4 under VLAN tags too, and `ether.proto == vlan` every tagged
//!   frame (TPID 0x8100, 0x88a8 or 0x9100).
//! * `vlan.id == 1234` matches when *any* tag of the stack has id 1234 (tcpdump's
//!   `vlan 1234` tests only the outermost tag; the equivalent is
//!   `vlan 1234 or (vlan and vlan 1234) or ...`).
//! * IP fields see the outermost IP header, through VLAN tags, MPLS and PPPoE; tunnels
//!   are not entered. `ipv6.proto` is the upper-layer protocol after extension headers.
//! * Ports, TCP flags and ICMP types are read from the first fragment only.
//! * `tcp.flags == syn+ack` holds when the flags contain *all* the listed flags;
//!   `tcp.flags != syn` when they do not contain all of them.
//! * `frame.time == T` means at or after T (as the manual says); `frame.time == A-B`
//!   means `A <= time < B` (start inclusive, end exclusive, so consecutive ranges do not
//!   overlap). `07:00:00` alone is that UTC time on the caller's "today". `!=` is the
//!   complement, `<`, `<=`, `>`, `>=` compare with one point.
//! * `frame.size` is the original (wire) length, not the captured length.
//! * `ether.fcs == fail` holds for an Ethernet frame whose last 4 bytes are not the
//!   CRC-32 of the rest, when the caller says frames carry an FCS
//!   ([`CompileOptions::fcs_present`]) and the frame was captured whole. Frames without
//!   an FCS, or cut by the snap length, have no checkable FCS: neither `fail` nor `ok`.

mod block;
mod time;

pub use time::Date;

use crate::dissect::{self, Dissected, Link};
use crate::error::{ErrorKind, FilterError};
use crate::summary::Facts;
use block::{PacketView, Pred};

/// What an appliance filter needs to know beyond its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// The UTC date that time-of-day-only `frame.time` values refer to.
    pub today: Date,
    /// Whether the captured Ethernet frames end in their 4-byte FCS (for `ether.fcs`).
    pub fcs_present: bool,
}

impl CompileOptions {
    /// Options for frames without FCS.
    pub fn new(today: Date) -> Self {
        Self {
            today,
            fcs_present: false,
        }
    }
}

/// Most blocks one filter may define (the evaluator keeps one bit per block).
pub const MAX_BLOCKS: usize = 64;
/// Deepest operand stack the expression may need (one bit per level, no allocation).
pub const MAX_DEPTH: usize = 64;

/// One step of the postfix program the expression compiles to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Block(u8),
    Not,
    And,
    Or,
}

/// A compiled appliance-language filter: block predicates plus a postfix program.
#[derive(Clone, Debug)]
pub struct ApplianceFilter {
    source: String,
    link: Link,
    fcs_present: bool,
    blocks: Vec<Pred>,
    /// Bit i set: block i is used by the expression.
    used: u64,
    needs_dissect: bool,
    program: Vec<Step>,
}

#[derive(Debug)]
struct Stmt<'a> {
    text: &'a str,
    at: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// If `s` starts with `name :` (the name being an identifier, not a dotted field),
/// returns the name's range and the offset after the colon.
fn definition(s: &str) -> Option<(usize, usize, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    if i >= b.len() || !is_ident_start(b[i]) {
        return None;
    }
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    let end = i;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) == Some(&b':') {
        Some((start, end, i + 1))
    } else {
        None
    }
}

/// If `s` starts with `na-me :`, a definition whose name holds a `-` (not an identifier):
/// the name's range, so that the error names the block rather than a field `na`.
fn dashed_definition(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let start = b.iter().position(|c| !c.is_ascii_whitespace())?;
    let len = b[start..]
        .iter()
        .position(|&c| !(is_ident(c) || c == b'-'))
        .unwrap_or(b.len() - start);
    let end = start + len;
    let word = &s[start..end];
    let colon = b[end..].iter().find(|c| !c.is_ascii_whitespace()) == Some(&b':');
    (colon && word.contains('-') && is_ident_start(b[start])).then_some((start, end))
}

impl ApplianceFilter {
    /// Compiles `text` for packets of `link`.
    pub(crate) fn compile(
        text: &str,
        link: Link,
        options: &CompileOptions,
    ) -> Result<Self, FilterError> {
        let fail = |kind, msg: String, at: usize| FilterError::new(kind, msg, text, Some(at));
        // Statements: split on ';' and new lines, keeping offsets.
        let mut stmts = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == ';' || c == '\n' {
                stmts.push(Stmt {
                    text: &text[start..i],
                    at: start,
                });
                start = i + 1;
            }
        }
        stmts.push(Stmt {
            text: &text[start..],
            at: start,
        });
        stmts.retain(|s| !s.text.trim().is_empty());

        let mut names: Vec<(&str, usize)> = Vec::new();
        let mut blocks: Vec<Pred> = Vec::new();
        let mut expr: Option<&Stmt<'_>> = None;
        let mut lone: Option<Pred> = None;
        for s in &stmts {
            if let Some((ns, ne)) = dashed_definition(s.text) {
                return Err(fail(
                    ErrorKind::Syntax,
                    format!(
                        "`{}` cannot name a block: block names are letters, digits and `_` (no `-`)",
                        &s.text[ns..ne]
                    ),
                    s.at + ns,
                ));
            }
            if let Some((ns, ne, after)) = definition(s.text) {
                let name = &s.text[ns..ne];
                if is_keyword(name) {
                    return Err(fail(
                        ErrorKind::Syntax,
                        format!("`{name}` is a keyword and cannot name a block"),
                        s.at + ns,
                    ));
                }
                if names.iter().any(|(n, _)| *n == name) {
                    return Err(fail(
                        ErrorKind::DuplicateName,
                        format!("block `{name}` is defined twice"),
                        s.at + ns,
                    ));
                }
                if expr.is_some() || lone.is_some() {
                    return Err(fail(
                        ErrorKind::Syntax,
                        "block definitions must come before the filter expression".into(),
                        s.at + ns,
                    ));
                }
                if names.len() >= MAX_BLOCKS {
                    return Err(fail(
                        ErrorKind::TooComplex,
                        format!("more than {MAX_BLOCKS} blocks"),
                        s.at + ns,
                    ));
                }
                let body = &s.text[after..];
                let pred = block::parse_block(body, options.today)
                    .map_err(|e| fail(e.kind, e.message, s.at + after + e.offset))?;
                names.push((name, s.at + ns));
                blocks.push(pred);
            } else if expr.is_some() || lone.is_some() {
                return Err(fail(
                    ErrorKind::Syntax,
                    "only one filter expression is allowed, after the blocks".into(),
                    s.at + leading_ws(s.text),
                ));
            } else if looks_like_block(s.text) {
                // A comparison: a lone block, allowed only as the whole filter.
                if !names.is_empty() {
                    return Err(fail(
                        ErrorKind::Syntax,
                        "a filter with named blocks needs an expression over their names here, not another block (name it: `x: ...;`)".into(),
                        s.at + leading_ws(s.text),
                    ));
                }
                let pred = block::parse_block(s.text, options.today)
                    .map_err(|e| fail(e.kind, e.message, s.at + e.offset))?;
                lone = Some(pred);
            } else {
                expr = Some(s);
            }
        }

        let program = if let Some(pred) = lone {
            blocks.push(pred);
            vec![Step::Block(0)]
        } else if let Some(s) = expr {
            let mut p = ExprParser {
                text,
                pos: s.at,
                end: s.at + s.text.len(),
                names: &names,
                out: Vec::new(),
            };
            p.parse()?;
            p.out
        } else if blocks.len() == 1 {
            vec![Step::Block(0)]
        } else if blocks.is_empty() {
            return Err(fail(
                ErrorKind::Syntax,
                "empty filter: write a block such as `ipv4.proto == tcp`".into(),
                text.len(),
            ));
        } else {
            return Err(fail(
                ErrorKind::Syntax,
                "missing filter expression: say how to combine the blocks, e.g. `a | b`".into(),
                text.len(),
            ));
        };
        check_depth(&program).map_err(|()| {
            fail(
                ErrorKind::TooComplex,
                format!("expression nests deeper than {MAX_DEPTH}"),
                0,
            )
        })?;
        let mut used = 0u64;
        for s in &program {
            if let Step::Block(i) = s {
                used |= 1 << i;
            }
        }
        let needs_dissect = blocks
            .iter()
            .enumerate()
            .any(|(i, b)| used & (1 << i) != 0 && b.needs_dissect());
        Ok(Self {
            source: text.to_owned(),
            link,
            fcs_present: options.fcs_present,
            blocks,
            used,
            needs_dissect,
            program,
        })
    }

    /// The text this filter was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the packet matches. Does not allocate.
    pub(crate) fn matches(&self, ts_ns: u64, orig_len: u32, data: &[u8]) -> bool {
        let d = if self.needs_dissect {
            dissect::dissect(self.link, data)
        } else {
            Dissected::default()
        };
        let view = PacketView {
            ts_ns,
            orig_len,
            data,
            d: &d,
            fcs_checkable: self.fcs_present
                && self.link == Link::Ethernet
                && data.len() as u64 == u64::from(orig_len)
                && data.len() >= 14 + 4,
        };
        let mut bits = 0u64;
        for (i, b) in self.blocks.iter().enumerate() {
            if self.used & (1 << i) != 0 && b.eval(&view) {
                bits |= 1 << i;
            }
        }
        run(&self.program, bits, false)
    }

    /// Conservative: false only when no packet summarized by `s` can match.
    pub(crate) fn may_match(&self, s: &dyn Facts) -> bool {
        if s.linktype().map(Link::from_linktype) != Some(self.link) {
            return true;
        }
        let mut bits = 0u64;
        for (i, b) in self.blocks.iter().enumerate() {
            if self.used & (1 << i) != 0 && b.may_match(s) {
                bits |= 1 << i;
            }
        }
        run(&self.program, bits, true)
    }
}

/// A statement is a block (not an expression over names) when it compares something or
/// starts with a dotted field name (`tcp.port 80` is a block missing its operator).
fn looks_like_block(s: &str) -> bool {
    let first = s
        .trim_start()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .next();
    s.contains(['=', '<', '>']) || first.is_some_and(|w| w.contains('.'))
}

fn leading_ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

fn is_keyword(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "and" | "or" | "not")
}

/// Runs the postfix program over block results (bit i = block i). With `may`, `!x`
/// yields true: negation of an over-approximation is not one.
fn run(program: &[Step], bits: u64, may: bool) -> bool {
    let mut stack = 0u64;
    let mut depth = 0u32;
    for s in program {
        match *s {
            Step::Block(i) => {
                stack = (stack << 1) | ((bits >> i) & 1);
                depth += 1;
            }
            Step::Not => stack = if may { stack | 1 } else { stack ^ 1 },
            Step::And => {
                let top = stack & 1;
                stack >>= 1;
                stack = (stack & !1) | (stack & top & 1);
                depth = depth.saturating_sub(1);
            }
            Step::Or => {
                let top = stack & 1;
                stack >>= 1;
                stack |= top;
                depth = depth.saturating_sub(1);
            }
        }
    }
    debug_assert_eq!(depth, 1);
    stack & 1 != 0
}

fn check_depth(program: &[Step]) -> Result<(), ()> {
    let mut depth = 0usize;
    for s in program {
        match s {
            Step::Block(_) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(());
                }
            }
            Step::Not => {}
            Step::And | Step::Or => depth -= 1,
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Name(usize, usize),
    Not,
    And,
    Or,
    LParen,
    RParen,
    End,
}

/// Recursive descent over `| > & > !`, emitting postfix [`Step`]s.
struct ExprParser<'a> {
    text: &'a str,
    pos: usize,
    end: usize,
    names: &'a [(&'a str, usize)],
    out: Vec<Step>,
}

const MAX_NESTING: usize = 200;

impl ExprParser<'_> {
    fn error(&self, kind: ErrorKind, msg: impl Into<String>, at: usize) -> FilterError {
        FilterError::new(kind, msg, self.text, Some(at))
    }

    fn peek(&self) -> Result<(Tok, usize, usize), FilterError> {
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while i < self.end && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= self.end {
            return Ok((Tok::End, i, i));
        }
        let two = &b[i..(i + 2).min(self.end)];
        let tok = match b[i] {
            b'(' => (Tok::LParen, i, i + 1),
            b')' => (Tok::RParen, i, i + 1),
            b'!' => (Tok::Not, i, i + 1),
            b'&' if two == b"&&" => (Tok::And, i, i + 2),
            b'&' => (Tok::And, i, i + 1),
            b'|' if two == b"||" => (Tok::Or, i, i + 2),
            b'|' => (Tok::Or, i, i + 1),
            c if is_ident_start(c) => {
                let mut j = i;
                while j < self.end && is_ident(b[j]) {
                    j += 1;
                }
                match self.text[i..j].to_ascii_lowercase().as_str() {
                    "and" => (Tok::And, i, j),
                    "or" => (Tok::Or, i, j),
                    "not" => (Tok::Not, i, j),
                    _ => (Tok::Name(i, j), i, j),
                }
            }
            _ => {
                let ch = self.text[i..].chars().next().unwrap_or('?');
                return Err(self.error(
                    ErrorKind::Syntax,
                    format!("unexpected `{ch}` in the filter expression (use block names, !, &, |, parentheses)"),
                    i,
                ));
            }
        };
        Ok(tok)
    }

    fn parse(&mut self) -> Result<(), FilterError> {
        self.or(0)?;
        let (t, at, _) = self.peek()?;
        match t {
            Tok::End => Ok(()),
            Tok::RParen => Err(self.error(ErrorKind::Unbalanced, "`)` without a matching `(`", at)),
            _ => Err(self.error(
                ErrorKind::Syntax,
                "expected `&`, `|` or the end of the expression",
                at,
            )),
        }
    }

    fn or(&mut self, depth: usize) -> Result<(), FilterError> {
        self.and(depth)?;
        loop {
            let (t, _, after) = self.peek()?;
            if t != Tok::Or {
                return Ok(());
            }
            self.pos = after;
            self.and(depth)?;
            self.out.push(Step::Or);
        }
    }

    fn and(&mut self, depth: usize) -> Result<(), FilterError> {
        self.unary(depth)?;
        loop {
            let (t, _, after) = self.peek()?;
            if t != Tok::And {
                return Ok(());
            }
            self.pos = after;
            self.unary(depth)?;
            self.out.push(Step::And);
        }
    }

    fn unary(&mut self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_NESTING {
            return Err(self.error(
                ErrorKind::TooComplex,
                "expression nested too deeply",
                self.pos,
            ));
        }
        let (t, at, after) = self.peek()?;
        match t {
            Tok::Not => {
                self.pos = after;
                self.unary(depth + 1)?;
                self.out.push(Step::Not);
                Ok(())
            }
            Tok::LParen => {
                self.pos = after;
                self.or(depth + 1)?;
                let (t2, at2, after2) = self.peek()?;
                if t2 != Tok::RParen {
                    return Err(if t2 == Tok::End {
                        self.error(ErrorKind::Unbalanced, "`(` is never closed", at)
                    } else {
                        self.error(ErrorKind::Syntax, "expected `)`, `&` or `|`", at2)
                    });
                }
                self.pos = after2;
                Ok(())
            }
            Tok::Name(s, e) => {
                let name = &self.text[s..e];
                let Some(idx) = self.names.iter().position(|(n, _)| *n == name) else {
                    let known: Vec<&str> = self.names.iter().map(|(n, _)| *n).collect();
                    let msg = if known.is_empty() {
                        format!(
                            "unknown block `{name}`: no blocks are defined (write `{name}: field == value;` first)"
                        )
                    } else {
                        format!("unknown block `{name}` (defined: {})", known.join(", "))
                    };
                    return Err(self.error(ErrorKind::UnknownName, msg, s));
                };
                self.pos = e;
                self.out.push(Step::Block(idx as u8));
                Ok(())
            }
            Tok::RParen => Err(self.error(
                ErrorKind::Unbalanced,
                "`)` without a matching `(` or with nothing inside",
                at,
            )),
            Tok::End => Err(self.error(
                ErrorKind::Syntax,
                "expression ends where a block name was expected",
                at,
            )),
            Tok::And | Tok::Or => Err(self.error(
                ErrorKind::Syntax,
                "expected a block name, `!` or `(` here",
                at,
            )),
        }
    }
}

#[cfg(test)]
mod tests;
