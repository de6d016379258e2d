//! Errors of the readers and writers.
//!
//! One [`Error`] type for the whole crate, split into a byte offset and an [`ErrorKind`]:
//! the offset is what lets an operator find the damage with a hex editor (or cut the
//! file there), the kind says what was expected and what was found. The file name is
//! deliberately absent: this crate never opens files, the caller knows which one it was.
//!
//! Messages are written for a network engineer, not for the author of this crate: they
//! name the pcap/pcapng structure involved and the value that made it unreadable.

use crate::MAX_PACKET_LEN;

/// A reader or writer failure at a known position of the stream.
///
/// `offset` is the byte offset (from the start of the input, or of the output for the
/// writers) of the record or block that could not be read or written; for a damaged
/// file header it is 0.
#[derive(Debug, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct Error {
    pub offset: u64,
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) const fn new(offset: u64, kind: ErrorKind) -> Self {
        Self { offset, kind }
    }

    /// True when the input simply ended too early (a cut file, or one still being written),
    /// as opposed to containing bytes that make no sense.
    pub const fn is_truncated(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }
}

/// What went wrong. Every variant says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),

    #[error("file is cut short inside {what}: it needs {needed} bytes, only {available} are left")]
    Truncated {
        /// The structure being read, e.g. "pcap record header".
        what: &'static str,
        needed: u64,
        available: u64,
    },

    #[error(
        "not a capture file: it starts with bytes {0:08x}, expected a pcap magic number \
         (a1b2c3d4 or a1b23c4d, in either byte order) or a pcapng Section Header Block (0a0d0d0a){hint}",
        hint = magic_hint(*.0)
    )]
    BadMagic(u32),

    #[error(
        "unsupported format version {major}.{minor}: pcap files must be version 2.0 to 2.4, \
         pcapng sections version 1.0 (or 1.2)"
    )]
    UnsupportedVersion { major: u16, minor: u16 },

    #[error(
        "the link-type field is {0:#010x}: its reserved bits 16-25 (mask 0x03ff0000) must be zero; \
         only the FCS bits 26-31 may be set above the 16-bit link type"
    )]
    ReservedLinkTypeBits(u32),

    #[error(
        "a record claims {caplen} captured bytes, more than the {max} a packet may have; \
         the file is probably corrupt here",
        max = MAX_PACKET_LEN
    )]
    PacketTooLarge { caplen: u32 },

    #[error("{} has total length {length}, expected {expected}", block_desc(*.block_type))]
    BadBlockLength {
        block_type: u32,
        length: u32,
        expected: &'static str,
    },

    #[error(
        "{} says its total length is {header} at its start but {trailer} at its end; \
         the two must be equal",
        block_desc(*.block_type)
    )]
    BlockLengthMismatch {
        block_type: u32,
        header: u32,
        trailer: u32,
    },

    #[error(
        "{} is {length} bytes long, more than the {max} this reader accepts for a block it \
         has to parse; the file is probably corrupt here",
        block_desc(*.block_type)
    )]
    BlockTooLarge {
        block_type: u32,
        length: u32,
        max: u32,
    },

    #[error(
        "pcapng section header has byte-order magic {0:#010x}, expected 0x1a2b3c4d \
         (in either byte order)"
    )]
    BadByteOrderMagic(u32),

    #[error("pcapng {block} claims {caplen} captured bytes but the block has room for only {room}")]
    CaplenExceedsBlock {
        block: &'static str,
        caplen: u32,
        room: u32,
    },

    #[error("pcapng Interface Description Block has a bad {option} option: {problem}")]
    BadOption {
        option: &'static str,
        problem: String,
    },

    #[error(
        "a packet refers to interface {0}, but no Interface Description Block of its section \
         defines an interface with that number"
    )]
    UnknownInterface(u32),

    #[error(
        "a packet block comes before any Interface Description Block of its section, so its \
         link type is unknown"
    )]
    NoInterface,

    #[error("timestamp of {seconds} s since the epoch is outside the range {range}")]
    TimestampOutOfRange {
        seconds: i128,
        /// The range the target can represent, e.g. "0..=4294967295 s of a pcap record".
        range: &'static str,
    },
}

/// "pcapng Enhanced Packet Block (type 0x00000006)", or just the type when unknown.
fn block_desc(block_type: u32) -> String {
    match crate::read::pcapng::block_name(block_type) {
        "pcapng block" => format!("pcapng block of type {block_type:#010x}"),
        name => format!("{name} (type {block_type:#010x})"),
    }
}

/// Turns the most common "why is this not a capture file" cases into advice.
fn magic_hint(magic: u32) -> &'static str {
    match magic >> 16 {
        0x1f8b => " (this looks gzip-compressed: decompress it first)",
        0x28b5 => " (this looks zstd-compressed: decompress it first)",
        0x425a => " (this looks bzip2-compressed: decompress it first)",
        0xfd37 => " (this looks xz-compressed: decompress it first)",
        0x504b => " (this looks like a zip archive: extract it first)",
        _ if magic == 0xa1b2_cd34 || magic == 0x34cd_b2a1 => {
            " (this is the Kuznetzov \"modified pcap\" variant, which is not supported)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_offset_and_expectation() {
        let e = Error::new(
            40,
            ErrorKind::Truncated {
                what: "pcap record header",
                needed: 16,
                available: 8,
            },
        );
        assert_eq!(
            e.to_string(),
            "at byte 40: file is cut short inside pcap record header: it needs 16 bytes, only 8 are left"
        );
        assert!(e.is_truncated());
        let e = Error::new(0, ErrorKind::BadMagic(0x1f8b_0800));
        assert!(e.to_string().contains("1f8b0800"), "{e}");
        assert!(e.to_string().contains("gzip"), "{e}");
        let e = Error::new(0, ErrorKind::BadMagic(0xdead_beef));
        assert!(!e.to_string().contains("(this"), "{e}");
    }
}
