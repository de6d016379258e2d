//! Shared helpers of the integration tests: finding the corpus and reading captures.

#![allow(dead_code)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use wirecap_pcap::CaptureReader;

/// The shared corpus (see [`wirecap_testkit::corpus_dir`]); `None` after recording a
/// skip (a failure under CI).
pub fn corpus_dir() -> Option<PathBuf> {
    wirecap_testkit::require_corpus()
}

/// One packet, owned.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub ts_ns: u64,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads every packet of a capture file (pcap or pcapng) and its first link type.
pub fn read_all(path: &Path) -> Result<(Vec<Pkt>, Option<wirecap_pcap::LinkType>), String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r =
        CaptureReader::new(BufReader::new(f)).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut link = None;
    while let Some((p, lt)) = r
        .next_packet_with_link_type()
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        link.get_or_insert(lt);
        out.push(Pkt {
            ts_ns: p.ts_ns(),
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    Ok((out, link))
}

/// Parses a TSV file with a header line into rows of columns.
pub fn tsv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Writes packets to a nanosecond pcap file.
pub fn write_pcap(path: &Path, link: wirecap_pcap::LinkType, pkts: &[Pkt]) {
    let f = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w =
        wirecap_pcap::PcapNsWriter::new(std::io::BufWriter::new(f), link, 262_144).expect("header");
    for p in pkts {
        w.write_packet(&wirecap_pcap::Packet {
            ts_sec: p.ts_ns / 1_000_000_000,
            ts_nsec: (p.ts_ns % 1_000_000_000) as u32,
            orig_len: p.orig_len,
            data: &p.data,
            interface: 0,
        })
        .expect("write");
    }
    use std::io::Write;
    w.into_inner().flush().expect("flush");
}

/// True when `tool` is installed; otherwise records a skip (a failure under CI).
pub fn have_tool(tool: &str) -> bool {
    wirecap_testkit::require_tool(tool)
}

/// `tcpdump -r FILE --count EXPR`: the number of packets tcpdump's filter accepts.
pub fn tcpdump_count(file: &Path, expr: &str) -> u64 {
    let out = std::process::Command::new("tcpdump")
        .arg("-r")
        .arg(file)
        .arg("--count")
        .arg(expr)
        .output()
        .expect("run tcpdump");
    // libpcap's optimizer refuses filters it proves can never match.
    if String::from_utf8_lossy(&out.stderr).contains("expression rejects all packets") {
        return 0;
    }
    assert!(
        out.status.success(),
        "tcpdump {expr} on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump said {text:?}"))
}

/// `tshark -r FILE [opts] -Y FILTER`: the number of packets the display filter keeps.
pub fn tshark_count(file: &Path, opts: &[&str], filter: &str) -> u64 {
    let out = std::process::Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(opts)
        .arg("-Y")
        .arg(filter)
        .args(["-T", "fields", "-e", "frame.number"])
        .env("TZ", "UTC")
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark {filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}
