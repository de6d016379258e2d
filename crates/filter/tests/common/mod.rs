//! Shared helpers of the integration tests: finding the corpus and reading captures.

#![allow(dead_code)]

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use wirecap_pcap::CaptureReader;

/// The shared corpus: `$WIRECAP_CORPUS`, else `<workspace>/../shared/corpus`. `None`
/// (and a printed reason) when it is absent, so the caller can skip.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WIRECAP_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.join("bpf-oracle.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIP: no corpus at {} (set WIRECAP_CORPUS)", dir.display());
        None
    }
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
    let mut r = CaptureReader::new(BufReader::new(f)).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut link = None;
    while let Some((p, lt)) = r.next_packet_with_link_type().map_err(|e| format!("{}: {e}", path.display()))? {
        link.get_or_insert(lt);
        out.push(Pkt { ts_ns: p.ts_ns(), orig_len: p.orig_len, data: p.data.to_vec() });
    }
    Ok((out, link))
}

/// Parses a TSV file with a header line into rows of columns.
pub fn tsv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}
