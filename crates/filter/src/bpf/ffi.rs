//! The only `unsafe` of the crate: a small bridge to libpcap's compiler.
//!
//! libpcap is used to *compile* tcpdump expressions (its grammar and code generator are
//! the definition of tcpdump syntax); the instructions are copied out at once and never
//! run by libpcap. Matching happens in [`super::vm`].

use std::ffi::{CStr, CString, c_char, c_int, c_uint};
use std::sync::Mutex;

use super::Insn;

/// libpcap's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut BpfInsn,
}

/// Opaque `pcap_t`.
#[repr(C)]
struct PcapT {
    _private: [u8; 0],
}

#[link(name = "pcap")]
unsafe extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut PcapT;
    fn pcap_fopen_offline(fp: *mut libc::FILE, errbuf: *mut c_char) -> *mut PcapT;
    fn pcap_compile(
        p: *mut PcapT,
        fp: *mut BpfProgram,
        expr: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int;
    fn pcap_geterr(p: *mut PcapT) -> *mut c_char;
    fn pcap_freecode(fp: *mut BpfProgram);
    fn pcap_close(p: *mut PcapT);
    fn pcap_lib_version() -> *const c_char;
}

/// libpcap's version string, e.g. `libpcap version 1.10.3 (with TPACKET_V3)`.
pub(crate) fn lib_version() -> String {
    // SAFETY: pcap_lib_version returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(pcap_lib_version()) }
        .to_string_lossy()
        .into_owned()
}

/// `PCAP_NETMASK_UNKNOWN`: `ip broadcast` then fails to compile instead of guessing.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// libpcap before 1.8 kept its parser state in globals, and even later versions share
/// some static tables during code generation: one compile at a time, process-wide.
static COMPILE_LOCK: Mutex<()> = Mutex::new(());

/// Why libpcap refused an expression, in its own words.
#[derive(Debug)]
pub(crate) struct CompileFailure(pub(crate) String);

const DLT_NULL: i32 = 0;
const DLT_LOOP: i32 = 108;

/// A handle that libpcap takes for a savefile (`tcpdump -r`), read from a 24-byte header
/// in memory. For DLT_NULL and DLT_LOOP libpcap compiles `ip6` differently for savefiles
/// (the BSD AF_INET6 values 24, 28 and 30, since such files come from BSDs and macOS)
/// than for a dead handle (the host's AF_INET6, 10 on Linux): stored captures are
/// savefiles, so tcpdump's answer is the savefile one.
fn open_as_savefile(dlt: i32, snaplen: i32) -> Result<*mut PcapT, CompileFailure> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
    header.extend_from_slice(&2u16.to_ne_bytes());
    header.extend_from_slice(&4u16.to_ne_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&(snaplen as u32).to_ne_bytes());
    // LINKTYPE_NULL and LINKTYPE_LOOP have the same values as their DLTs on Linux.
    header.extend_from_slice(&(dlt as u32).to_ne_bytes());
    // SAFETY: fmemopen reads from `header`, which lives until the end of this function;
    // libpcap reads the whole header inside pcap_fopen_offline, and afterwards only
    // fclose touches the stream (at pcap_close), which does not read the buffer.
    let file = unsafe { libc::fmemopen(header.as_mut_ptr().cast(), header.len(), c"r".as_ptr()) };
    if file.is_null() {
        return Err(CompileFailure(format!(
            "fmemopen failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut errbuf = [0 as c_char; 256];
    // SAFETY: `file` is an open stream and `errbuf` is PCAP_ERRBUF_SIZE (256) bytes. On
    // success the handle owns the stream; on failure libpcap leaves it open.
    let handle = unsafe { pcap_fopen_offline(file, errbuf.as_mut_ptr()) };
    if handle.is_null() {
        // SAFETY: the stream is still ours after a failed open, and libpcap left a
        // NUL-terminated message in errbuf.
        let why = unsafe {
            libc::fclose(file);
            CStr::from_ptr(errbuf.as_ptr())
        }
        .to_string_lossy()
        .into_owned();
        return Err(CompileFailure(format!(
            "libpcap refused a savefile header: {why}"
        )));
    }
    Ok(handle)
}

/// Compiles `expr` for data link type `dlt` (a libpcap `DLT_*` value) with the optimizer
/// on, and returns a copy of the instructions.
pub(crate) fn compile(expr: &str, dlt: i32, snaplen: i32) -> Result<Vec<Insn>, CompileFailure> {
    let c_expr = CString::new(expr)
        .map_err(|_| CompileFailure("filter expression contains a NUL byte".into()))?;
    // A poisoned lock only means another compile panicked; libpcap holds no Rust state.
    let _guard = COMPILE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handle = if dlt == DLT_NULL || dlt == DLT_LOOP {
        open_as_savefile(dlt, snaplen)?
    } else {
        // SAFETY: pcap_open_dead has no preconditions; it returns NULL only on allocation
        // failure, which is checked before the handle is used.
        unsafe { pcap_open_dead(dlt, snaplen) }
    };
    if handle.is_null() {
        return Err(CompileFailure("pcap_open_dead failed".into()));
    }
    let mut prog = BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: `handle` is a live pcap_t, `prog` a valid out-parameter and `c_expr` a
    // NUL-terminated string that outlives the call. The global lock serializes compiles.
    let rc = unsafe { pcap_compile(handle, &mut prog, c_expr.as_ptr(), 1, NETMASK_UNKNOWN) };
    let result = if rc != 0 {
        // SAFETY: after a failed compile pcap_geterr returns a NUL-terminated message
        // buffer owned by `handle`, which stays alive until pcap_close below; the
        // message is copied out before that.
        let msg = unsafe { CStr::from_ptr(pcap_geterr(handle)) }
            .to_string_lossy()
            .into_owned();
        Err(CompileFailure(msg))
    } else {
        let insns = if prog.bf_insns.is_null() || prog.bf_len == 0 {
            Vec::new()
        } else {
            // SAFETY: on success libpcap sets bf_insns to an array of bf_len instructions
            // that stays valid until pcap_freecode; it is copied here, before the free.
            let raw = unsafe { std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize) };
            raw.iter()
                .map(|i| Insn {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect()
        };
        // SAFETY: `prog` was filled by a successful pcap_compile and is freed once.
        unsafe { pcap_freecode(&mut prog) };
        Ok(insns)
    };
    // SAFETY: `handle` came from pcap_open_dead and is closed exactly once; nothing
    // borrowed from it (the error message) is used afterwards.
    unsafe { pcap_close(handle) };
    result
}

/// libpcap's own interpreter, used only by tests to check ours instruction for instruction.
#[cfg(test)]
pub(crate) fn libpcap_bpf_filter(insns: &[Insn], pkt: &[u8], wirelen: u32) -> u32 {
    #[link(name = "pcap")]
    unsafe extern "C" {
        fn bpf_filter(
            pc: *const BpfInsn,
            pkt: *const u8,
            wirelen: c_uint,
            buflen: c_uint,
        ) -> c_uint;
    }
    let raw: Vec<BpfInsn> = insns
        .iter()
        .map(|i| BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    // SAFETY: the caller passes programs that passed `vm::Program::new`'s validation
    // (same rules as libpcap's bpf_validate: jumps in range, scratch index < 16, ends in
    // RET), so bpf_filter stays inside `raw` and `pkt`; both outlive the call.
    unsafe { bpf_filter(raw.as_ptr(), pkt.as_ptr(), wirelen, pkt.len() as c_uint) }
}
