//! Every row of the corpus's tcpdump oracle (`bpf-oracle.tsv`): compile the expression
//! with `Filter::bpf` for EN10MB, count the packets it accepts, compare with tcpdump.
//!
//! Each capture is read once and all 103 compiled programs run over its packets. The
//! same loop checks that `may_match` never rejects a file (as one chunk) in which
//! tcpdump found a match.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use wirecap_filter::summary::ChunkSummary;
use wirecap_filter::{Filter, LinkType};

#[test]
fn every_oracle_row_matches_tcpdump() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let started = Instant::now();
    let exprs: Vec<String> = common::tsv(&dir.join("exprs.tsv"))
        .into_iter()
        .map(|r| r[2].clone())
        .collect();
    assert_eq!(exprs.len(), 103);
    let filters: Vec<Filter> = exprs
        .iter()
        .map(|e| Filter::bpf(e, LinkType::ETHERNET).unwrap_or_else(|err| panic!("{e}: {err}")))
        .collect();
    let index: HashMap<&str, usize> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| (e.as_str(), i))
        .collect();

    // Rows whose answer depends on the libpcap version: pick the column of ours.
    let version = wirecap_filter::bpf::libpcap_version();
    let new_semantics =
        wirecap_filter::bpf::libpcap_version_numbers().is_some_and(|v| v >= (1, 10, 6));
    println!(
        "{version}: using the {} column of bpf-oracle-version-diffs.tsv",
        if new_semantics {
            "libpcap-1.11.0-PRE"
        } else {
            "libpcap-1.10.3"
        }
    );
    let mut diffs: HashMap<(String, String), u64> = HashMap::new();
    for r in common::tsv(&dir.join("bpf-oracle-version-diffs.tsv")) {
        let v = if new_semantics { &r[3] } else { &r[2] };
        diffs.insert((r[0].clone(), r[1].clone()), v.parse().expect("count"));
    }

    let mut by_file: BTreeMap<String, Vec<(usize, u64)>> = BTreeMap::new();
    let rows = common::tsv(&dir.join("bpf-oracle.tsv"));
    for r in &rows {
        let i = *index
            .get(r[1].as_str())
            .unwrap_or_else(|| panic!("expression not in exprs.tsv: {}", r[1]));
        let mut want: u64 = r[2].parse().expect("count");
        if let Some(v) = diffs.get(&(r[0].clone(), r[1].clone())) {
            want = *v;
        }
        by_file.entry(r[0].clone()).or_default().push((i, want));
    }

    let (mut ok, mut bad, mut packets, mut pruned, mut prunable) =
        (0usize, Vec::new(), 0usize, 0usize, 0usize);
    for (file, wants) in &by_file {
        let (pkts, _) = common::read_all(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        packets += pkts.len();
        let mut counts = vec![0u64; filters.len()];
        let mut summary = ChunkSummary::new();
        for p in &pkts {
            summary.add(LinkType::ETHERNET, &p.data, p.orig_len);
            for (c, f) in counts.iter_mut().zip(&filters) {
                *c += u64::from(f.matches(p.ts_ns, p.orig_len, &p.data));
            }
        }
        for &(i, want) in wants {
            if counts[i] == want {
                ok += 1;
            } else {
                bad.push(format!(
                    "{file}\t{}\twant {want}\tgot {}",
                    exprs[i], counts[i]
                ));
            }
            let may = filters[i].may_match(&summary);
            if counts[i] > 0 {
                assert!(
                    may,
                    "may_match said no for {file} / {} with {} matches",
                    exprs[i], counts[i]
                );
            } else {
                prunable += 1;
                pruned += usize::from(!may);
            }
        }
    }
    println!(
        "oracle: {ok}/{} rows match, {} files, {packets} packets, {:.1?}; may_match skipped {pruned} of {prunable} (file, expr) pairs with no match",
        rows.len(),
        by_file.len(),
        started.elapsed()
    );
    assert!(
        bad.is_empty(),
        "{} rows differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert_eq!(ok, 50_779);
}
