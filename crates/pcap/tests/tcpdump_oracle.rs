//! The writers against the real tcpdump: for a varied sample of readable corpus files,
//! `tcpdump -r X -nn -tt --nano -e -x` must print the same for the original, for its copy
//! written with `PcapNsWriter` and for its copy written with `PcapngWriter` (and the
//! "reading from file …, link-type …, snapshot length …" line must agree too).
//!
//! One difference is inherent, not a bug: a damaged pcap file can hold a sub-second
//! field of 10^9 ns or more (tcpdump prints `1418145370.1000000000`), which pcapng cannot
//! express, since its timestamp is one 64-bit count; the pcapng copy holds the same
//! instant (`1418145371.000000000`). For the pcapng comparison both outputs are therefore
//! put through `normalize_ts`, which carries such fractions into the seconds, and only
//! for files that have such a packet.
//!
//! Skips (with a message) when tcpdump or the corpus is missing.

mod common;

use std::path::Path;
use std::process::Command;

use wirecap_pcap::{CaptureReader, ErrorKind, PcapNsWriter, PcapngWriter};

const TCPDUMP: &str = "/usr/bin/tcpdump";

struct Dump {
    /// stderr's "reading from file" line without the file name.
    header: String,
    stdout: String,
}

fn tcpdump(file: &Path) -> Result<Dump, String> {
    let out = Command::new(TCPDUMP)
        .args(["-nn", "-tt", "--nano", "-e", "-x", "-r"])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run {TCPDUMP}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("tcpdump failed: {}", stderr.trim()));
    }
    let header = stderr
        .lines()
        .find_map(|l| {
            l.split_once(", link-type ")
                .map(|(_, rest)| rest.to_string())
        })
        .unwrap_or_default();
    Ok(Dump {
        header,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

/// Rewrites `SECS.FRACTION` at the start of each packet line so that a fraction of 10 or
/// more digits (>= 1 s) is carried into the seconds.
fn normalize_ts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let (ts, rest) = line.split_at(line.find(' ').unwrap_or(line.len()));
        let carried = ts.split_once('.').and_then(|(s, f)| {
            if f.len() <= 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let total =
                u128::from(s.parse::<u64>().ok()?) * 1_000_000_000 + f.parse::<u128>().ok()?;
            Some(format!(
                "{}.{:09}",
                total / 1_000_000_000,
                total % 1_000_000_000
            ))
        });
        out.push_str(carried.as_deref().unwrap_or(ts));
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// Reads `src` and writes both copies. Returns whether a packet has a sub-second field
/// >= 10^9, and whether the pcap-ns copy was refused because of a timestamp after 2106.
fn copy(src: &Path, ns_out: &Path, ng_out: &Path) -> Result<(bool, bool), String> {
    let data = std::fs::read(src).map_err(|e| e.to_string())?;
    let mut r = CaptureReader::new(&data[..]).map_err(|e| e.to_string())?;
    let (link, snaplen) = (
        r.link_type(0).ok_or("no interface 0")?,
        r.snaplen(0).ok_or("no interface 0")?,
    );
    let mut ns = Some(PcapNsWriter::new(Vec::new(), link, snaplen).map_err(|e| e.to_string())?);
    let mut ng = PcapngWriter::new(Vec::new(), link, snaplen).map_err(|e| e.to_string())?;
    let (mut big_fraction, mut after_2106) = (false, false);
    while let Some(p) = r.next_packet().map_err(|e| e.to_string())? {
        big_fraction |= p.ts_nsec >= 1_000_000_000;
        if let Some(w) = &mut ns {
            match w.write_packet(&p) {
                Ok(()) => {}
                Err(e) if matches!(e.kind, ErrorKind::TimestampOutOfRange { .. }) => {
                    assert!(p.ts_sec > u64::from(u32::MAX), "{e}");
                    after_2106 = true;
                    ns = None;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        ng.write_packet(&p).map_err(|e| e.to_string())?;
    }
    // Several interfaces are fine (the copy merges them into one) as long as they share
    // the link type; tcpdump reads only such files, so the sample holds no other kind.
    if (0..r.interface_count()).any(|i| r.link_type(i) != Some(link)) {
        return Err("interfaces of several link types".into());
    }
    if let Some(w) = ns {
        std::fs::write(ns_out, w.into_inner()).map_err(|e| e.to_string())?;
    }
    std::fs::write(ng_out, ng.into_inner()).map_err(|e| e.to_string())?;
    Ok((big_fraction, after_2106))
}

/// A varied, deterministic sample of files tcpdump reads: every nanosecond and
/// big-endian pcap, the timestamp and length edge cases, a spread of pcapng files and one
/// file per non-Ethernet link type.
fn sample(rows: &[common::Row]) -> Vec<&common::Row> {
    const NAMED: &[&str] = &[
        "pcap/tcpdump/time_2038.pcap",
        "pcap/tcpdump/time_2106_max.pcap",
        "pcap/tcpdump/time_2106_overflow.pcapng",
        "pcap/tcpdump/time_2107.pcapng",
        "pcap/tcpdump/timestamp_invalid_micro.pcap",
        "pcap/tcpdump/timestamp_invalid_nano.pcap",
        "pcap/derived/usec-overflow.pcap",
        "pcap/derived/origlen-lt-caplen.pcap",
        "pcap/tcpdump/q933-heapoverflow-2.pcap",
        "pcap/tcpdump/pim-packet-assortment.pcap",
        "pcap/tcpdump/rx_serviceid_oobr.pcap",
        "pcap/tcpdump/aarp-heapoverflow-1.pcap",
        "pcap/libpcap/filter/slip-compressed_sl_print-oobr.pcap",
        "pcap/zeek/pcapng-multi-interface.pcapng",
    ];
    let readable: Vec<&common::Row> = rows
        .iter()
        .filter(|r| !r.is_corrupt() && r.packets > 0)
        .collect();
    let mut picked: Vec<&common::Row> = Vec::new();
    let mut add = |r: &common::Row| {
        if !picked.iter().any(|p| p.file == r.file) {
            picked.extend(rows.iter().find(|x| x.file == r.file));
        }
    };
    for name in NAMED {
        rows.iter().filter(|r| r.file == *name).for_each(&mut add);
    }
    readable
        .iter()
        .filter(|r| r.format == "pcap-ns" || (r.format == "pcap-us" && r.byte_order == "be"))
        .for_each(|r| add(r));
    readable
        .iter()
        .filter(|r| r.format == "pcapng")
        .step_by(8)
        .for_each(|r| add(r));
    let mut seen_links = std::collections::BTreeSet::new();
    for r in &readable {
        let other = !r.linktype.starts_with("1(") && !r.linktype.contains(',');
        if other && seen_links.len() < 12 && seen_links.insert(r.linktype.clone()) {
            add(r);
        }
    }
    picked
}

#[test]
fn copies_print_like_the_original() {
    if !Path::new(TCPDUMP).exists() {
        wirecap_testkit::skip(&format!("needs {TCPDUMP}"));
        return;
    }
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let rows = common::manifest(&corpus);
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    let (mut compared, mut skipped) = (0, Vec::new());
    for (i, row) in sample(&rows).into_iter().enumerate() {
        let src = corpus.join(&row.file);
        let original = match tcpdump(&src) {
            Ok(d) => d,
            Err(e) => {
                skipped.push(format!("{}: {e}", row.file));
                continue;
            }
        };
        let ns_path = tmp.path().join(format!("{i}.pcap"));
        let ng_path = tmp.path().join(format!("{i}.pcapng"));
        let (big_fraction, after_2106) = match copy(&src, &ns_path, &ng_path) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: copy failed: {e}", row.file));
                continue;
            }
        };
        let mut check = |label: &str, path: &Path, normalize: bool| match tcpdump(path) {
            Err(e) => failures.push(format!("{} ({label} copy): {e}", row.file)),
            Ok(copy) => {
                let (want, got) = if normalize {
                    (normalize_ts(&original.stdout), normalize_ts(&copy.stdout))
                } else {
                    (original.stdout.clone(), copy.stdout.clone())
                };
                if copy.header != original.header {
                    failures.push(format!(
                        "{} ({label} copy): tcpdump header `{}`, original `{}`",
                        row.file, copy.header, original.header
                    ));
                }
                if got != want {
                    let line = want
                        .lines()
                        .zip(got.lines())
                        .position(|(a, b)| a != b)
                        .unwrap_or(want.lines().count().min(got.lines().count()));
                    failures.push(format!(
                        "{} ({label} copy): output differs at line {}: want {:?}, got {:?}",
                        row.file,
                        line + 1,
                        want.lines().nth(line),
                        got.lines().nth(line)
                    ));
                }
            }
        };
        if after_2106 {
            // pcap cannot hold it: the writer refused, which `copy` checked.
            assert!(row.file.ends_with(".pcapng"), "{}", row.file);
        } else {
            check("pcap-ns", &ns_path, false);
        }
        check("pcapng", &ng_path, big_fraction);
        compared += 1;
    }
    eprintln!(
        "compared {compared} files with tcpdump; skipped {}:",
        skipped.len()
    );
    for s in &skipped {
        eprintln!("  {s}");
    }
    assert!(compared >= 30, "only {compared} files compared");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn normalize_carries_big_fractions_only() {
    let t = "1418145370.1000000000  In ethertype\n\t0x0000:  4500\n1.000000001 x\n";
    assert_eq!(
        normalize_ts(t),
        "1418145371.000000000  In ethertype\n\t0x0000:  4500\n1.000000001 x\n"
    );
    assert_eq!(normalize_ts("5.2147483648 y"), "7.147483648 y\n");
}
