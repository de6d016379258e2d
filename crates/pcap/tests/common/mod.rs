//! Shared by the integration tests: finding the corpus and parsing its MANIFEST.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared corpus (see [`wirecap_testkit::corpus_dir`]); `None` after recording a
/// skip (a failure under CI).
pub fn corpus_dir() -> Option<PathBuf> {
    wirecap_testkit::require_corpus()
}

#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    pub format: String,
    pub byte_order: String,
    pub linktype: String,
    pub packets: u64,
    pub notes: String,
}

impl Row {
    /// The link types listed in the `linktype` column, as (number, name).
    pub fn link_types(&self) -> Option<Vec<(u16, String)>> {
        if self.linktype == "?" {
            return None;
        }
        if self.linktype == "-" {
            return Some(Vec::new());
        }
        let main = self.linktype.split(" field=").next().unwrap_or("");
        main.split(',')
            .map(|item| {
                let (num, rest) = item.split_once('(')?;
                Some((
                    num.trim().parse().ok()?,
                    rest.trim_end_matches(')').to_string(),
                ))
            })
            .collect()
    }

    pub fn is_corrupt(&self) -> bool {
        self.notes.contains("corrupt")
    }

    /// Marked corrupt only because libpcap refuses it; the pcapng is valid.
    pub fn is_valid_but_libpcap_refuses(&self) -> bool {
        self.is_corrupt()
            && (self.notes.contains("actually a valid pcapng")
                || self
                    .notes
                    .contains("the capture file has no Interface Description Blocks"))
    }

    /// Packets tcpdump printed before its error, from the notes.
    pub fn packets_before_error(&self) -> u64 {
        number_before(&self.notes, " packet(s) read by tcpdump before the error")
            .or_else(|| number_after(&self.notes, "tcpdump read "))
            .unwrap_or(0)
    }

    /// The error tcpdump printed, from the notes.
    pub fn tcpdump_error(&self) -> &str {
        self.notes
            .split_once("tcpdump error: ")
            .or_else(|| self.notes.split_once("(error: "))
            .map(|(_, e)| e.split([')', ';']).next().unwrap_or(e))
            .unwrap_or("")
    }
}

fn number_before(s: &str, suffix: &str) -> Option<u64> {
    let end = s.find(suffix)?;
    let digits: String = s[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

fn number_after(s: &str, prefix: &str) -> Option<u64> {
    let start = s.find(prefix)? + prefix.len();
    let digits: String = s[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub fn manifest(corpus: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("MANIFEST header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST has no column {name}"))
    };
    let (file, format, order, lt, packets, notes) = (
        col("file"),
        col("format"),
        col("byte_order"),
        col("linktype"),
        col("packets"),
        col("notes"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                file: f[file].to_string(),
                format: f[format].to_string(),
                byte_order: f[order].to_string(),
                linktype: f[lt].to_string(),
                packets: f[packets].parse().expect("packets column is a number"),
                notes: f[notes].to_string(),
            }
        })
        .collect()
}
