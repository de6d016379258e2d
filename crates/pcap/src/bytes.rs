//! Byte-order-aware integer loads that cannot panic.
//!
//! Capture files come in both byte orders (pcapng even switches per section), so every
//! field load goes through a [`ByteOrder`] chosen once per file or section. The loaders
//! take an offset into a slice the caller has already length-checked; should a bug ever
//! pass a short slice they return zero instead of panicking, because a reader fed with
//! hostile files must not have a single panicking path.

/// The byte order of a pcap file or of a pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    #[inline]
    pub(crate) fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = array::<2>(b, at);
        match self {
            Self::Little => u16::from_le_bytes(a),
            Self::Big => u16::from_be_bytes(a),
        }
    }

    #[inline]
    pub(crate) fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = array::<4>(b, at);
        match self {
            Self::Little => u32::from_le_bytes(a),
            Self::Big => u32::from_be_bytes(a),
        }
    }

    #[inline]
    pub(crate) fn u64(self, b: &[u8], at: usize) -> u64 {
        let a = array::<8>(b, at);
        match self {
            Self::Little => u64::from_le_bytes(a),
            Self::Big => u64::from_be_bytes(a),
        }
    }
}

/// `N` bytes of `b` starting at `at`, or zeros if `b` is too short (see the module doc).
#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = at.checked_add(N).and_then(|end| b.get(at..end)) {
        a.copy_from_slice(s);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_in_both_orders_and_never_panics() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(ByteOrder::Little.u16(&b, 0), 0x0201);
        assert_eq!(ByteOrder::Big.u16(&b, 0), 0x0102);
        assert_eq!(ByteOrder::Little.u32(&b, 4), 0x0807_0605);
        assert_eq!(ByteOrder::Big.u32(&b, 4), 0x0506_0708);
        assert_eq!(ByteOrder::Big.u64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(ByteOrder::Big.u32(&b, 6), 0);
        assert_eq!(ByteOrder::Big.u32(&b, usize::MAX), 0);
    }
}
