//! tcpdump expressions: compiled by libpcap, run by our own classic-BPF interpreter.
//!
//! libpcap's `pcap_compile` defines what a tcpdump expression means, so it does the
//! compiling (through the small FFI in `ffi`); the program is copied into a
//! `Vec<Insn>`, validated, and run by [`vm::Program::run`] with libpcap's `bpf_filter`
//! semantics. That keeps the per-packet path in safe Rust, and lets `less`/`greater`/
//! `len` see the wire length of snaplen-cut packets (the `pcap` crate's `filter()` passes
//! the captured length as the wire length, which gets those wrong).
//!
//! [`necessary`] derives, from the expression text, a condition every matching packet
//! satisfies, which [`crate::summary::ChunkSummary`] can check.

mod ffi;
pub mod necessary;
pub mod vm;

use crate::error::{ErrorKind, FilterError};
use crate::summary::Facts;

/// One classic-BPF instruction, in libpcap's `struct bpf_insn` encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

impl std::fmt::Display for Insn {
    /// The `tcpdump -dd` form: `{ 0x28, 0, 0, 0x0000000c },`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{ {:#04x}, {}, {}, {:#010x} }},",
            self.code, self.jt, self.jf, self.k
        )
    }
}

/// The linked libpcap's version string (`libpcap version 1.10.3 (with TPACKET_V3)`):
/// the compiler, and so the meaning of some expressions (`ip multicast`), depends on it.
pub fn libpcap_version() -> String {
    ffi::lib_version()
}

/// The linked libpcap's version as numbers, when the string can be read.
pub fn libpcap_version_numbers() -> Option<(u32, u32, u32)> {
    let v = libpcap_version();
    let rest = v.split("version ").nth(1)?;
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = num.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Snapshot length given to libpcap (tcpdump's default); an accepting program returns it.
pub const SNAPLEN: i32 = 262_144;

/// A compiled tcpdump expression.
#[derive(Debug, Clone)]
pub struct BpfFilter {
    expr: String,
    linktype: u16,
    program: vm::Program,
    necessary: necessary::Necessary,
}

/// Maps a pcap `LINKTYPE_*` value to the `DLT_*` value libpcap's compiler expects. They
/// are equal except for a few historical link types.
fn linktype_to_dlt(linktype: u16) -> i32 {
    match linktype {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW (Linux and most BSDs)
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        other => i32::from(other),
    }
}

impl BpfFilter {
    /// Compiles `expr` for packets of `LINKTYPE_*` value `linktype`.
    pub fn compile(expr: &str, linktype: u16) -> Result<Self, FilterError> {
        let insns = match ffi::compile(expr, linktype_to_dlt(linktype), SNAPLEN) {
            Ok(insns) => insns,
            // libpcap's optimizer reports a filter it proves can never match as an
            // error (tcpdump then refuses to run); for stored packets the answer is
            // simply "nothing matches".
            Err(e) if e.0.contains("expression rejects all packets") => vec![Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0,
            }],
            Err(e) => return Err(FilterError::new(ErrorKind::Bpf, e.0, expr, None)),
        };
        let program = vm::Program::new(insns).map_err(|e| {
            FilterError::new(
                ErrorKind::Bpf,
                format!("libpcap produced a program that does not validate: {e}"),
                expr,
                None,
            )
        })?;
        Ok(Self {
            expr: expr.to_owned(),
            linktype,
            program,
            necessary: necessary::Necessary::derive(expr, linktype),
        })
    }

    /// The expression this was compiled from.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The compiled program (as `tcpdump -dd` would print it).
    pub fn insns(&self) -> &[Insn] {
        self.program.insns()
    }

    /// True when the program accepts the packet.
    pub fn matches(&self, orig_len: u32, data: &[u8]) -> bool {
        self.program.run(data, orig_len) != 0
    }

    /// Conservative chunk test, see [`necessary`].
    pub fn may_match(&self, summary: &dyn Facts) -> bool {
        if summary.linktype() != Some(self.linktype) {
            return true;
        }
        self.necessary.may_match(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_and_matches() {
        let f = BpfFilter::compile("udp port 53", 1).expect("valid expression");
        assert!(f.insns().len() > 5);
        let pkt = crate::dissect::build::PacketBuilder::ethernet([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
            .udp(5000, 53)
            .build();
        assert!(f.matches(pkt.len() as u32, &pkt));
        assert!(!f.matches(pkt.len() as u32, &pkt[..36]));
    }

    #[test]
    fn libpcap_errors_are_kept() {
        let e = BpfFilter::compile("tcp prot 80", 1).expect_err("bad expression");
        assert_eq!(e.kind(), ErrorKind::Bpf);
        assert!(e.message().contains("syntax error"), "{e}");
        let e = BpfFilter::compile("a\0b", 1).expect_err("NUL");
        assert!(e.message().contains("NUL"));
    }

    #[test]
    fn never_matching_expressions_compile_to_reject_all() {
        let f = BpfFilter::compile("ip and ip6", 1).expect("compiles");
        assert_eq!(f.insns().len(), 1);
        assert!(!f.matches(100, &[0u8; 100]));
    }

    #[test]
    fn less_uses_the_wire_length() {
        let f = BpfFilter::compile("less 100", 1).expect("valid");
        assert!(f.matches(60, &[0u8; 60]));
        assert!(!f.matches(1500, &[0u8; 60]));
    }

    #[test]
    fn other_link_types() {
        let raw = crate::dissect::build::PacketBuilder::raw()
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
            .tcp(1, 80, 2)
            .build();
        for lt in [101u16, 228] {
            let f = BpfFilter::compile("tcp port 80", lt).expect("valid");
            assert!(f.matches(raw.len() as u32, &raw), "linktype {lt}");
        }
        assert!(BpfFilter::compile("tcp", 113).is_ok());
        assert!(BpfFilter::compile("tcp", 276).is_ok());
    }

    #[test]
    fn concurrent_compiles() {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    for j in 0..20 {
                        let e = format!("tcp port {} or udp port {}", i * 100 + j, j);
                        BpfFilter::compile(&e, 1).expect("valid");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("no panic");
        }
    }
}
