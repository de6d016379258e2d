//! The few system calls every AF_PACKET ring needs, shared by the capture rings and the
//! inline forwarder's RX/TX rings: checked `setsockopt`, `ifreq` for interface ioctls, and
//! the ring's shared mapping with bounds-checked access to its status words and regions.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// A negative return code as the `errno` error.
pub fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt` with a typed value.
pub fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` for the duration of the call and the
    // length passed is its size; the kernel only reads it.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
}

/// An `ifreq` naming interface `name` (cut to IFNAMSIZ - 1 bytes), everything else zero.
pub fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is a valid value (a C struct of integers and a union).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    ifr
}

/// Waits up to `timeout` for a ring socket to have packets. Returns whether the socket
/// reported an error instead (a link going down leaves ENETDOWN pending): that error is
/// read and so cleared, else poll would return at once forever; the caller should then
/// not spin while the link is down. An interrupted wait is a normal return.
pub fn poll_ring(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    if rc == 0 || pfd.revents & libc::POLLERR == 0 {
        return Ok(false);
    }
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    Ok(true)
}

/// The shared mapping of a socket's ring, unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to another thread is
// fine, and access goes through `&mut self` (regions) or atomics (status words).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of the ring of socket `fd`, locked in memory where RLIMIT_MEMLOCK
    /// allows it (a ring paged out would drop packets while it faults back in).
    pub fn ring(fd: RawFd, len: usize) -> io::Result<Self> {
        let map = |flags| {
            // SAFETY: a fresh shared mapping of the socket's ring; no existing memory is
            // touched, and the result is checked before use.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE | flags,
                    fd,
                    0,
                )
            }
        };
        let mut p = map(libc::MAP_LOCKED);
        if p == libc::MAP_FAILED {
            // MAP_LOCKED fails under a low RLIMIT_MEMLOCK: the ring still works unlocked.
            p = map(0);
        }
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// The status word at `off`, shared with the kernel.
    pub fn status(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.len && off.is_multiple_of(4));
        // SAFETY: inside the mapping (checked above) and 4-byte aligned (the mapping is
        // page-aligned, `off` a multiple of 4); the kernel accesses it concurrently, hence
        // only through an atomic.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// `len` bytes at `off`. The caller owns that region: its status word hands it to user
    /// space, so the kernel does not write it while the slice lives.
    pub fn region(&mut self, off: usize, len: usize) -> &mut [u8] {
        assert!(off + len <= self.len);
        // SAFETY: inside the mapping (checked above); the kernel leaves the region alone
        // while user space owns it (the caller's contract), and `&mut self` makes the
        // slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no slice into the mapping
        // outlives `self` (slices borrow `&mut self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
