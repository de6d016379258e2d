//! A classic-BPF interpreter with libpcap's `bpf_filter` semantics.
//!
//! Programs are validated once (the rules of libpcap's `bpf_validate`) and decoded into
//! [`Op`]s, so the per-packet loop does no decoding and cannot index out of range:
//!
//! * loads past the captured bytes (`buflen`) reject the packet (return 0), they never
//!   error; `len` is the wire length, which may exceed the captured length;
//! * division or modulo by a zero `X` rejects the packet;
//! * shifts by 32 or more give 0 (what current libpcap does; C leaves it undefined);
//! * the 16-word scratch memory starts zeroed for every packet.

use super::Insn;

/// Instruction classes and fields of the classic BPF encoding.
mod code {
    pub(super) const LD: u16 = 0x00;
    pub(super) const LDX: u16 = 0x01;
    pub(super) const ST: u16 = 0x02;
    pub(super) const STX: u16 = 0x03;
    pub(super) const ALU: u16 = 0x04;
    pub(super) const JMP: u16 = 0x05;
    pub(super) const RET: u16 = 0x06;
    pub(super) const MISC: u16 = 0x07;

    pub(super) const W: u16 = 0x00;
    pub(super) const H: u16 = 0x08;
    pub(super) const B: u16 = 0x10;

    pub(super) const IMM: u16 = 0x00;
    pub(super) const ABS: u16 = 0x20;
    pub(super) const IND: u16 = 0x40;
    pub(super) const MEM: u16 = 0x60;
    pub(super) const LEN: u16 = 0x80;
    pub(super) const MSH: u16 = 0xa0;

    pub(super) const ADD: u16 = 0x00;
    pub(super) const SUB: u16 = 0x10;
    pub(super) const MUL: u16 = 0x20;
    pub(super) const DIV: u16 = 0x30;
    pub(super) const OR: u16 = 0x40;
    pub(super) const AND: u16 = 0x50;
    pub(super) const LSH: u16 = 0x60;
    pub(super) const RSH: u16 = 0x70;
    pub(super) const NEG: u16 = 0x80;
    pub(super) const MOD: u16 = 0x90;
    pub(super) const XOR: u16 = 0xa0;

    pub(super) const JA: u16 = 0x00;
    pub(super) const JEQ: u16 = 0x10;
    pub(super) const JGT: u16 = 0x20;
    pub(super) const JGE: u16 = 0x30;
    pub(super) const JSET: u16 = 0x40;

    pub(super) const K: u16 = 0x00;
    pub(super) const X: u16 = 0x08;
    pub(super) const A: u16 = 0x10;

    pub(super) const TAX: u16 = 0x00;
    pub(super) const TXA: u16 = 0x80;
}

/// Number of scratch memory words (`BPF_MEMWORDS`).
pub const MEMWORDS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    W,
    H,
    B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Or,
    And,
    Xor,
    Lsh,
    Rsh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
}

/// A decoded, validated instruction. Jump targets are absolute indexes, checked to be in
/// range; scratch indexes are checked to be below [`MEMWORDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    LdAbs(Size, u32),
    LdInd(Size, u32),
    LdLen,
    LdImm(u32),
    LdMem(u8),
    LdxImm(u32),
    LdxMem(u8),
    LdxLen,
    LdxMsh(u32),
    St(u8),
    Stx(u8),
    AluK(AluOp, u32),
    AluX(AluOp),
    Neg,
    Ja(u32),
    JmpK(Cond, u32, u32, u32),
    JmpX(Cond, u32, u32),
    RetK(u32),
    RetA,
    Tax,
    Txa,
}

/// Why a program was refused by validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidProgram {
    /// The program has no instructions.
    #[error("empty BPF program")]
    Empty,
    /// The program has more instructions than classic BPF allows (`BPF_MAXINSNS`).
    #[error("BPF program too long: {0} instructions")]
    TooLong(usize),
    /// An instruction's opcode is not a classic BPF opcode.
    #[error("instruction {at}: unknown opcode {code:#06x}")]
    BadOpcode { at: usize, code: u16 },
    /// A jump leaves the program.
    #[error("instruction {at}: jump out of the program")]
    BadJump { at: usize },
    /// A scratch memory index is 16 or more.
    #[error("instruction {at}: scratch index {k} out of range")]
    BadMem { at: usize, k: u32 },
    /// Division or modulo by the constant 0.
    #[error("instruction {at}: division by constant zero")]
    DivByZero { at: usize },
    /// The last instruction is not a return, so execution could fall off the end.
    #[error("program does not end with a return")]
    NoReturn,
}

/// `BPF_MAXINSNS`.
pub const MAX_INSNS: usize = 4096;

/// A validated classic-BPF program, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    ops: Vec<Op>,
}

impl Program {
    /// Validates `insns` like libpcap's `bpf_validate` and decodes them.
    pub fn new(insns: Vec<Insn>) -> Result<Self, InvalidProgram> {
        if insns.is_empty() {
            return Err(InvalidProgram::Empty);
        }
        if insns.len() > MAX_INSNS {
            return Err(InvalidProgram::TooLong(insns.len()));
        }
        let len = insns.len();
        let mut ops = Vec::with_capacity(len);
        for (at, insn) in insns.iter().enumerate() {
            ops.push(decode(at, *insn, len)?);
        }
        if !matches!(ops.last(), Some(Op::RetK(_) | Op::RetA)) {
            return Err(InvalidProgram::NoReturn);
        }
        Ok(Self { insns, ops })
    }

    /// The instructions as given (libpcap's encoding).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Runs the program over one packet: `pkt` is the captured bytes, `wirelen` the
    /// original length on the wire. Returns the program's return value: 0 rejects,
    /// anything else accepts (libpcap returns the snapshot length).
    pub fn run(&self, pkt: &[u8], wirelen: u32) -> u32 {
        let buflen = pkt.len() as u64;
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; MEMWORDS];
        let mut pc: usize = 0;
        loop {
            // Validation guarantees that every path ends in a return and that all jump
            // targets are in range; `get` keeps this safe even so.
            let Some(op) = self.ops.get(pc) else {
                return 0;
            };
            pc += 1;
            match *op {
                Op::LdAbs(size, k) => match load(pkt, buflen, u64::from(k), size) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdInd(size, k) => match load(pkt, buflen, u64::from(x) + u64::from(k), size) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdLen => a = wirelen,
                Op::LdImm(k) => a = k,
                Op::LdMem(i) => a = mem[usize::from(i) % MEMWORDS],
                Op::LdxImm(k) => x = k,
                Op::LdxMem(i) => x = mem[usize::from(i) % MEMWORDS],
                Op::LdxLen => x = wirelen,
                Op::LdxMsh(k) => match pkt.get(k as usize) {
                    Some(b) => x = u32::from(b & 0x0f) << 2,
                    None => return 0,
                },
                Op::St(i) => mem[usize::from(i) % MEMWORDS] = a,
                Op::Stx(i) => mem[usize::from(i) % MEMWORDS] = x,
                Op::AluK(op, k) => match alu(op, a, k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::AluX(op) => match alu(op, a, x) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::Neg => a = a.wrapping_neg(),
                Op::Ja(target) => pc = target as usize,
                Op::JmpK(cond, k, jt, jf) => {
                    pc = if test(cond, a, k) { jt } else { jf } as usize;
                }
                Op::JmpX(cond, jt, jf) => {
                    pc = if test(cond, a, x) { jt } else { jf } as usize;
                }
                Op::RetK(k) => return k,
                Op::RetA => return a,
                Op::Tax => x = a,
                Op::Txa => a = x,
            }
        }
    }
}

#[inline]
fn load(pkt: &[u8], buflen: u64, k: u64, size: Size) -> Option<u32> {
    let n: u64 = match size {
        Size::W => 4,
        Size::H => 2,
        Size::B => 1,
    };
    if k + n > buflen {
        return None;
    }
    // k + n <= buflen <= usize::MAX, so the casts are lossless.
    let bytes = pkt.get(k as usize..(k + n) as usize)?;
    Some(match *bytes {
        [b0, b1, b2, b3] => u32::from_be_bytes([b0, b1, b2, b3]),
        [b0, b1] => u32::from(u16::from_be_bytes([b0, b1])),
        [b0] => u32::from(b0),
        _ => return None,
    })
}

#[inline]
fn alu(op: AluOp, a: u32, v: u32) -> Option<u32> {
    Some(match op {
        AluOp::Add => a.wrapping_add(v),
        AluOp::Sub => a.wrapping_sub(v),
        AluOp::Mul => a.wrapping_mul(v),
        AluOp::Div => a.checked_div(v)?,
        AluOp::Mod => a.checked_rem(v)?,
        AluOp::Or => a | v,
        AluOp::And => a & v,
        AluOp::Xor => a ^ v,
        AluOp::Lsh => a.checked_shl(v).unwrap_or(0),
        AluOp::Rsh => a.checked_shr(v).unwrap_or(0),
    })
}

#[inline]
fn test(cond: Cond, a: u32, v: u32) -> bool {
    match cond {
        Cond::Eq => a == v,
        Cond::Gt => a > v,
        Cond::Ge => a >= v,
        Cond::Set => a & v != 0,
    }
}

fn decode(at: usize, insn: Insn, len: usize) -> Result<Op, InvalidProgram> {
    use code::*;
    let c = insn.code;
    let k = insn.k;
    let bad = || InvalidProgram::BadOpcode { at, code: c };
    let mem = |k: u32| -> Result<u8, InvalidProgram> {
        if (k as usize) < MEMWORDS {
            Ok(k as u8)
        } else {
            Err(InvalidProgram::BadMem { at, k })
        }
    };
    let size = |c: u16| match c & 0x18 {
        W => Ok(Size::W),
        H => Ok(Size::H),
        B => Ok(Size::B),
        _ => Err(bad()),
    };
    let target = |off: u64| -> Result<u32, InvalidProgram> {
        let t = at as u64 + 1 + off;
        if t < len as u64 {
            Ok(t as u32)
        } else {
            Err(InvalidProgram::BadJump { at })
        }
    };
    let alu_op = |c: u16| match c & 0xf0 {
        ADD => Ok(AluOp::Add),
        SUB => Ok(AluOp::Sub),
        MUL => Ok(AluOp::Mul),
        DIV => Ok(AluOp::Div),
        MOD => Ok(AluOp::Mod),
        OR => Ok(AluOp::Or),
        AND => Ok(AluOp::And),
        XOR => Ok(AluOp::Xor),
        LSH => Ok(AluOp::Lsh),
        RSH => Ok(AluOp::Rsh),
        _ => Err(bad()),
    };
    Ok(match c & 0x07 {
        LD => match c & 0xe0 {
            ABS => Op::LdAbs(size(c)?, k),
            IND => Op::LdInd(size(c)?, k),
            LEN if c == LD | W | LEN => Op::LdLen,
            IMM if c == LD | W | IMM => Op::LdImm(k),
            MEM if c == LD | W | MEM => Op::LdMem(mem(k)?),
            _ => return Err(bad()),
        },
        LDX => match c {
            _ if c == LDX | W | IMM => Op::LdxImm(k),
            _ if c == LDX | W | MEM => Op::LdxMem(mem(k)?),
            _ if c == LDX | W | LEN => Op::LdxLen,
            _ if c == LDX | B | MSH => Op::LdxMsh(k),
            _ => return Err(bad()),
        },
        ST if c == ST => Op::St(mem(k)?),
        STX if c == STX => Op::Stx(mem(k)?),
        ALU => {
            if c & 0xf0 == NEG {
                if c != ALU | NEG {
                    return Err(bad());
                }
                Op::Neg
            } else {
                let op = alu_op(c)?;
                match c & 0x08 {
                    K => {
                        if matches!(op, AluOp::Div | AluOp::Mod) && k == 0 {
                            return Err(InvalidProgram::DivByZero { at });
                        }
                        Op::AluK(op, k)
                    }
                    X => Op::AluX(op),
                    _ => return Err(bad()),
                }
            }
        }
        JMP => {
            let cond = match c & 0xf0 {
                JA => {
                    if c != JMP | JA {
                        return Err(bad());
                    }
                    return Ok(Op::Ja(target(u64::from(k))?));
                }
                JEQ => Cond::Eq,
                JGT => Cond::Gt,
                JGE => Cond::Ge,
                JSET => Cond::Set,
                _ => return Err(bad()),
            };
            let jt = target(u64::from(insn.jt))?;
            let jf = target(u64::from(insn.jf))?;
            match c & 0x08 {
                K => Op::JmpK(cond, k, jt, jf),
                X => Op::JmpX(cond, jt, jf),
                _ => return Err(bad()),
            }
        }
        RET => match c & 0x18 {
            K => Op::RetK(k),
            A => Op::RetA,
            // libpcap's bpf_filter also treats RET|X as undefined.
            _ => return Err(bad()),
        },
        MISC => match c & 0xf8 {
            TAX => Op::Tax,
            TXA => Op::Txa,
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn validation_refuses_bad_programs() {
        use code::*;
        assert_eq!(Program::new(vec![]), Err(InvalidProgram::Empty));
        assert_eq!(
            Program::new(vec![insn(LD | W | IMM, 0, 0, 1)]),
            Err(InvalidProgram::NoReturn)
        );
        assert!(matches!(
            Program::new(vec![insn(JMP | JEQ | K, 5, 0, 1), insn(RET, 0, 0, 0)]),
            Err(InvalidProgram::BadJump { at: 0 })
        ));
        assert!(matches!(
            Program::new(vec![insn(ST, 0, 0, 16), insn(RET, 0, 0, 0)]),
            Err(InvalidProgram::BadMem { at: 0, k: 16 })
        ));
        assert!(matches!(
            Program::new(vec![insn(ALU | DIV | K, 0, 0, 0), insn(RET, 0, 0, 0)]),
            Err(InvalidProgram::DivByZero { at: 0 })
        ));
        assert!(matches!(
            Program::new(vec![insn(0xffff, 0, 0, 0), insn(RET, 0, 0, 0)]),
            Err(InvalidProgram::BadOpcode { .. })
        ));
    }

    #[test]
    fn loads_past_caplen_reject_but_len_is_wire_length() {
        use code::*;
        // ld [10]; ret a  over an 12-byte packet: ok; over 13 bytes at [10] as word: reject.
        let p = Program::new(vec![insn(LD | W | ABS, 0, 0, 10), insn(RET | A, 0, 0, 0)])
            .expect("valid");
        assert_eq!(p.run(&[0; 14], 100), 0);
        assert_eq!(p.run(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], 100), 7);
        assert_eq!(p.run(&[0; 13], 100), 0);
        let len =
            Program::new(vec![insn(LD | W | LEN, 0, 0, 0), insn(RET | A, 0, 0, 0)]).expect("valid");
        assert_eq!(len.run(&[1, 2, 3], 1500), 1500);
    }

    #[test]
    fn division_by_zero_x_rejects() {
        use code::*;
        let p = Program::new(vec![
            insn(LD | W | IMM, 0, 0, 10),
            insn(LDX | W | IMM, 0, 0, 0),
            insn(ALU | DIV | X, 0, 0, 0),
            insn(RET | K, 0, 0, 1),
        ])
        .expect("valid");
        assert_eq!(p.run(&[], 0), 0);
    }

    /// Random instructions biased towards valid ones, with small offsets so that loads
    /// sometimes hit the packet and sometimes miss.
    fn arb_insn(len: usize) -> impl Strategy<Value = Insn> {
        use code::*;
        let loads = prop_oneof![
            Just(LD | W | ABS),
            Just(LD | H | ABS),
            Just(LD | B | ABS),
            Just(LD | W | IND),
            Just(LD | H | IND),
            Just(LD | B | IND),
            Just(LD | W | LEN),
            Just(LD | W | IMM),
            Just(LD | W | MEM),
            Just(LDX | W | IMM),
            Just(LDX | W | MEM),
            Just(LDX | W | LEN),
            Just(LDX | B | MSH),
            Just(ST),
            Just(STX),
            Just(MISC | TAX),
            Just(MISC | TXA),
            Just(ALU | NEG),
        ];
        let alu = (
            prop_oneof![
                Just(ADD),
                Just(SUB),
                Just(MUL),
                Just(DIV),
                Just(MOD),
                Just(OR),
                Just(AND),
                Just(XOR),
                Just(LSH),
                Just(RSH)
            ],
            prop_oneof![Just(K), Just(X)],
        )
            .prop_map(|(op, src)| ALU | op | src);
        let jmp = (
            prop_oneof![Just(JA), Just(JEQ), Just(JGT), Just(JGE), Just(JSET)],
            prop_oneof![Just(K), Just(X)],
        )
            .prop_map(|(op, src)| if op == JA { JMP } else { JMP | op | src });
        let ret = prop_oneof![Just(RET | K), Just(RET | A)];
        let code = prop_oneof![4 => loads, 2 => alu, 2 => jmp, 1 => ret];
        let max_jump = len.min(255) as u8;
        (
            code,
            0..max_jump,
            0..max_jump,
            prop_oneof![0u32..40, 0u32..16, any::<u32>()],
        )
            .prop_map(|(code, jt, jf, k)| insn(code, jt, jf, k))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Every valid random program gives libpcap's `bpf_filter` answer, instruction
        /// semantics, bounds checks and all.
        #[test]
        fn same_result_as_libpcap_bpf_filter(
            insns in (2usize..24).prop_flat_map(|n| proptest::collection::vec(arb_insn(n), n)),
            pkt in proptest::collection::vec(any::<u8>(), 0..48),
            extra in 0u32..2000,
        ) {
            use code::*;
            let mut insns = insns;
            // Shifts of 32 or more are undefined behaviour in libpcap's C code.
            for i in &mut insns {
                if i.code & 0x07 == ALU && matches!(i.code & 0xf0, LSH | RSH) {
                    if i.code & 0x08 == X { i.code = ALU | ADD | X; } else { i.k %= 32; }
                }
            }
            insns.push(insn(RET | A, 0, 0, 0));
            // libpcap leaves its scratch memory uninitialized; ours starts zeroed. Store
            // zeros first so both run from the same state (jumps are relative).
            let mut prog: Vec<Insn> = (0..MEMWORDS as u32).map(|i| insn(ST, 0, 0, i)).collect();
            prog.extend(insns);
            if let Ok(p) = Program::new(prog) {
                let wirelen = pkt.len() as u32 + extra;
                let ours = p.run(&pkt, wirelen);
                let theirs = crate::bpf::ffi::libpcap_bpf_filter(p.insns(), &pkt, wirelen);
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
