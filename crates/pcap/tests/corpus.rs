//! Every file of the shared corpus against its MANIFEST row.
//!
//! * readable files (no `corrupt` in the notes, plus the pcapng files marked corrupt only
//!   because libpcap 1.10 refuses several link types/snaplens or a missing IDB): exactly
//!   `packets` records, then a clean end;
//! * corrupt files: exactly as many packets as tcpdump printed before its error, then an
//!   error of the kind tcpdump's message describes, never a panic;
//! * format, byte order(s) and link types as the MANIFEST lists them;
//! * the same packets whether read through the default 1 MiB buffer or through a 64-byte
//!   buffer fed by a reader that returns 1-7 bytes per call (compaction, growth, offsets).
//!
//! All failures are collected and reported together.

mod common;

use std::collections::BTreeSet;
use std::io::{self, Read};

use wirecap_pcap::{ByteOrder, CaptureReader, Error, ErrorKind, Format};

/// What reading a whole file gave.
#[derive(Debug)]
struct Outcome {
    format: Option<Format>,
    orders: BTreeSet<&'static str>,
    /// Link type of every interface, in order.
    links: Vec<u16>,
    packets: u64,
    /// FNV-1a over all packet fields, to compare two reads of the same file.
    digest: u64,
    error: Option<Error>,
    /// Offset of the reader when the error was returned.
    offset_at_error: u64,
}

fn order_name(o: ByteOrder) -> &'static str {
    match o {
        ByteOrder::Little => "le",
        ByteOrder::Big => "be",
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn read_all<R: Read>(r: R, capacity: Option<usize>) -> Outcome {
    let mut out = Outcome {
        format: None,
        orders: BTreeSet::new(),
        links: Vec::new(),
        packets: 0,
        digest: 0xcbf2_9ce4_8422_2325,
        error: None,
        offset_at_error: 0,
    };
    let reader = match capacity {
        Some(c) => CaptureReader::with_capacity(r, c),
        None => CaptureReader::new(r),
    };
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    out.format = Some(reader.format());
    out.orders.insert(order_name(reader.byte_order()));
    loop {
        let before = reader.offset();
        match reader.next_packet() {
            Ok(Some(p)) => {
                out.packets += 1;
                let mut h = out.digest;
                h = fnv(h, &p.ts_sec.to_le_bytes());
                h = fnv(h, &p.ts_nsec.to_le_bytes());
                h = fnv(h, &p.orig_len.to_le_bytes());
                h = fnv(h, &p.interface.to_le_bytes());
                h = fnv(h, p.data);
                out.digest = h;
                let iface = p.interface;
                assert!(
                    reader.link_type(iface).is_some(),
                    "packet on unknown interface"
                );
            }
            Ok(None) => break,
            Err(e) => {
                assert!(
                    e.offset >= before,
                    "error offset {} before {before}",
                    e.offset
                );
                out.offset_at_error = reader.offset();
                out.error = Some(e);
                break;
            }
        }
        out.orders.insert(order_name(reader.byte_order()));
    }
    out.orders.insert(order_name(reader.byte_order()));
    // A fused reader stays at the end.
    assert!(matches!(reader.next_packet(), Ok(None)));
    out.links = (0..reader.interface_count())
        .map(|i| {
            reader
                .link_type(i)
                .expect("interface below interface_count")
                .0
        })
        .collect();
    out
}

/// Returns 1 to 7 bytes per `read()`, like a slow pipe.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.n = self.n % 7 + 1;
        let k = self.n.min(buf.len()).min(self.data.len());
        buf[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

/// Whether our error kind says the same thing as tcpdump's message.
fn kind_matches(kind: &ErrorKind, tcpdump: &str) -> bool {
    type Check = fn(&ErrorKind) -> bool;
    let table: [(&str, Check); 9] = [
        ("not a multiple of 4", |k| {
            matches!(k, ErrorKind::BadBlockLength { .. })
        }),
        ("there's no Interface Description Block", |k| {
            matches!(k, ErrorKind::UnknownInterface(_))
        }),
        ("unknown file format", |k| {
            matches!(k, ErrorKind::BadMagic(_))
        }),
        ("invalid packet capture length", |k| {
            matches!(k, ErrorKind::PacketTooLarge { .. })
        }),
        ("truncated", |k| matches!(k, ErrorKind::Truncated { .. })),
        // libpcap 1.10 folds the reserved bits into the link type and fails on it.
        ("unknown data link type", |k| {
            matches!(k, ErrorKind::ReservedLinkTypeBits(_))
        }),
        ("archaic pcap savefile format", |k| {
            matches!(k, ErrorKind::UnsupportedVersion { major: 1, .. })
        }),
        ("savefile version", |k| {
            matches!(k, ErrorKind::UnsupportedVersion { .. })
        }),
        ("header and trailer don't match", |k| {
            matches!(k, ErrorKind::BlockLengthMismatch { .. })
        }),
    ];
    table
        .iter()
        .find(|(needle, _)| tcpdump.contains(needle))
        .is_some_and(|(_, ok)| ok(kind))
}

#[test]
fn every_manifest_row() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let rows = common::manifest(&corpus);
    assert!(rows.len() >= 600, "MANIFEST has only {} rows", rows.len());

    let mut failures = Vec::new();
    let mut tally = std::collections::BTreeMap::<String, (u32, u32)>::new();
    for row in &rows {
        let data =
            std::fs::read(corpus.join(&row.file)).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let got = read_all(&data[..], None);
        let mut why = Vec::new();

        let category;
        if row.is_corrupt() && !row.is_valid_but_libpcap_refuses() {
            category = "corrupt (error expected)";
            let want = row.packets_before_error();
            if got.packets != want {
                why.push(format!(
                    "{} packets before the error, tcpdump read {want}",
                    got.packets
                ));
            }
            match &got.error {
                None => why.push("no error".into()),
                Some(e) => {
                    if !kind_matches(&e.kind, row.tcpdump_error()) {
                        why.push(format!(
                            "error `{e}` does not match tcpdump's `{}`",
                            row.tcpdump_error()
                        ));
                    }
                    if e.offset > data.len() as u64 {
                        why.push(format!("error offset {} beyond the file", e.offset));
                    }
                }
            }
        } else {
            category = if row.is_corrupt() {
                "valid pcapng libpcap refuses"
            } else if row.linktype.starts_with("1(EN10MB)") && !row.linktype.contains(',') {
                "readable, Ethernet"
            } else {
                "readable, other link types"
            };
            if let Some(e) = &got.error {
                why.push(format!("error after {} packets: {e}", got.packets));
            }
            if got.packets != row.packets {
                why.push(format!(
                    "{} packets, MANIFEST says {}",
                    got.packets, row.packets
                ));
            }
            if got.error.is_none() && got.format.is_some() {
                // offset() must have reached the end of the file.
                let end = CaptureReader::new(&data[..]).map(|mut r| {
                    while let Ok(Some(_)) = r.next_packet() {}
                    r.offset()
                });
                if end.as_ref().ok() != Some(&(data.len() as u64)) {
                    why.push(format!(
                        "offset at end {end:?}, file has {} bytes",
                        data.len()
                    ));
                }
            }
        }

        // Format and byte order, when the file header could be read.
        let want_format = match row.format.as_str() {
            "pcap-us" => Some(Format::PcapUs),
            "pcap-ns" => Some(Format::PcapNs),
            "pcapng" => Some(Format::Pcapng),
            _ => None,
        };
        if let Some(f) = got.format {
            if Some(f) != want_format {
                why.push(format!("format {f:?}, MANIFEST says {}", row.format));
            }
            let orders: Vec<_> = got.orders.iter().rev().copied().collect();
            let want: BTreeSet<_> = row.byte_order.split('+').collect();
            if got.orders != want {
                why.push(format!(
                    "byte orders {orders:?}, MANIFEST says {}",
                    row.byte_order
                ));
            }
            if let Some(want_links) = row.link_types() {
                let ours: BTreeSet<u16> = got.links.iter().copied().collect();
                let theirs: BTreeSet<u16> = want_links.iter().map(|(n, _)| *n).collect();
                // A corrupt file's interfaces after the damage are unknown to us.
                if ours != theirs && !(row.is_corrupt() && ours.is_subset(&theirs)) {
                    why.push(format!(
                        "link types {ours:?}, MANIFEST says {}",
                        row.linktype
                    ));
                }
                for (n, name) in &want_links {
                    let ours = wirecap_pcap::LinkType(*n).name();
                    if ours != Some(name.as_str()) {
                        why.push(format!(
                            "link type {n} is named {ours:?}, tcpdump says {name}"
                        ));
                    }
                }
            }
        } else if want_format.is_some() && got.packets > 0 {
            why.push("header unreadable but packets returned".into());
        }

        // Same packets and the same error position through tiny buffers and tiny reads.
        let small = read_all(
            Trickle {
                data: &data,
                n: row.file.len(),
            },
            Some(64),
        );
        if (small.packets, small.digest) != (got.packets, got.digest) {
            why.push(format!(
                "64-byte buffer + trickle reads gave {} packets (digest {:x}), default {} ({:x})",
                small.packets, small.digest, got.packets, got.digest
            ));
        }
        let err_at = |o: &Outcome| o.error.as_ref().map(|e| (e.offset, o.offset_at_error));
        if err_at(&small) != err_at(&got) {
            why.push(format!(
                "error position differs with small buffer: {:?} vs {:?}",
                err_at(&small),
                err_at(&got)
            ));
        }

        let t = tally.entry(category.to_string()).or_default();
        if why.is_empty() {
            t.0 += 1;
        } else {
            t.1 += 1;
            failures.push(format!("{}: {}", row.file, why.join("; ")));
        }
    }
    for (cat, (ok, bad)) in &tally {
        eprintln!("{cat}: {ok} pass, {bad} fail");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
